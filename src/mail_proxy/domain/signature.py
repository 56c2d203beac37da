"""Signatures on client sync calls, so an application can tell the proxy sent them.

Header ``X-Mail-Proxy-Signature: t=<unix ts>,v1=<hex>`` where ``<hex>`` is the
HMAC-SHA256 (RFC 2104, FIPS 180-4) of ``"<t>.<raw body>"`` keyed with the tenant's
signing secret. The timestamp is inside the signed text so a captured call cannot
be replayed later than the verifier's tolerance. A verifier accepts any of several
``v1=`` values, so a future proxy may sign with an old and a new secret at once.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Mail-Proxy-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE = 300.0
#: Digits a timestamp may have: Unix seconds need 10 until the year 2286, and
#: ``int()`` of thousands of digits raises instead of answering.
MAX_TS_DIGITS = 12


def digest(secret: str, ts: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<ts>.<body>"`` keyed with ``secret``."""
    signed = str(ts).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(secret: str, ts: int, body: bytes) -> str:
    """The header value for one call: ``t=<ts>,v1=<hex>``."""
    return f"t={ts},{SCHEME}={digest(secret, ts, body)}"


def parse(header: str) -> tuple[int, list[str]] | None:
    """(timestamp, v1 digests) of a header value, or None when it is malformed.

    Only ASCII digits make a timestamp (``"²".isdigit()`` is true, ``int("²")``
    raises) and only ASCII digests are kept (``hmac.compare_digest`` raises on
    other text), so no header makes verification raise.
    """
    ts: int | None = None
    digests: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            return None
        if key == "t":
            if not (value.isascii() and value.isdigit() and len(value) <= MAX_TS_DIGITS):
                return None
            ts = int(value)
        elif key == SCHEME and value.isascii():
            digests.append(value)
    if ts is None or not digests:
        return None
    return ts, digests


def verify(
    secret: str, header: str, body: bytes, now: float, tolerance: float = DEFAULT_TOLERANCE
) -> bool:
    """True when one ``v1`` matches ``body`` under ``secret`` and ``t`` is within tolerance."""
    parsed = parse(header)
    if parsed is None:
        return False
    ts, digests = parsed
    if abs(now - ts) > tolerance:
        return False
    expected = digest(secret, ts, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in digests)
