"""Which network addresses a tenant may make the proxy connect to.

A tenant chooses its SMTP hosts and its callback URL. Without a policy it could
point them at the proxy's own network (a database, a metadata service at
169.254.169.254, an admin port on loopback) and read banners back through events
and metrics: server-side request forgery. The operator's policy decides:

- addresses that are not globally routable (loopback, RFC 1918 private,
  link-local, carrier-grade NAT, unique-local IPv6, unspecified, multicast,
  reserved; IPv4-mapped IPv6 is judged by its IPv4 address) are refused,
- unless ``allow_private`` is set (``GMP_ALLOW_PRIVATE_TARGETS``), the address or
  host name is on the allowlist (``GMP_PRIVATE_TARGETS_ALLOWLIST``), or the
  target was saved by the admin (``trusted``), who may point anywhere.

The check runs on *resolved* addresses at connect time as well as at save time,
so a name that later resolves elsewhere (DNS rebinding) is still caught.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """The operator's rule for tenant-chosen destinations."""

    allow_private: bool = False
    networks: tuple[IPNetwork, ...] = ()
    hostnames: frozenset[str] = frozenset()

    @classmethod
    def from_allowlist(cls, allow_private: bool, entries: Iterable[str]) -> TargetPolicy:
        """Split allowlist entries into networks (``10.1.0.0/16``, ``::1``) and host names."""
        networks: list[IPNetwork] = []
        hostnames: set[str] = set()
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hostnames.add(entry.lower().rstrip("."))
        return cls(allow_private, tuple(networks), frozenset(hostnames))

    def refusal(self, host: str, address: str, *, trusted: bool = False) -> str | None:
        """Why connecting to ``address`` (resolved from ``host``) is refused, or None.

        The reason names the host only, never the resolved address or anything the
        peer said, so that a refusal shown to a tenant reveals nothing inside.
        """
        if trusted or self.allow_private or host.lower().rstrip(".") in self.hostnames:
            return None
        ip = _parse(address)
        if ip is None or is_public(ip) or any(ip in net for net in self.networks):
            return None
        return (
            f"{host} is a private or local address; tenants may not use it "
            "(the operator can allow it with GMP_ALLOW_PRIVATE_TARGETS or "
            "GMP_PRIVATE_TARGETS_ALLOWLIST)"
        )


def is_public(ip: IPAddress) -> bool:
    """Globally routable and not multicast (RFC 6890 special-purpose ranges are not)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _parse(address: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
