"""The target policy: which resolved addresses a tenant-chosen host may use."""

from __future__ import annotations

import pytest

from mail_proxy.domain.network_policy import TargetPolicy

DENY = TargetPolicy()


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),  # cloud metadata
        ("100.64.0.1", True),  # carrier-grade NAT
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("::1", True),
        ("fd00:ec2::254", True),  # unique-local (a metadata service address)
        ("fe80::1%eth0", True),
        ("::ffff:127.0.0.1", True),  # IPv4-mapped loopback
        ("8.8.8.8", False),
        ("2a00:1450:4001:80b::200e", False),
        ("::ffff:8.8.8.8", False),
    ],
)
def test_default_policy_refuses_non_global_addresses(address: str, refused: bool) -> None:
    assert (DENY.refusal("smtp.example.com", address) is not None) is refused


def test_refusal_names_the_host_not_the_address() -> None:
    reason = DENY.refusal("internal.example", "10.0.0.7")
    assert reason is not None and "internal.example" in reason and "10.0.0.7" not in reason


@pytest.mark.parametrize(
    ("policy", "host", "address", "trusted", "refused"),
    [
        (TargetPolicy(allow_private=True), "h", "127.0.0.1", False, False),
        (DENY, "h", "127.0.0.1", True, False),
        (TargetPolicy.from_allowlist(False, ["10.20.0.0/16"]), "h", "10.20.3.4", False, False),
        (TargetPolicy.from_allowlist(False, ["10.20.0.0/16"]), "h", "10.21.3.4", False, True),
        (
            TargetPolicy.from_allowlist(False, ["smtp.internal."]),
            "SMTP.internal",
            "10.0.0.1",
            False,
            False,
        ),
        (TargetPolicy.from_allowlist(False, ["", " ::1 "]), "h", "::1", False, False),
    ],
)
def test_allow_private_allowlist_and_trusted(
    policy: TargetPolicy, host: str, address: str, trusted: bool, refused: bool
) -> None:
    assert (policy.refusal(host, address, trusted=trusted) is not None) is refused
