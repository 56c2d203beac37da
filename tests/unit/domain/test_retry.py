"""The retry schedule: growing delays for transient failures, then give up."""

from __future__ import annotations

import pytest

from mail_proxy.domain.retry import GiveUp, RetryAt, RetryPolicy
from mail_proxy.domain.smtp_replies import Permanent, Transient

NOW = 1_700_000_000.0
DEFAULT = [60, 300, 900, 3600, 7200]


@pytest.mark.parametrize(("attempts", "delay"), [(0, 60), (1, 300), (2, 900), (3, 3600), (4, 7200)])
def test_transient_failures_wait_longer_each_time(attempts: int, delay: int) -> None:
    """The n-th failure waits the n-th configured delay, with the server's reason."""
    decision = RetryPolicy(DEFAULT).decide(attempts, Transient("451 later"), NOW)
    assert decision == RetryAt(NOW + delay, "451 later")


def test_gives_up_after_the_last_delay() -> None:
    """The failure after the last delay ends the message, saying how many tries."""
    decision = RetryPolicy(DEFAULT).decide(5, Transient("451 later"), NOW)
    assert decision == GiveUp("451 later (gave up after 6 attempts)")
    assert RetryPolicy(DEFAULT).max_attempts == 6


def test_permanent_failure_gives_up_at_once() -> None:
    """A 5xx never waits, even on the first attempt, and keeps the reply text."""
    decision = RetryPolicy(DEFAULT).decide(0, Permanent("550 5.1.1 unknown"), NOW)
    assert decision == GiveUp("550 5.1.1 unknown")


def test_short_schedule_from_settings() -> None:
    """A shortened schedule (as tests configure it) is honoured exactly."""
    policy = RetryPolicy([1, 2])
    assert policy.decide(0, Transient("x"), NOW) == RetryAt(NOW + 1, "x")
    assert policy.decide(1, Transient("x"), NOW) == RetryAt(NOW + 2, "x")
    assert isinstance(policy.decide(2, Transient("x"), NOW), GiveUp)


def test_no_retries_configured_fails_first_time() -> None:
    """An empty schedule turns every transient failure into an error."""
    assert isinstance(RetryPolicy([]).decide(0, Transient("x"), NOW), GiveUp)


def test_negative_delay_is_refused() -> None:
    """A negative delay is a configuration mistake, reported when the policy is built."""
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy([60, -1])
