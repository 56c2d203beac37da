"""Delivery reports: which events go into a client sync call, and when to call.

Events are turned into the report entries of the protocol ("Client sync" in
protocol.md). The calling rules are a small per-tenant state machine: a tenant is
called at once when it has events to report, at least every sync interval as a
heartbeat, never for a heartbeat while the application asked not to be disturbed
(``next_sync_after``), and after a failed call only once its back-off has passed.
Nothing here reads a clock: every decision takes ``now``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from mail_proxy.domain.models import Event, EventType

#: Key of a ``deferred`` event's details holding when the message will be retried.
RETRY_AT_KEY = "deferred_until"
#: Longest Do Not Disturb an application may ask for. Further is taken for a unit
#: mistake (milliseconds for seconds) and ignored rather than silencing a tenant.
MAX_DND_SECONDS = 30 * 86400.0
#: Immediate calls in a row for ``queued > 0``; then the tenant waits for its normal
#: schedule, so an application that always answers ``queued`` cannot spin the reporter.
MAX_QUEUED_ROUNDS = 10


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


@dataclass(frozen=True, slots=True)
class SyncSchedule:
    """What the reporter knows of one tenant when deciding whether to call it.

    ``last_sync_ts`` and ``dnd_until`` are persisted; ``failures`` and ``retry_at``
    (the back-off) live in memory only, so a restart simply tries again at once.
    """

    last_sync_ts: float | None = None
    dnd_until: float | None = None
    failures: int = 0
    retry_at: float | None = None


def backoff_delay(failures: int, base: float, cap: float) -> float:
    """Doubling delay after ``failures`` failed calls in a row, never above ``cap``."""
    if failures <= 0:
        return 0.0
    return float(min(cap, base * 2.0 ** min(failures - 1, 60)))


def after_failure(s: SyncSchedule, now: float, base: float, cap: float) -> SyncSchedule:
    """One more failure: wait the next back-off step before calling again."""
    failures = s.failures + 1
    return replace(s, failures=failures, retry_at=now + backoff_delay(failures, base, cap))


def after_success(s: SyncSchedule, now: float, next_sync_after: float | None) -> SyncSchedule:
    """An acknowledged call: back-off reset, heartbeat clock restarted.

    The latest ``next_sync_after`` an application gave wins; an answer without one
    leaves the current DND as it is, and one not in the future ends it.
    """
    dnd = s.dnd_until if next_sync_after is None else next_sync_after
    if dnd is not None and dnd <= now:
        dnd = None
    return SyncSchedule(last_sync_ts=now, dnd_until=dnd, failures=0, retry_at=None)


def dnd_refusal(next_sync_after: float, now: float) -> str | None:
    """Why an application's ``next_sync_after`` is ignored, or None when it is usable.

    Times on the wire are Unix seconds: NaN, infinities, negatives and values more
    than ``MAX_DND_SECONDS`` ahead cannot be meant.
    """
    if not math.isfinite(next_sync_after):
        return "not a finite number"
    if next_sync_after < 0:
        return "negative"
    if next_sync_after > now + MAX_DND_SECONDS:
        return f"more than {MAX_DND_SECONDS / 86400:g} days ahead"
    return None


def in_dnd(s: SyncSchedule, now: float) -> bool:
    return s.dnd_until is not None and s.dnd_until > now


def heartbeat_due(s: SyncSchedule, interval: float) -> float:
    """When a call without events is owed: one interval after the last, not during DND."""
    due = (s.last_sync_ts + interval) if s.last_sync_ts is not None else 0.0
    if s.dnd_until is not None:
        due = max(due, s.dnd_until)
    return due


def next_call_ts(
    s: SyncSchedule, *, has_events: bool, interval: float, forced: bool = False
) -> float:
    """Earliest time the tenant should be called; due when ``<= now``.

    Events are reported at once (DND does not hold them back) but wait out a
    back-off; a forced call (run-now) skips both the wait and the back-off.
    """
    if forced:
        return 0.0
    wanted = 0.0 if has_events else heartbeat_due(s, interval)
    if s.retry_at is not None:
        wanted = max(wanted, s.retry_at)
    return wanted


def run_now(s: SyncSchedule, *, own_tenant: bool, now: float) -> tuple[SyncSchedule, bool]:
    """Apply a run-now: (new schedule, whether to force a call).

    The tenant's own run-now clears its DND and forces a call; the admin's run-now
    forces a call only for tenants not in DND (protocol.md, POST /commands/run-now).
    """
    if own_tenant:
        return replace(s, dnd_until=None), True
    return s, not in_dnd(s, now)
