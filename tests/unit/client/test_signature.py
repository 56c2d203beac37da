"""The SDK's signature check: valid, tampered, wrong secret, expired, malformed.

Headers are made by the proxy's own signer (``mail_proxy.domain.signature``), and the
verifiers the docs show applications are held to the same answers.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path
from typing import Any

import pytest

from mail_proxy.client import (
    ExpiredSignature,
    InvalidSignature,
    MalformedSignature,
    SignatureMismatch,
    check_signature,
    verify_signature,
)
from mail_proxy.client.signature import DEFAULT_TOLERANCE, parse
from mail_proxy.domain.signature import sign

SECRET = "whsec_test"
BODY = b'{"delivery_report":[{"id":"m1","event":"sent","sent_ts":1700000000}]}'
TS = 1_700_000_000


def test_signed_body_verifies() -> None:
    header = sign(SECRET, TS, BODY)
    assert verify_signature(BODY, header, SECRET, now=TS + 5)
    check_signature(BODY, header, SECRET, now=TS + 5)


def test_now_defaults_to_the_clock() -> None:
    now = int(time.time())
    assert verify_signature(BODY, sign(SECRET, now, BODY), SECRET)
    assert not verify_signature(BODY, sign(SECRET, now - 3600, BODY), SECRET)


@pytest.mark.parametrize(
    ("secret", "body", "now", "error"),
    [
        ("other-secret", BODY, TS, SignatureMismatch),
        (SECRET, BODY + b" ", TS, SignatureMismatch),
        (SECRET, BODY, TS + DEFAULT_TOLERANCE + 1, ExpiredSignature),
        (SECRET, BODY, TS - DEFAULT_TOLERANCE - 1, ExpiredSignature),
    ],
    ids=["wrong-secret", "tampered-body", "expired", "from-the-future"],
)
def test_verification_fails(
    secret: str, body: bytes, now: float, error: type[InvalidSignature]
) -> None:
    """A wrong secret, a changed byte or a timestamp outside the tolerance is refused."""
    header = sign(SECRET, TS, BODY)
    assert not verify_signature(body, header, secret, now=now)
    with pytest.raises(error):
        check_signature(body, header, secret, now=now)


def test_tolerance_is_the_callers() -> None:
    header = sign(SECRET, TS, BODY)
    assert verify_signature(BODY, header, SECRET, tolerance=3600, now=TS + 3000)
    assert not verify_signature(BODY, header, SECRET, tolerance=10, now=TS + 11)


def test_changed_timestamp_breaks_the_signature() -> None:
    """The timestamp is signed too, so it cannot be refreshed to replay an old call."""
    digest = sign(SECRET, TS, BODY).split(",")[1]
    forged = f"t={TS + 100},{digest}"
    with pytest.raises(SignatureMismatch):
        check_signature(BODY, forged, SECRET, now=TS + 100)


def test_any_of_several_v1_values_may_match() -> None:
    """During a secret rotation a header may carry one v1 per secret."""
    old = sign("old-secret", TS, BODY).split(",")[1]
    new = sign(SECRET, TS, BODY).split(",")[1]
    assert verify_signature(BODY, f"t={TS},{old},{new}", SECRET, now=TS)


@pytest.mark.parametrize("header", [None, ""])
def test_missing_header_is_named(header: str | None) -> None:
    with pytest.raises(MalformedSignature, match="missing X-Mail-Proxy-Signature"):
        check_signature(BODY, header, SECRET, now=TS)


@pytest.mark.parametrize(
    "header",
    ["garbage", "t=abc,v1=00", f"t={TS}", "v1=00", f"t={TS};v1=00", f"t={TS},v1"],
)
def test_malformed_headers_are_refused(header: str) -> None:
    """Headers that do not parse never verify and parse() returns None."""
    assert parse(header) is None
    with pytest.raises(MalformedSignature, match="malformed"):
        check_signature(BODY, header, SECRET, now=TS)


def test_parse_ignores_unknown_schemes() -> None:
    """Unknown keys (a future v2) are skipped, keeping the v1 values."""
    assert parse(f"t={TS},v2=ff,v1=aa") == (TS, ["aa"])


#: Headers an attacker or a broken peer may send: every verifier returns False for
#: them and none raises ("²".isdigit() is true but int("²") raises; compare_digest
#: raises on non-ASCII text; int() of 5,000 digits raises).
MALFORMED = [
    "",
    "garbage",
    "t=,v1=00",
    "t=²,v1=" + "0" * 64,
    "t=" + "\u0661\u0667" + "\u0660" * 8 + ",v1=" + "0" * 64,  # Arabic-Indic digits
    "t=" + "9" * 5000 + ",v1=" + "0" * 64,
    "t=-5,v1=" + "0" * 64,
    "t=1.5,v1=" + "0" * 64,
    "t={now},v1=zz",
    "t={now},v1=ü" + "0" * 63,
    "t={now},v1=",
    "t={now}",
    "v1=" + "0" * 64,
    "t={now};v1=00",
    "t={now},v1",
]


@pytest.mark.parametrize("template", MALFORMED)
def test_hostile_headers_are_refused_without_raising_anything_else(template: str) -> None:
    header = template.format(now=TS)
    assert not verify_signature(BODY, header, SECRET, now=TS)
    with pytest.raises(InvalidSignature):
        check_signature(BODY, header, SECRET, now=TS)


# --- the verifiers the docs show applications ----------------------------------------


def _documented_verifier() -> Any:
    """The first Python snippet of docs/client-sync.md, run as an application would."""
    text = (Path(__file__).parents[3] / "docs" / "client-sync.md").read_text()
    snippet = text.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)
    return namespace["verify_mail_proxy_signature"]


def test_documented_snippet_accepts_proxy_signatures_and_refuses_forgeries() -> None:
    """The verification code we tell applications to use agrees with sign()."""
    verify = _documented_verifier()
    now = int(time.time())
    header = sign(SECRET, now, BODY)
    assert verify(SECRET, header, BODY)
    assert not verify("other", header, BODY)
    assert not verify(SECRET, header, BODY + b"x")
    assert not verify(SECRET, sign(SECRET, now - 3600, BODY), BODY)
    assert not verify(SECRET, "garbage", BODY)


def _function_in(doc: str, name: str) -> list[str]:
    """Every Python ``def <name>(`` block of a doc, as source text."""
    text = (Path(__file__).parents[3] / "docs" / doc).read_text()
    blocks = []
    for chunk in text.split(f"\ndef {name}(")[1:]:
        lines = [f"def {name}(" + chunk.splitlines()[0]]
        for line in chunk.splitlines()[1:]:
            if line and not line.startswith(" "):
                break
            lines.append(line)
        blocks.append("\n".join(lines))
    return blocks


def _documented_verifiers() -> list[Any]:
    """(header, body) -> bool for each verifier the docs show."""

    class _DjangoSettings:
        MAIL_PROXY_SIGNING_SECRET = SECRET

    namespace_base = {
        "hashlib": hashlib,
        "hmac": hmac,
        "time": time,
        "SECRET": SECRET.encode(),
        "settings": _DjangoSettings,
    }
    verifiers: list[Any] = [lambda h, b: _documented_verifier()(SECRET, h, b)]
    for name in ("verify", "signature_ok"):
        for source in _function_in("integrations.md", name):
            namespace = dict(namespace_base)
            exec(source, namespace)
            verifiers.append(namespace[name])
    assert len(verifiers) == 4, "client-sync.md and the three Python snippets of integrations.md"
    return verifiers


def test_every_documented_verifier_accepts_a_proxy_signature() -> None:
    header = sign(SECRET, int(time.time()), BODY)
    for verify in _documented_verifiers():
        assert verify(header, BODY) is True
        assert verify(header, BODY + b"x") is False


@pytest.mark.parametrize("template", MALFORMED)
def test_every_documented_verifier_refuses_malformed_headers(template: str) -> None:
    header = template.format(now=int(time.time()))
    for verify in _documented_verifiers():
        assert verify(header, BODY) is False
