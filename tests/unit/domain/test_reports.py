"""Report entries from events, and the per-tenant calling rules (heartbeat, DND, back-off)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mail_proxy.domain import reports
from mail_proxy.domain.models import Event, EventType
from mail_proxy.domain.reports import SyncSchedule


def _event(type_: EventType, **kw: Any) -> Event:
    base: dict[str, Any] = {
        "event_id": 7,
        "message_pk": 42,
        "tenant_id": "acme",
        "message_id": "m-1",
        "type": type_,
        "ts": 1000,
    }
    base.update(kw)
    return Event(**base)


COMMON = {"tenant_id": "acme", "id": "m-1", "pk": 42}


@pytest.mark.parametrize(
    ("event", "fields"),
    [
        (_event(EventType.SENT), {"event": "sent", "sent_ts": 1000}),
        (
            _event(EventType.ERROR, description="550 no such user"),
            {"event": "error", "error_ts": 1000, "error": "550 no such user"},
        ),
        (
            _event(
                EventType.DEFERRED,
                description="451 try later",
                details={reports.RETRY_AT_KEY: 1060.7},
            ),
            {"event": "deferred", "deferred_ts": 1060, "deferred_reason": "451 try later"},
        ),
        (
            _event(EventType.DEFERRED, description="rate limited"),
            {"event": "deferred", "deferred_ts": 1000, "deferred_reason": "rate limited"},
        ),
        (
            _event(
                EventType.BOUNCE,
                description="mailbox full",
                details={"bounce_type": "soft", "bounce_code": "4.2.2"},
            ),
            {
                "event": "bounce",
                "bounce_ts": 1000,
                "bounce_type": "soft",
                "bounce_code": "4.2.2",
                "bounce_reason": "mailbox full",
            },
        ),
        (
            _event(EventType.PEC_DELIVERY, details={"receipt": "avvenuta-consegna"}),
            {
                "event": "pec_delivery",
                "pec_event": "pec_delivery",
                "pec_ts": 1000,
                "pec_details": {"receipt": "avvenuta-consegna"},
            },
        ),
        (
            _event(EventType.PEC_TIMEOUT, description="no acceptance in 1800 s"),
            {
                "event": "pec_timeout",
                "pec_event": "pec_timeout",
                "pec_ts": 1000,
                "pec_details": "no acceptance in 1800 s",
            },
        ),
    ],
    ids=["sent", "error", "deferred-until", "deferred-no-until", "bounce", "pec", "pec-text"],
)
def test_report_entry_fields(event: Event, fields: dict[str, Any]) -> None:
    """Each event type becomes tenant_id, id, pk and exactly the protocol's fields."""
    assert reports.report_entry(event) == {**COMMON, **fields}


def test_deferred_with_non_numeric_retry_time_falls_back_to_event_time() -> None:
    """A malformed retry time in details never reaches the wire; the event time does."""
    event = _event(EventType.DEFERRED, details={reports.RETRY_AT_KEY: "soon"})
    assert reports.report_entry(event)["deferred_ts"] == 1000


def test_encode_report_keeps_order_and_wraps_in_delivery_report() -> None:
    """The body is {"delivery_report": [...]} in the order given (event order)."""
    events = [_event(EventType.DEFERRED, event_id=1), _event(EventType.SENT, event_id=2, ts=1100)]
    body = json.loads(reports.encode_report(events))
    assert [e["event"] for e in body["delivery_report"]] == ["deferred", "sent"]


def test_empty_report_is_a_heartbeat_body() -> None:
    """With nothing to report the body is an empty list, as heartbeats send."""
    assert json.loads(reports.encode_report([])) == {"delivery_report": []}


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(0, 0.0), (1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (9, 60.0), (500, 60.0)],
)
def test_backoff_doubles_up_to_the_cap(failures: int, delay: float) -> None:
    """1, 2, 4 … seconds after consecutive failures, never more than the cap."""
    assert reports.backoff_delay(failures, base=1.0, cap=60.0) == delay


def test_failure_then_success_resets_the_backoff() -> None:
    """Failures push retry_at out; a success clears them and restarts the heartbeat clock."""
    s = reports.after_failure(SyncSchedule(), now=100.0, base=1.0, cap=60.0)
    s = reports.after_failure(s, now=101.0, base=1.0, cap=60.0)
    assert (s.failures, s.retry_at) == (2, 103.0)
    ok = reports.after_success(s, now=104.0, next_sync_after=None)
    assert ok == SyncSchedule(last_sync_ts=104.0)


@pytest.mark.parametrize(
    ("current_dnd", "next_sync_after", "expected"),
    [
        (None, 500.0, 500.0),
        (500.0, None, 500.0),
        (500.0, 300.0, 300.0),
        (500.0, 90.0, None),
        (None, None, None),
    ],
    ids=["set", "kept-when-absent", "replaced", "past-ends-it", "none"],
)
def test_next_sync_after_sets_dnd(
    current_dnd: float | None, next_sync_after: float | None, expected: float | None
) -> None:
    """The latest next_sync_after wins; an answer without it keeps the current DND."""
    s = SyncSchedule(dnd_until=current_dnd)
    assert (
        reports.after_success(s, now=100.0, next_sync_after=next_sync_after).dnd_until == expected
    )


INTERVAL = 300.0


@pytest.mark.parametrize(
    ("schedule", "has_events", "forced", "due"),
    [
        (SyncSchedule(), False, False, 0.0),
        (SyncSchedule(last_sync_ts=1000.0), False, False, 1300.0),
        (SyncSchedule(last_sync_ts=1000.0), True, False, 0.0),
        (SyncSchedule(last_sync_ts=1000.0, dnd_until=5000.0), False, False, 5000.0),
        (SyncSchedule(last_sync_ts=1000.0, dnd_until=1100.0), False, False, 1300.0),
        (SyncSchedule(last_sync_ts=1000.0, dnd_until=5000.0), True, False, 0.0),
        (SyncSchedule(last_sync_ts=1000.0, failures=2, retry_at=1010.0), True, False, 1010.0),
        (SyncSchedule(last_sync_ts=1000.0, failures=2, retry_at=1010.0), False, False, 1300.0),
        (SyncSchedule(last_sync_ts=1000.0, failures=2, retry_at=1010.0), True, True, 0.0),
        (SyncSchedule(last_sync_ts=1000.0, dnd_until=5000.0), False, True, 0.0),
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
def test_next_call_ts(schedule: SyncSchedule, has_events: bool, forced: bool, due: float) -> None:
    """Events go at once, heartbeats every interval, DND holds only heartbeats."""
    got = reports.next_call_ts(schedule, has_events=has_events, interval=INTERVAL, forced=forced)
    assert got == due


def test_tenant_run_now_clears_dnd_and_forces() -> None:
    """The tenant's own run-now ends its DND and calls it at once."""
    s, forced = reports.run_now(SyncSchedule(dnd_until=5000.0), own_tenant=True, now=100.0)
    assert forced and s.dnd_until is None


@pytest.mark.parametrize(("dnd_until", "forced"), [(5000.0, False), (50.0, True), (None, True)])
def test_admin_run_now_respects_dnd(dnd_until: float | None, forced: bool) -> None:
    """The admin's run-now calls only tenants not in DND, and leaves DND unchanged."""
    s, got = reports.run_now(SyncSchedule(dnd_until=dnd_until), own_tenant=False, now=100.0)
    assert got is forced and s.dnd_until == dnd_until
    assert reports.in_dnd(s, 100.0) is (not forced)


NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("asked", "refused"),
    [
        (NOW + 600, None),
        (NOW - 600, None),
        (0.0, None),
        (NOW + reports.MAX_DND_SECONDS, None),
        (NOW + reports.MAX_DND_SECONDS + 1, "more than 30 days ahead"),
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
    assert reports.dnd_refusal(asked, NOW) == refused
