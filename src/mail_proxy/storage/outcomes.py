"""How a delivery outcome changes a message row and which event it appends.

``finish_plan`` turns a batch of (pk, lease token, outcome) into one UPDATE per
outcome kind plus one INSERT of events (SQLite: finishing 100 messages usually costs
two statements in one transaction), or into one statement doing all of it
(PostgreSQL: ``FINISH_ARRAYS_SQL``, its own transaction in one round trip). A
deferral's event carries the retry time in its details (the report's
``deferred_ts``). Items whose lease token no longer matches (the lease expired and
another dispatcher took the message) change nothing.

Reasons, errors, event descriptions and details come from outside (SMTP replies,
exception texts) and pass through ``storable`` here, whatever the caller did: one
reply holding invalid UTF-8 once made a whole batch unstorable. Should a row still
fail, ``unstorable`` gives the outcome that is written in its place.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mail_proxy.domain.models import Deferred, EventType, Failed, Outcome, Sent
from mail_proxy.domain.reports import RETRY_AT_KEY
from mail_proxy.domain.text import storable, storable_json
from mail_proxy.storage.records import dump_json

UNSTORABLE_REASON = "outcome could not be stored"

# Plain driver SQL with positional ``?`` markers (``SqlStore`` adapts them per driver).
# One UPDATE ... FROM (VALUES ...) per outcome kind both applies the outcome and, by
# what it RETURNS, tells which leases still matched: no SELECT first, no per-row
# parameter processing by SQLAlchemy.
_ATTEMPT = "attempts = attempts + 1"
_SET = {
    "sent": f"status = 'sent', {_ATTEMPT}, smtp_ts = v.ts, error = NULL, error_ts = NULL",
    "deferred": f"status = 'deferred', {_ATTEMPT}, deferred_ts = v.until, error = v.reason",
    # A rate-limit hold (``Deferred.counts_attempt`` false): deferred without spending
    # an attempt of the retry schedule.
    "held": "status = 'deferred', deferred_ts = v.until, error = v.reason",
    "failed": f"status = 'error', {_ATTEMPT}, error_ts = v.ts, error = v.reason",
}
# On SQLite the statement starts with UPDATE, never WITH: that is what makes its
# driver open the transaction before it (see engines.py), so the row and its event
# commit together. ``v`` is the batch: (pk, token, ts, until, reason) per outcome.
_UPDATE_SQL = (
    "UPDATE messages SET {changes}, lease_token = NULL, lease_expires = NULL,"
    " reported_ts = NULL, updated_at = v.ts"
    " FROM {rows}"
    " WHERE messages.pk = v.pk AND messages.lease_token = v.token"
    " RETURNING messages.pk, messages.tenant_id, messages.id"
)
EVENT_COLUMNS = "message_pk, tenant_id, message_id, type, ts, description, details"
EVENT_SQL = f"INSERT INTO message_events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"


def _kind_update(kind: str) -> str:
    rows = f"(SELECT * FROM v WHERE v.kind = '{kind}') AS v"
    return f"{kind} AS ({_UPDATE_SQL.format(rows=rows, changes=_SET[kind])})"


# PostgreSQL: the whole batch in one statement, one binary array per column of
# ``FinishPlan.statement_rows``. Each kind's UPDATE is a CTE over the rows of that
# kind (a pk appears once per plan, so no row is updated twice), and the events are
# inserted from what the UPDATEs RETURN: rows and events still commit together, and
# a row whose lease no longer matches gets neither. ORDER BY position gives event ids
# in batch order. A statement of its own needs no BEGIN and COMMIT round trips.
FINISH_ARRAYS_SQL = (
    "WITH v AS MATERIALIZED (SELECT * FROM unnest(%b::int8[], %b::text[], %b::text[],"
    " %b::float8[], %b::float8[], %b::text[], %b::text[], %b::text[]) WITH ORDINALITY"
    " AS v(pk, token, kind, ts, until, reason, type, details, position)), "
    + ", ".join(_kind_update(kind) for kind in _SET)
    + ", done AS ("
    + " UNION ALL ".join(f"SELECT * FROM {kind}" for kind in _SET)
    + f"), events AS (INSERT INTO message_events ({EVENT_COLUMNS})"
    " SELECT done.pk, done.tenant_id, done.id, v.type, v.ts, v.reason, v.details"
    " FROM done JOIN v ON v.pk = done.pk ORDER BY v.position)"
    " SELECT pk, tenant_id, id FROM done"
)


def update_sql(kind: str, rows: int) -> str:
    """The UPDATE applying ``rows`` outcomes of one kind, given as rows of VALUES
    (whose columns SQLite names column1, column2, ...)."""
    values = ", ".join(["(?, ?, ?, ?, ?)"] * rows)
    batch = (
        "(SELECT column1 AS pk, column2 AS token, column3 AS ts, column4 AS until,"
        f" column5 AS reason FROM (VALUES {values})) AS v"
    )
    return _UPDATE_SQL.format(rows=batch, changes=_SET[kind])


@dataclass
class FinishPlan:
    """Which items to try: a pk given twice in one batch is refused up front. Each
    backend asks for the shape it sends (``groups`` or ``statement_rows``), so an
    outcome is classified once."""

    items: Sequence[tuple[int, str, Outcome]]
    candidates: list[bool] = field(default_factory=list)

    def applied(self, updated: Mapping[int, Any]) -> list[bool]:
        """Per item, in input order: did its lease still match?"""
        return [
            candidate and pk in updated
            for candidate, (pk, _, _) in zip(self.candidates, self.items, strict=True)
        ]

    def groups(self) -> dict[str, list[tuple[Any, ...]]]:
        """Per outcome kind, the rows (pk, token, ts, until, reason) of ``update_sql``."""
        groups: dict[str, list[tuple[Any, ...]]] = {}
        for pk, token, outcome in self._tried():
            kind, until, reason = _kind(outcome)
            groups.setdefault(kind, []).append((pk, token, float(outcome.ts), until, reason))
        return groups

    def statement_rows(self) -> list[tuple[Any, ...]]:
        """Per item tried, in input order: (pk, token, kind, ts, until, reason, event
        type, event details), the rows of ``FINISH_ARRAYS_SQL``. An event's
        description is the row's reason, and its ts the outcome's."""
        rows = []
        for pk, token, outcome in self._tried():
            kind, until, reason = _kind(outcome)
            event_type, ts, _, details = _event_fields(outcome)
            rows.append((pk, token, kind, ts, until, reason, event_type, details))
        return rows

    def events(self, updated: Mapping[int, Any]) -> list[tuple[Any, ...]]:
        """One event row per applied item, in input order. ``updated`` maps pk to the
        returned (pk, tenant_id, id) row."""
        return [_event(updated[pk], outcome) for pk, _, outcome in self._tried() if pk in updated]

    def _tried(self) -> Iterator[tuple[int, str, Outcome]]:
        for candidate, item in zip(self.candidates, self.items, strict=True):
            if candidate:
                yield item


def finish_plan(items: Sequence[tuple[int, str, Outcome]]) -> FinishPlan:
    plan = FinishPlan(items)
    seen: set[int] = set()
    for pk, _, _ in items:
        plan.candidates.append(pk not in seen)
        seen.add(pk)
    return plan


def unstorable(outcome: Outcome) -> Outcome:
    """The same decision without its outside text: what is recorded for a row whose
    outcome failed to store. A send stays a send (the server accepted the mail, so
    the message must not go out again); a deferral keeps its retry time and a
    failure stays final, as the dispatcher's retry schedule decided."""
    if isinstance(outcome, Sent):
        return Sent(ts=outcome.ts)
    if isinstance(outcome, Deferred):
        return Deferred(
            until=outcome.until,
            reason=UNSTORABLE_REASON,
            ts=outcome.ts,
            counts_attempt=outcome.counts_attempt,
        )
    return Failed(ts=outcome.ts, error=UNSTORABLE_REASON)


def _kind(outcome: Outcome) -> tuple[str, float | None, str | None]:
    if isinstance(outcome, Sent):
        return "sent", None, None
    if isinstance(outcome, Deferred):
        kind = "deferred" if outcome.counts_attempt else "held"
        return kind, float(outcome.until), storable(outcome.reason)
    return "failed", None, storable(outcome.error)


def _event(row: Any, outcome: Outcome) -> tuple[Any, ...]:
    """An event row (``EVENT_COLUMNS``) for the returned (pk, tenant_id, id) ``row``."""
    return (*row, *_event_fields(outcome))


def _event_fields(outcome: Outcome) -> tuple[str, float, str | None, str | None]:
    """(type, ts, description, details) of the event an outcome appends."""
    description: str | None
    if isinstance(outcome, Sent):
        kind, description, details = EventType.SENT, None, outcome.details
    elif isinstance(outcome, Deferred):
        kind, description = EventType.DEFERRED, storable(outcome.reason)
        details = (outcome.details or {}) | {RETRY_AT_KEY: outcome.until}
    else:
        kind, description, details = EventType.ERROR, storable(outcome.error), outcome.details
    stored = dump_json(storable_json(details))
    return (kind.value, float(outcome.ts), description, stored)
