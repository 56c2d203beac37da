"""Which bounces put an address on the suppression list."""

from __future__ import annotations

import pytest

from mail_proxy.domain.bounces import BounceType, FailedRecipient
from mail_proxy.domain.suppression import SoftBouncePolicy, suppression_reason

POLICY = SoftBouncePolicy(limit=3, window=7 * 86400)
HARD = FailedRecipient("a@example.org", BounceType.HARD, "5.1.1", "User unknown")
SOFT = FailedRecipient("a@example.org", BounceType.SOFT, "4.2.2", "Mailbox full")


@pytest.mark.parametrize(
    ("failed", "soft_in_window", "expected"),
    [
        (HARD, 0, "hard bounce: 5.1.1 User unknown"),
        (SOFT, 1, None),
        (SOFT, 2, None),
        (SOFT, 3, "3 soft bounces in 7 days: 4.2.2 Mailbox full"),
        (FailedRecipient("a@x", BounceType.HARD, None, "gone"), 0, "hard bounce: gone"),
    ],
)
def test_suppression_reason(failed: FailedRecipient, soft_in_window: int, expected: str) -> None:
    """Hard suppresses at once; soft after ``limit`` in the window."""
    assert suppression_reason(failed, soft_in_window, POLICY) == expected
