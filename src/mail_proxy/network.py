"""Resolve a tenant-chosen host and apply the operator's target policy to it.

Shared by every outbound connection a tenant steers (SMTP accounts, client-sync
calls, attachment fetches): the name is resolved here, each address is
judged by :class:`~mail_proxy.domain.network_policy.TargetPolicy`, and the caller
connects to the addresses returned, so what was checked is what is used.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from mail_proxy.domain.network_policy import TargetPolicy
from mail_proxy.errors import TargetRefused
from mail_proxy.settings import Settings


def target_policy(settings: Settings) -> TargetPolicy:
    """The policy the operator configured."""
    return TargetPolicy.from_allowlist(
        settings.allow_private_targets, settings.private_targets_allowlist
    )


async def resolve_permitted(
    host: str, port: int, policy: TargetPolicy, *, trusted: bool = False
) -> list[str]:
    """Addresses of ``host`` that the policy permits, in resolver order.

    Raises :class:`TargetRefused` when any resolved address is refused (a name
    with one private address among public ones is refused whole: a connection
    could land on either), or when the name does not resolve.
    """
    if _is_literal(host):
        addresses = [host.strip("[]")]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError) as exc:
            raise TargetRefused(f"{host} could not be resolved") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        reason = policy.refusal(host, address, trusted=trusted)
        if reason is not None:
            raise TargetRefused(reason)
    return addresses


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
