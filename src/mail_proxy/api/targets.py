"""Save-time checks of the hosts a tenant steers the proxy to (SSRF policy).

A tenant key saving an SMTP or IMAP host, or its callback URL, has the name
resolved and every address judged by the operator's target policy: a refusal is
a 400 naming the field. The admin token is trusted and saves anything; the record
then carries ``target_trusted`` so that the send-time check lets it through.
"""

from __future__ import annotations

from functools import partial
from urllib.parse import SplitResult, urlsplit

from mail_proxy.api.deps import Caller
from mail_proxy.errors import InvalidInput, TargetRefused
from mail_proxy.network import resolve_permitted, target_policy
from mail_proxy.services.requester import Requester
from mail_proxy.settings import Settings

DEFAULT_PORTS = {"http": 80, "https": 443}


async def check_host(
    caller: Caller, settings: Settings, host: str | None, port: int, field: str
) -> None:
    """Refuse ``host`` for a tenant key when the policy does; the admin passes."""
    if caller.is_admin or not host:
        return
    try:
        await resolve_permitted(host, port, target_policy(settings))
    except TargetRefused as exc:
        raise TargetRefused(f"{field}: {exc.message}", field=field) from None


def callback_url(url: str, field: str) -> SplitResult:
    """The parts of a callback URL; credentials in it are refused (they would be
    logged and shown back: ``client_auth`` keeps them write-only)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        raise InvalidInput(f"{field} is not a valid URL", field=field) from None
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(
            f"{field} must not carry credentials (user:password@): use client_auth",
            field=field,
        )
    if not parts.hostname:
        raise InvalidInput(f"{field} needs a host name", field=field)
    return parts


async def check_callback_url(caller: Caller, settings: Settings, url: str, field: str) -> None:
    """``url`` checked as :func:`callback_url`, then its host as :func:`check_host`."""
    parts = callback_url(url, field)
    port = parts.port or DEFAULT_PORTS.get(parts.scheme, 443)
    await check_host(caller, settings, parts.hostname, port, field)


def requester(caller: Caller, settings: Settings) -> Requester:
    """The caller as the use cases see it, with this policy bound to it."""
    return Requester(
        caller.is_admin,
        partial(check_host, caller, settings),
        partial(check_callback_url, caller, settings),
    )
