"""Delivery reports: the wire form of the events a client sync call carries.

Events are turned into the report entries of the protocol ("Client sync" in
protocol.md). When a tenant is called is ``sync_schedule``'s.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mail_proxy.domain.models import Event, EventType

#: Key of a ``deferred`` event's details holding when the message will be retried.
RETRY_AT_KEY = "deferred_until"


def report_entry(event: Event) -> dict[str, Any]:
    """The wire form of one event: ``tenant_id``, ``id``, ``pk``, ``event`` and its fields."""
    entry: dict[str, Any] = {
        "tenant_id": event.tenant_id,
        "id": event.message_id,
        "pk": event.message_pk,
        "event": str(event.type),
    }
    entry.update(_event_fields(event))
    return entry


def _event_fields(event: Event) -> dict[str, Any]:
    details = event.details or {}
    if event.type is EventType.SENT:
        return {"sent_ts": event.ts}
    if event.type is EventType.ERROR:
        return {"error_ts": event.ts, "error": event.description}
    if event.type is EventType.DEFERRED:
        return {
            "deferred_ts": _wire_ts(details.get(RETRY_AT_KEY), event.ts),
            "deferred_reason": event.description,
        }
    if event.type is EventType.BOUNCE:
        return {
            "bounce_ts": event.ts,
            "bounce_type": details.get("bounce_type"),
            "bounce_code": details.get("bounce_code"),
            "bounce_reason": details.get("bounce_reason", event.description),
        }
    return {"pec_event": str(event.type), "pec_ts": event.ts, "pec_details": _pec_details(event)}


def _pec_details(event: Event) -> Any:
    if event.details:
        return event.details
    return event.description


def _wire_ts(value: Any, fallback: int) -> int:
    """Integer Unix seconds on the wire; a missing or odd value falls back to the event's."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    return fallback


def encode_report(events: Sequence[Event]) -> bytes:
    """The body of one call: ``{"delivery_report": [...]}`` as compact UTF-8 JSON."""
    payload = {"delivery_report": [report_entry(e) for e in events]}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
