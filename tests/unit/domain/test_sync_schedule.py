"""The per-tenant sync schedule: who is due when, and how answers and run-now move it.

Every case is a row: a starting state, a transition at ``now``, what follows.
"""

from __future__ import annotations

import pytest

from mail_proxy.domain.retry import backoff_delay
from mail_proxy.domain.sync_schedule import MAX_DND_SECONDS, SyncPolicy, SyncSchedule, dnd_refusal

POLICY = SyncPolicy(interval=300.0, retry_base=1.0)
S = SyncSchedule


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(0, 0.0), (1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (9, 60.0), (500, 60.0)],
)
def test_backoff_doubles_up_to_the_cap(failures: int, delay: float) -> None:
    """1, 2, 4 … seconds after consecutive failures, never more than the cap."""
    assert backoff_delay(failures, base=1.0, cap=60.0) == delay


@pytest.mark.parametrize(
    ("schedule", "has_events", "due"),
    [
        (S(), False, 0.0),
        (S(last_sync_ts=1000.0), False, 1300.0),
        (S(last_sync_ts=1000.0), True, 0.0),
        (S(last_sync_ts=1000.0, dnd_until=5000.0), False, 5000.0),
        (S(last_sync_ts=1000.0, dnd_until=1100.0), False, 1300.0),
        (S(last_sync_ts=1000.0, dnd_until=5000.0), True, 0.0),
        (S(last_sync_ts=1000.0, failures=2, retry_at=1010.0), True, 1010.0),
        (S(last_sync_ts=1000.0, failures=2, retry_at=1010.0), False, 1300.0),
        (S(last_sync_ts=1000.0, failures=2, retry_at=1010.0, forced=True), True, 0.0),
        (S(last_sync_ts=1000.0, dnd_until=5000.0, forced=True), False, 0.0),
    ],
    ids=[
        "never-synced",
        "heartbeat",
        "events-at-once",
        "dnd-holds-heartbeat",
        "short-dnd-keeps-interval",
        "dnd-not-for-events",
        "backoff-holds-events",
        "heartbeat-later-than-backoff",
        "forced-skips-backoff",
        "forced-skips-dnd",
    ],
)
def test_due_at(schedule: SyncSchedule, has_events: bool, due: float) -> None:
    """Events go at once, heartbeats every interval, DND holds only heartbeats."""
    assert schedule.due_at(POLICY, has_events=has_events) == due


@pytest.mark.parametrize(
    ("schedule", "now", "owed"),
    [
        (S(), 0.0, True),
        (S(last_sync_ts=1000.0), 1299.0, False),
        (S(last_sync_ts=1000.0), 1300.0, True),
        (S(last_sync_ts=1000.0, dnd_until=5000.0), 1300.0, False),
        (S(last_sync_ts=1000.0, retry_at=1400.0), 1300.0, False),
        (S(last_sync_ts=1000.0, forced=True), 1100.0, False),
    ],
    ids=["never-synced", "before-interval", "at-interval", "in-dnd", "backing-off", "forced"],
)
def test_heartbeat_owed(schedule: SyncSchedule, now: float, owed: bool) -> None:
    """A call with nothing to report is owed only by the heartbeat rule: a forced call
    goes out, but empty-handed only if events remain or a heartbeat is due anyway."""
    assert schedule.heartbeat_owed(POLICY, now) is owed


@pytest.mark.parametrize(
    ("before", "now", "after"),
    [
        (S(), 100.0, S(failures=1, retry_at=101.0)),
        (S(failures=1, retry_at=101.0), 101.0, S(failures=2, retry_at=103.0)),
        (S(failures=20, retry_at=1.0), 100.0, S(failures=21, retry_at=400.0)),
        (S(last_sync_ts=50.0, dnd_until=900.0), 100.0, S(50.0, 900.0, 1, 101.0)),
    ],
    ids=["first", "second-doubles", "capped-at-interval", "keeps-sync-and-dnd"],
)
def test_failed(before: SyncSchedule, now: float, after: SyncSchedule) -> None:
    """Each failure pushes the retry out by the next back-off step."""
    assert before.failed(POLICY, now) == after


@pytest.mark.parametrize(
    ("before", "next_sync_after", "after"),
    [
        (S(failures=2, retry_at=103.0), None, S(last_sync_ts=104.0)),
        (S(), 500.0, S(last_sync_ts=104.0, dnd_until=500.0)),
        (S(dnd_until=500.0), None, S(last_sync_ts=104.0, dnd_until=500.0)),
        (S(dnd_until=500.0), 300.0, S(last_sync_ts=104.0, dnd_until=300.0)),
        (S(dnd_until=500.0), 90.0, S(last_sync_ts=104.0)),
        (S(forced=True), None, S(last_sync_ts=104.0, forced=True)),
    ],
    ids=[
        "resets-backoff",
        "sets-dnd",
        "dnd-kept-when-absent",
        "replaced",
        "past-ends-it",
        "forced-kept",
    ],
)
def test_succeeded(
    before: SyncSchedule, next_sync_after: float | None, after: SyncSchedule
) -> None:
    """Back-off reset, heartbeat restarted; the latest next_sync_after wins, an answer
    without it keeps the DND; a run-now that came in during the call still stands."""
    assert before.succeeded(104.0, next_sync_after) == after


@pytest.mark.parametrize(
    ("before", "own_tenant", "after"),
    [
        (S(dnd_until=5000.0), True, S(forced=True)),
        (S(), True, S(forced=True)),
        (S(dnd_until=5000.0), False, S(dnd_until=5000.0)),
        (S(dnd_until=50.0), False, S(dnd_until=50.0, forced=True)),
        (S(), False, S(forced=True)),
        (S(dnd_until=5000.0, forced=True), False, S(dnd_until=5000.0, forced=True)),
    ],
    ids=[
        "tenant-clears-dnd",
        "tenant-forces",
        "admin-respects-dnd",
        "admin-after-dnd-ended",
        "admin-forces",
        "admin-keeps-tenant-force",
    ],
)
def test_run_now(before: SyncSchedule, own_tenant: bool, after: SyncSchedule) -> None:
    """The tenant's own run-now ends its DND and forces a call; the admin's forces a
    call only for tenants not in DND, and leaves DND unchanged."""
    assert before.run_now(own_tenant=own_tenant, now=100.0) == after


@pytest.mark.parametrize(
    ("before", "stored_sync", "stored_dnd", "after"),
    [
        (S(), None, None, S()),
        (S(last_sync_ts=200.0), 100.0, None, S(last_sync_ts=200.0)),
        (S(last_sync_ts=100.0), 200.0, 900.0, S(last_sync_ts=200.0, dnd_until=900.0)),
        (S(dnd_until=900.0, failures=1, retry_at=5.0), None, None, S(failures=1, retry_at=5.0)),
        (S(forced=True), 100.0, None, S(last_sync_ts=100.0, forced=True)),
    ],
    ids=["nothing", "own-sync-newer", "stored-newer", "dnd-cleared-elsewhere", "forced-kept"],
)
def test_with_stored(
    before: SyncSchedule,
    stored_sync: float | None,
    stored_dnd: float | None,
    after: SyncSchedule,
) -> None:
    """Another process's sync counts; the stored DND is the current one; the back-off
    and a pending forced call are this process's own."""
    assert before.with_stored(stored_sync, stored_dnd) == after


def test_call_started_spends_the_forced_call() -> None:
    """A forced call is made once: the call that answers it clears the flag."""
    assert S(last_sync_ts=1.0, forced=True).call_started() == S(last_sync_ts=1.0)


@pytest.mark.parametrize(
    ("dnd_until", "now", "in_dnd"),
    [(None, 100.0, False), (100.0, 100.0, False), (101.0, 100.0, True)],
    ids=["none", "ends-now", "ahead"],
)
def test_in_dnd(dnd_until: float | None, now: float, in_dnd: bool) -> None:
    assert S(dnd_until=dnd_until).in_dnd(now) is in_dnd


NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("asked", "refused"),
    [
        (NOW + 600, None),
        (NOW - 600, None),
        (0.0, None),
        (NOW + MAX_DND_SECONDS, None),
        (NOW + MAX_DND_SECONDS + 1, "more than 30 days ahead"),
        (NOW * 1000, "more than 30 days ahead"),
        (float("nan"), "not a finite number"),
        (float("inf"), "not a finite number"),
        (float("-inf"), "not a finite number"),
        (-1.0, "negative"),
    ],
    ids=[
        "ten-minutes",
        "past-ends-dnd",
        "zero",
        "at-the-limit",
        "past-the-limit",
        "milliseconds",
        "nan",
        "inf",
        "minus-inf",
        "negative",
    ],
)
def test_dnd_refusal(asked: float, refused: str | None) -> None:
    """next_sync_after is Unix seconds: NaN, infinities, negatives and years ahead are
    not meant and are ignored; a past value is usable (it ends DND)."""
    assert dnd_refusal(asked, NOW) == refused
