"""Resolve a tenant-chosen host and apply the operator's target policy to it.

Shared by every outbound connection a tenant steers (SMTP accounts, client-sync
calls, attachment fetches): the name is resolved here, each address is
judged by :class:`~mail_proxy.domain.network_policy.TargetPolicy`, and the caller
connects to the addresses returned, so what was checked is what is used.

``call_permitted`` does that for one HTTP request. Plain ``http://`` calls go to
the checked address itself, with the original ``Host`` header, so a name that
resolves elsewhere a moment later (DNS rebinding) is never used. ``https://``
calls let httpx resolve again: pinning the address would let one pooled TLS
connection serve several host names, and a rebound name cannot present a valid
certificate for itself from inside the network, so the TLS handshake fails there
before anything is sent.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

from mail_proxy.domain.models import AuthMethod, ClientAuth
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


T = TypeVar("T")
Call = Callable[[httpx.URL, dict[str, str]], Awaitable[T]]


async def call_permitted(url: httpx.URL, policy: TargetPolicy, trusted: bool, call: Call[T]) -> T:
    """``call(url, extra_headers)`` once the host of ``url`` passed the policy.

    ``http``: to each permitted address in turn, until one accepts the connection,
    with ``Host`` set to the original name. Raises ``TargetRefused`` as
    ``resolve_permitted`` does, ``httpx.UnsupportedProtocol`` for other schemes.
    """
    if url.scheme not in ("http", "https") or not url.host:
        raise httpx.UnsupportedProtocol("not an http(s) URL")
    if trusted or policy.allow_private:
        return await call(url, {})  # nothing to check: no lookup
    port = url.port or (443 if url.scheme == "https" else 80)
    addresses = await resolve_permitted(url.host, port, policy, trusted=trusted)
    if url.scheme == "https":
        return await call(url, {})
    host = {"Host": url.netloc.decode("ascii")}
    for address in addresses[:-1]:
        try:
            return await call(url.copy_with(host=address), host)
        except httpx.ConnectError:
            continue
    return await call(url.copy_with(host=addresses[-1]), host)


def auth_headers(auth: ClientAuth) -> dict[str, str]:
    """``Authorization`` for bearer (RFC 6750) or basic (RFC 7617); none for ``none``."""
    if auth.method is AuthMethod.BEARER and auth.token:
        return {"Authorization": f"Bearer {auth.token}"}
    if auth.method is AuthMethod.BASIC and auth.user is not None:
        pair = f"{auth.user}:{auth.password or ''}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
    return {}


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
