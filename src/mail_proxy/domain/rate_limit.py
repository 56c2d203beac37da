"""Sliding-window rate limits per SMTP account.

The store keeps the send log and hands over a ``SendWindow``; this module only
decides. A full window opens again when its oldest send leaves it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mail_proxy.domain.models import RateLimits, SendWindow

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Allowed:
    pass


@dataclass(frozen=True, slots=True)
class WaitUntil:
    """Over the limit: the earliest moment a send fits again."""

    ts: float


RateDecision = Allowed | WaitUntil


def check(window: SendWindow, limits: RateLimits, now: float) -> RateDecision:
    """Allowed if every configured window has room, else the latest reopening time."""
    waits = [
        _reopens(count, oldest, limit, span, now)
        for count, oldest, limit, span in (
            (window.minute, window.oldest_minute, limits.per_minute, MINUTE),
            (window.hour, window.oldest_hour, limits.per_hour, HOUR),
            (window.day, window.oldest_day, limits.per_day, DAY),
        )
    ]
    blocked = [w for w in waits if w is not None]
    return WaitUntil(max(blocked)) if blocked else Allowed()


def _reopens(
    count: int, oldest: float | None, limit: int | None, span: float, now: float
) -> float | None:
    if limit is None or count < limit:
        return None
    if limit <= 0:
        return now + span
    return max(now, (oldest if oldest is not None else now) + span)
