"""Signing of client sync calls: the header follows the documented recipe."""

from __future__ import annotations

import hashlib
import hmac

from mail_proxy.client import verify_signature
from mail_proxy.domain import signature

SECRET = "whsec_test"
BODY = b'{"delivery_report":[{"id":"m1","event":"sent","sent_ts":1700000000}]}'
TS = 1_700_000_000


def test_header_follows_the_documented_recipe() -> None:
    """v1 is the hex HMAC-SHA256 of "<t>.<raw body>" keyed with the secret."""
    expected = hmac.new(SECRET.encode(), f"{TS}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signature.sign(SECRET, TS, BODY) == f"t={TS},v1={expected}"


def test_signed_body_verifies_with_the_sdk() -> None:
    """A header made by sign() verifies against the same body, secret and time."""
    header = signature.sign(SECRET, TS, BODY)
    assert verify_signature(BODY, header, SECRET, now=TS + 5)
