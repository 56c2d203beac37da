"""What replaces an outcome the database refused, and outside text in details."""

from __future__ import annotations

from typing import Any

import pytest

from mail_proxy.domain.models import Deferred, Failed, Outcome, Sent
from mail_proxy.domain.text import storable_json
from mail_proxy.storage.outcomes import UNSTORABLE_REASON, unstorable


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (Sent(5.0, details={"reply": "250 \udcff"}), Sent(5.0)),
        (
            Deferred(60.0, "451 \udcff", 5.0, details={"x": 1}),
            Deferred(60.0, UNSTORABLE_REASON, 5.0),
        ),
        (
            Deferred(60.0, "rate", 5.0, counts_attempt=False),
            Deferred(60.0, UNSTORABLE_REASON, 5.0, counts_attempt=False),
        ),
        (Failed(5.0, "550 \x00", details={"x": 1}), Failed(5.0, UNSTORABLE_REASON)),
    ],
)
def test_unstorable_keeps_the_decision_and_drops_the_text(
    outcome: Outcome, expected: Outcome
) -> None:
    assert unstorable(outcome) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (3, 3),
        ("ok", "ok"),
        ("a\x00b\udcff", "ab\ufffd"),
        ({"k\udcff": ["\x00x", {"n": "y" * 2000}]}, {"k\ufffd": ["x", {"n": "y" * 999 + "…"}]}),
        (("t", 1), ["t", 1]),
    ],
)
def test_storable_json_cleans_every_string(value: Any, expected: Any) -> None:
    assert storable_json(value) == expected
