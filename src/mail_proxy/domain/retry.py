"""When to try a failed delivery again, and when to stop.

RFC 5321 §4.5.4.1 asks senders to retry transient failures with growing delays
over days rather than hammer a server; the proxy uses a configured schedule
(``GMP_RETRY_DELAYS``, default 60, 300, 900, 3600, 7200 seconds). ``attempts`` is
how many earlier attempts already failed: the n-th failure waits ``delays[n-1]``,
and the failure after the last delay gives up. A permanent failure gives up at
once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mail_proxy.domain.smtp_replies import Classification, Permanent


@dataclass(frozen=True, slots=True)
class RetryAt:
    """Try again not before ``ts``."""

    ts: float
    reason: str


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Stop: the message ends in error with ``reason``."""

    reason: str


RetryDecision = RetryAt | GiveUp


def backoff_delay(failures: int, base: float, cap: float) -> float:
    """Doubling delay after ``failures`` failures in a row, never above ``cap``: for
    what retries on its own (sync calls, crashed loops), not messages, whose
    schedule the operator configures."""
    if failures <= 0:
        return 0.0
    return float(min(cap, base * 2.0 ** min(failures - 1, 60)))


class RetryPolicy:
    """A retry schedule: one delay per further attempt."""

    def __init__(self, delays: Sequence[int | float]) -> None:
        if any(delay < 0 for delay in delays):
            raise ValueError("retry delays must not be negative")
        self.delays = tuple(float(delay) for delay in delays)

    @property
    def max_attempts(self) -> int:
        """Total attempts a transiently failing message gets: the first plus retries."""
        return len(self.delays) + 1

    def decide(self, attempts: int, failure: Classification, now: float) -> RetryDecision:
        """Decide after a failure, given the number of earlier failed attempts."""
        if isinstance(failure, Permanent):
            return GiveUp(failure.reason)
        if attempts >= len(self.delays):
            return GiveUp(f"{failure.reason} (gave up after {attempts + 1} attempts)")
        return RetryAt(now + self.delays[max(attempts, 0)], failure.reason)
