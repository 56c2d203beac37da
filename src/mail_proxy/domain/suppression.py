"""When a bounce puts an address on its tenant's suppression list.

A hard bounce (RFC 3463 class 5: the address or domain does not exist, the server
refuses for good) suppresses at once: mailing it again only hurts the sender's
reputation. A soft bounce (class 4, mailbox full, greylisting) is expected to pass,
so it suppresses only when the same address soft-bounced ``limit`` times within
``window`` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from mail_proxy.domain.bounces import BounceType, FailedRecipient
from mail_proxy.domain.text import storable

MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class SoftBouncePolicy:
    limit: int
    window: float


def suppression_reason(
    failed: FailedRecipient, soft_in_window: int, policy: SoftBouncePolicy
) -> str | None:
    """Why ``failed`` suppresses its address, or None when it does not.
    ``soft_in_window``: the address's soft bounces within the window, this one included."""
    said = f"{failed.code} {failed.reason}" if failed.code else failed.reason
    if failed.bounce_type is BounceType.HARD:
        return storable(f"hard bounce: {said}", MAX_REASON)
    if soft_in_window >= policy.limit:
        days = policy.window / 86400
        return storable(f"{soft_in_window} soft bounces in {days:g} days: {said}", MAX_REASON)
    return None
