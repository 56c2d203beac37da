"""Checking that a client sync call really comes from the proxy.

Header ``X-Mail-Proxy-Signature: t=<unix ts>,v1=<hex>`` where ``<hex>`` is the
HMAC-SHA256 (RFC 2104, FIPS 180-4) of ``"<t>.<raw body>"`` keyed with the tenant's
signing secret. The timestamp is inside the signed text so a captured call cannot
be replayed later than the verifier's tolerance. A verifier accepts any of several
``v1=`` values, so a future proxy may sign with an old and a new secret at once.

The proxy signs with this module's ``digest`` (``mail_proxy.domain.signature``), so
signer and verifier cannot drift apart. Two ways to verify: ``verify_signature``
answers a bool for a plain accept/refuse; ``check_signature`` raises an
``InvalidSignature`` subclass whose message says why, for an application that logs
or answers the reason. No header, however malformed, makes either raise anything
else. Standard library only: an application installs this without the server.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-Mail-Proxy-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE = 300.0
#: Digits a timestamp may have: Unix seconds need 10 until the year 2286, and
#: ``int()`` of thousands of digits raises instead of answering.
MAX_TS_DIGITS = 12


class InvalidSignature(ValueError):
    """The call does not prove that the proxy sent this body: refuse it."""


class MalformedSignature(InvalidSignature):
    """No header, or one that does not read as ``t=<ts>,v1=<hex>``."""


class ExpiredSignature(InvalidSignature):
    """The signed timestamp is further from now than the tolerance: maybe a replay."""


class SignatureMismatch(InvalidSignature):
    """No ``v1`` value matches: another secret, or a body changed on the way."""


def digest(secret: str, ts: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<ts>.<body>"`` keyed with ``secret``."""
    signed = str(ts).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


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


def check_signature(
    body: bytes,
    header: str | None,
    secret: str,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Return when ``header`` proves the proxy sent ``body``; else raise why not.

    ``header`` is the raw ``X-Mail-Proxy-Signature`` value (None when absent),
    ``body`` the exact bytes received, ``now`` the Unix time (default: the clock).
    """
    if not header:
        raise MalformedSignature(f"missing {HEADER} header")
    parsed = parse(header)
    if parsed is None:
        raise MalformedSignature(f"malformed {HEADER} header")
    ts, digests = parsed
    if abs((time.time() if now is None else now) - ts) > tolerance:
        raise ExpiredSignature("signature timestamp outside the tolerance")
    expected = digest(secret, ts, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in digests):
        raise SignatureMismatch("signature does not match")


def verify_signature(
    body: bytes,
    header: str | None,
    secret: str,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> bool:
    """True when ``header`` proves the proxy sent ``body`` (see ``check_signature``)."""
    try:
        check_signature(body, header, secret, tolerance, now)
    except InvalidSignature:
        return False
    return True
