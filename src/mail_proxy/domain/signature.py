"""Signatures on client sync calls, so an application can tell the proxy sent them.

The scheme (header ``t=<unix ts>,v1=<hex>``, HMAC-SHA256 of ``"<t>.<raw body>"``)
and its verification live in ``mail_proxy.client.signature``, where an application
installs them without the server; the proxy signs here with the same ``digest``,
so what it sends is by construction what applications check.
"""

from __future__ import annotations

from mail_proxy.client.signature import HEADER, SCHEME, digest

__all__ = ["HEADER", "sign"]


def sign(secret: str, ts: int, body: bytes) -> str:
    """The header value for one call: ``t=<ts>,v1=<hex>``."""
    return f"t={ts},{SCHEME}={digest(secret, ts, body)}"
