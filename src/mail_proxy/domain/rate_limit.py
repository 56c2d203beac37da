"""Sliding-window rate limits per SMTP account and per tenant.

The store keeps the send log and hands over a ``SendWindow`` (one account's sends,
or all of a tenant's); this module only decides. A full window opens again when
its oldest send leaves it. A tenant's limits are its ``rate_limits`` setting with
the canonical keys ``per_minute``, ``per_hour`` and ``per_day`` (the API maps
other spellings to these).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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


def tenant_limits(config: Mapping[str, Any] | None) -> RateLimits:
    """A tenant's ``rate_limits`` setting as limits; a missing or null key is unlimited."""
    if not config:
        return RateLimits()
    return RateLimits(
        per_minute=_count(config.get("per_minute")),
        per_hour=_count(config.get("per_hour")),
        per_day=_count(config.get("per_day")),
    )


def _count(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def stricter(first: RateDecision, second: RateDecision) -> RateDecision:
    """Both must allow; when either waits, the later reopening wins."""
    waits = [d.ts for d in (first, second) if isinstance(d, WaitUntil)]
    return WaitUntil(max(waits)) if waits else Allowed()


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
