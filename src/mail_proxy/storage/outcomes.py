"""How a delivery outcome changes a message row and which event it appends.

``finish_plan`` turns a batch of (pk, lease token, outcome) into one executemany
UPDATE per outcome kind plus one INSERT of events, so finishing 100 messages costs
four statements. A deferral's event carries the retry time in its details (the
report's ``deferred_ts``). Items whose lease token no longer matches (the lease expired and
another dispatcher took the message) change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mail_proxy.domain.models import Deferred, EventType, Outcome, Sent
from mail_proxy.domain.reports import RETRY_AT_KEY
from mail_proxy.storage.records import dump_json

# Plain driver SQL with positional ``?`` markers (``SqlStore._executemany`` adapts them
# per driver): executed with 100 parameter tuples at a time, SQLAlchemy's per-row
# parameter processing would cost more than the database work.
_CLEAR = "attempts = attempts + 1, lease_token = NULL, lease_expires = NULL, reported_ts = NULL"
SENT_SQL = (
    f"UPDATE messages SET status = 'sent', {_CLEAR}, error = NULL, error_ts = NULL,"
    " updated_at = ?, smtp_ts = ? WHERE pk = ?"
)
DEFERRED_SQL = (
    f"UPDATE messages SET status = 'deferred', {_CLEAR},"
    " updated_at = ?, deferred_ts = ?, error = ? WHERE pk = ?"
)
# A rate-limit hold (``Deferred.counts_attempt`` false): deferred without spending an
# attempt of the retry schedule.
HELD_SQL = (
    "UPDATE messages SET status = 'deferred', lease_token = NULL, lease_expires = NULL,"
    " reported_ts = NULL, updated_at = ?, deferred_ts = ?, error = ? WHERE pk = ?"
)
FAILED_SQL = (
    f"UPDATE messages SET status = 'error', {_CLEAR},"
    " updated_at = ?, error_ts = ?, error = ? WHERE pk = ?"
)
EVENT_SQL = (
    "INSERT INTO message_events (message_pk, tenant_id, message_id, type, ts, description,"
    " details) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


@dataclass
class FinishPlan:
    applied: list[bool] = field(default_factory=list)
    sent: list[tuple[Any, ...]] = field(default_factory=list)
    deferred: list[tuple[Any, ...]] = field(default_factory=list)
    held: list[tuple[Any, ...]] = field(default_factory=list)
    failed: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def updates(self) -> list[tuple[str, list[tuple[Any, ...]]]]:
        pairs = (
            (SENT_SQL, self.sent),
            (DEFERRED_SQL, self.deferred),
            (HELD_SQL, self.held),
            (FAILED_SQL, self.failed),
        )
        return [(sql, rows) for sql, rows in pairs if rows]


def finish_plan(
    items: Sequence[tuple[int, str, Outcome]], current: Mapping[int, Any]
) -> FinishPlan:
    """``current`` maps pk to the locked row (pk, tenant_id, id, lease_token)."""
    plan = FinishPlan()
    done: set[int] = set()
    for pk, token, outcome in items:
        row = current.get(pk)
        ok = row is not None and row.lease_token == token and pk not in done
        plan.applied.append(ok)
        if ok:
            done.add(pk)
            _add(plan, row, outcome)
    return plan


def _add(plan: FinishPlan, row: Any, outcome: Outcome) -> None:
    pk, tenant_id, message_id = row.pk, row.tenant_id, row.id
    if isinstance(outcome, Sent):
        plan.sent.append((outcome.ts, outcome.ts, pk))
        kind, description, details = EventType.SENT, None, outcome.details
    elif isinstance(outcome, Deferred):
        rows = plan.deferred if outcome.counts_attempt else plan.held
        rows.append((outcome.ts, outcome.until, outcome.reason, pk))
        kind, description = EventType.DEFERRED, outcome.reason
        details = (outcome.details or {}) | {RETRY_AT_KEY: outcome.until}
    else:
        plan.failed.append((outcome.ts, outcome.ts, outcome.error, pk))
        kind, description, details = EventType.ERROR, outcome.error, outcome.details
    event = (pk, tenant_id, message_id, kind.value, outcome.ts, description, dump_json(details))
    plan.events.append(event)
