"""Report entries from events: the wire form of a client sync call."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mail_proxy.domain import reports
from mail_proxy.domain.models import Event, EventType


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
