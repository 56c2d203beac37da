"""storable(): outside text becomes valid, bounded UTF-8; is_storable() spots what is not."""

from __future__ import annotations

import pytest

from mail_proxy.domain.text import ELLIPSIS, REPLACEMENT, is_storable, storable

POISON_REPLY = b"451 4.7.1 try later \xff\xfe"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        (b"250 OK", "250 OK"),
        (POISON_REPLY, "451 4.7.1 try later " + REPLACEMENT * 2),
        # aiosmtplib decodes with surrogateescape: the same bytes as lone surrogates.
        (POISON_REPLY.decode("utf-8", "surrogateescape"), "451 4.7.1 try later " + REPLACEMENT * 2),
        ("a\ud800b", f"a{REPLACEMENT}b"),
        ("nul\x00 bell\x07 tab\tline\nend\r", "nul bell tab\tline\nend\r"),
        ("città ✓", "città ✓"),
    ],
)
def test_storable_text(value: str | bytes | None, expected: str) -> None:
    result = storable(value)
    assert result == expected
    result.encode("utf-8")  # never raises


@pytest.mark.parametrize(("length", "limit"), [(10, 10), (11, 10), (5000, 1000), (3, 1)])
def test_storable_caps_length_with_a_marker(length: int, limit: int) -> None:
    result = storable("x" * length, limit)
    assert len(result) == min(length, limit)
    assert result.endswith(ELLIPSIS) == (length > limit)


@pytest.mark.parametrize(
    ("value", "ok"),
    [("plain", True), ("città", True), ("a\ud800", False), ("nul\x00", False), ("", True)],
)
def test_is_storable(value: str, ok: bool) -> None:
    assert is_storable(value) is ok
