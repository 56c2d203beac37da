"""Sliding-window rate limits: a full window reopens when its oldest send leaves it."""

from __future__ import annotations

import pytest

from mail_proxy.domain.models import RateLimits, SendWindow
from mail_proxy.domain.rate_limit import (
    DAY,
    HOUR,
    MINUTE,
    Allowed,
    RateDecision,
    WaitUntil,
    check,
    stricter,
    tenant_limits,
)

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("window", "limits", "expected"),
    [
        pytest.param(SendWindow(), RateLimits(), Allowed(), id="no-limits"),
        pytest.param(
            SendWindow(minute=100, hour=100, day=100), RateLimits(), Allowed(), id="unlimited"
        ),
        pytest.param(
            SendWindow(minute=4, oldest_minute=NOW - 10),
            RateLimits(per_minute=5),
            Allowed(),
            id="minute-has-room",
        ),
        pytest.param(
            SendWindow(minute=5, oldest_minute=NOW - 10),
            RateLimits(per_minute=5),
            WaitUntil(NOW - 10 + MINUTE),
            id="minute-full",
        ),
        pytest.param(
            SendWindow(minute=1, hour=3, oldest_minute=NOW - 5, oldest_hour=NOW - 600),
            RateLimits(per_minute=10, per_hour=3),
            WaitUntil(NOW - 600 + HOUR),
            id="hour-full",
        ),
        pytest.param(
            SendWindow(day=2, oldest_day=NOW - 100),
            RateLimits(per_day=2),
            WaitUntil(NOW - 100 + DAY),
            id="day-full",
        ),
        pytest.param(
            SendWindow(minute=2, hour=2, oldest_minute=NOW - 30, oldest_hour=NOW - 30),
            RateLimits(per_minute=2, per_hour=2),
            WaitUntil(NOW - 30 + HOUR),
            id="latest-reopening-wins",
        ),
        pytest.param(
            SendWindow(), RateLimits(per_minute=0), WaitUntil(NOW + MINUTE), id="zero-limit"
        ),
        pytest.param(
            SendWindow(minute=3, oldest_minute=NOW - 61),
            RateLimits(per_minute=3),
            WaitUntil(NOW),
            id="stale-oldest-never-in-the-past",
        ),
        pytest.param(
            SendWindow(minute=3), RateLimits(per_minute=3), WaitUntil(NOW + MINUTE), id="no-oldest"
        ),
    ],
)
def test_check(window: SendWindow, limits: RateLimits, expected: RateDecision) -> None:
    """Each configured window is checked; the decision is the latest reopening time."""
    assert check(window, limits, NOW) == expected


def test_unlimited_flag_is_true_only_without_any_limit() -> None:
    """``unlimited`` lets the store skip the send log entirely."""
    assert RateLimits().unlimited
    assert not RateLimits(per_day=1).unlimited


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (None, RateLimits()),
        ({}, RateLimits()),
        ({"per_minute": 10}, RateLimits(per_minute=10)),
        (
            {"per_minute": 1, "per_hour": 2, "per_day": 3},
            RateLimits(per_minute=1, per_hour=2, per_day=3),
        ),
        ({"per_hour": None, "per_day": 0}, RateLimits(per_day=0)),
        ({"per_minute": True, "per_hour": "5"}, RateLimits()),  # not counts: ignored
    ],
)
def test_tenant_limits_from_the_setting(
    config: dict[str, object] | None, expected: RateLimits
) -> None:
    assert tenant_limits(config) == expected


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (Allowed(), Allowed(), Allowed()),
        (WaitUntil(5), Allowed(), WaitUntil(5)),
        (Allowed(), WaitUntil(7), WaitUntil(7)),
        (WaitUntil(9), WaitUntil(7), WaitUntil(9)),
    ],
)
def test_stricter_decision_wins(
    first: RateDecision, second: RateDecision, expected: RateDecision
) -> None:
    assert stricter(first, second) == expected
