"""resolve_permitted: names are resolved by the machine's resolver, then judged."""

from __future__ import annotations

import pytest

from mail_proxy.domain.network_policy import TargetPolicy
from mail_proxy.errors import TargetRefused
from mail_proxy.network import resolve_permitted, target_policy
from mail_proxy.settings import Settings


async def test_a_name_resolving_to_loopback_is_refused() -> None:
    with pytest.raises(TargetRefused, match="localhost is a private or local address"):
        await resolve_permitted("localhost", 25, TargetPolicy())


async def test_trusted_or_allowed_targets_resolve() -> None:
    addresses = await resolve_permitted("localhost", 25, TargetPolicy(), trusted=True)
    assert "127.0.0.1" in addresses or "::1" in addresses
    allowed = target_policy(Settings(allow_private_targets=True))
    assert await resolve_permitted("localhost", 25, allowed) == addresses


async def test_literal_addresses_skip_the_resolver() -> None:
    assert await resolve_permitted("192.0.2.1", 25, TargetPolicy(allow_private=True)) == [
        "192.0.2.1"
    ]
    with pytest.raises(TargetRefused):
        await resolve_permitted("169.254.169.254", 80, TargetPolicy())
    assert await resolve_permitted("[2a00:1450:4001:80b::200e]", 443, TargetPolicy()) == [
        "2a00:1450:4001:80b::200e"
    ]
    with pytest.raises(TargetRefused):
        await resolve_permitted("[::1]", 25, TargetPolicy())


async def test_a_name_that_cannot_be_resolved_is_refused_with_its_name() -> None:
    with pytest.raises(TargetRefused, match="could not be resolved"):
        await resolve_permitted("bad..name", 25, TargetPolicy())
