"""The queue half of the SQL store: enqueue, lease, finish, list, delete, clean up.

Batches are written with one statement per kind of change (executemany), never a
round trip per message, so a 100-message request costs a handful of statements.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.domain.models import (
    ClaimedMessage,
    EnqueueOutcome,
    EnqueueResult,
    MessageRecord,
    NewMessage,
    Outcome,
    Status,
)
from mail_proxy.storage import records
from mail_proxy.storage.base import DeleteResult, MessageFilter
from mail_proxy.storage.outcomes import EVENT_SQL, finish_plan
from mail_proxy.storage.sql_base import SqlStore
from mail_proxy.storage.tables import ACTIVE_STATUSES, FINISHED_STATUSES, message_events, messages

M = messages.c
# How many due rows a claim looks at to fill ``limit`` under the per-account caps.
CLAIM_SCAN_FACTOR = 5
ALREADY_SENT = "id already sent"
BEING_SENT = "message is being sent"

# Executed with many parameter sets; their keys (account_id, priority, payload, ...)
# become further SET columns, as SQLAlchemy does for executemany UPDATEs.
_REPLACE = (
    sa.update(messages)
    .where(M.pk == sa.bindparam("b_pk"))
    .values(
        status="pending",
        attempts=0,
        smtp_ts=None,
        error_ts=None,
        error=None,
        reported_ts=None,
        lease_token=None,
        lease_expires=None,
    )
)


# Driver-level multi-row INSERT: SQLAlchemy's per-row parameter processing costs more
# than SQLite's own work for a 100-message batch. 500 rows stay far below the
# drivers' parameter limits (SQLite: 32,766).
INSERT_CHUNK = 500
_NEW_COLUMNS = (
    "tenant_id", "id", "account_id", "priority", "status", "payload", "batch_code",
    "deferred_ts", "attempts", "created_at", "updated_at",
)  # fmt: skip
_ROW_MARKERS = "(" + ", ".join("?" * len(_NEW_COLUMNS)) + ")"
_INSERT_SQL = (
    f"INSERT INTO messages ({', '.join(_NEW_COLUMNS)}) VALUES {{rows}}"
    " ON CONFLICT (tenant_id, id) DO NOTHING RETURNING tenant_id, id"
)


class QueueOps(SqlStore):
    """Store methods over the ``messages`` table."""

    async def enqueue(self, messages: Sequence[NewMessage], now: float) -> list[EnqueueResult]:
        if not messages:
            return []

        async def op(conn: AsyncConnection) -> list[EnqueueResult]:
            inserted = await self._insert_new(conn, messages, now)
            results: dict[int, EnqueueResult] = {}
            seen: set[tuple[str, str]] = set()
            for index, message in enumerate(messages):
                key = (message.tenant_id, message.id)
                if key in inserted and key not in seen:
                    results[index] = EnqueueResult(message.id, EnqueueOutcome.QUEUED)
                seen.add(key)
            others = [(i, m) for i, m in enumerate(messages) if i not in results]
            if others:
                existing = await self._existing(conn, [m for _, m in others])
                decided, replaces = _plan_replacements(others, existing, now)
                results.update(decided)
                if replaces:
                    await conn.execute(_REPLACE, replaces)
            return [results[i] for i in range(len(messages))]

        return await self._write(op, "enqueue")

    async def claim(
        self,
        *,
        now: float,
        lease_seconds: float,
        limit: int,
        per_account: int,
        min_priority: int = 0,
        max_priority: int = 3,
    ) -> list[ClaimedMessage]:
        if limit <= 0:
            return []
        token, expires = uuid.uuid4().hex, now + lease_seconds
        params = {
            "now": now,
            "token": token,
            "expires": expires,
            "limit": limit,
            "scan": limit * CLAIM_SCAN_FACTOR,
            "per_account": per_account,
            "min_priority": min_priority,
            "max_priority": max_priority,
        }

        async def op(conn: AsyncConnection) -> Sequence[Any]:
            return await self._claim_rows(conn, params)

        rows = sorted(await self._write(op, "claim"), key=lambda r: (r.priority, r.pk))
        return [ClaimedMessage(records.message_record(r), token, expires) for r in rows]

    async def finish_many(self, items: Sequence[tuple[int, str, Outcome]]) -> list[bool]:
        if not items:
            return []

        async def op(conn: AsyncConnection) -> list[bool]:
            query = sa.select(M.pk, M.tenant_id, M.id, M.lease_token).where(
                self._in(M.pk, {pk for pk, _, _ in items})
            )
            current = {row.pk: row for row in await conn.execute(self._for_update(query))}
            plan = finish_plan(items, current)
            for sql, rows in plan.updates:
                await self._executemany(conn, sql, rows)
            if plan.events:
                await self._executemany(conn, EVENT_SQL, plan.events)
            return plan.applied

        return await self._write(op, "finish")

    async def release(self, leases: Iterable[tuple[int, str]]) -> int:
        pairs = list(leases)
        if not pairs:
            return 0

        async def op(conn: AsyncConnection) -> int:
            result = await conn.execute(
                sa.update(messages)
                .where(sa.tuple_(M.pk, M.lease_token).in_(pairs))
                .values(lease_token=None, lease_expires=None)
            )
            return result.rowcount

        return await self._write(op, "release")

    async def get_message(self, tenant_id: str, message_id: str) -> MessageRecord | None:
        query = sa.select(messages).where(M.tenant_id == tenant_id, M.id == message_id)

        async def op(conn: AsyncConnection) -> MessageRecord | None:
            row = (await conn.execute(query)).first()
            return records.message_record(row) if row is not None else None

        return await self._read(op, "get_message")

    async def list_messages(
        self, flt: MessageFilter, *, limit: int = 100, offset: int = 0
    ) -> list[MessageRecord]:
        query = (
            sa.select(messages).where(*_conditions(flt)).order_by(M.pk).limit(limit).offset(offset)
        )

        async def op(conn: AsyncConnection) -> list[MessageRecord]:
            return [records.message_record(row) for row in await conn.execute(query)]

        return await self._read(op, "list_messages")

    async def count_messages(self, flt: MessageFilter) -> int:
        query = sa.select(sa.func.count()).select_from(messages).where(*_conditions(flt))

        async def op(conn: AsyncConnection) -> int:
            return int((await conn.execute(query)).scalar_one())

        return await self._read(op, "count_messages")

    async def count_by_status(self, tenant_id: str | None = None) -> dict[Status, int]:
        query = sa.select(M.status, sa.func.count()).group_by(M.status)
        if tenant_id is not None:
            query = query.where(M.tenant_id == tenant_id)

        async def op(conn: AsyncConnection) -> dict[Status, int]:
            counts = dict.fromkeys(Status, 0)
            for status, count in await conn.execute(query):
                counts[Status(status)] = int(count)
            return counts

        return await self._read(op, "count_by_status")

    async def oldest_due_ts(self, now: float) -> float | None:
        """Messages leased to a dispatcher are not waiting, so they do not count."""
        query = sa.select(sa.func.min(M.created_at)).where(
            M.status.in_(ACTIVE_STATUSES),
            sa.or_(M.deferred_ts.is_(None), M.deferred_ts <= now),
            sa.or_(M.lease_expires.is_(None), M.lease_expires <= now),
        )
        return await self._scalar_float(query, "oldest_due_ts")

    async def next_due_ts(self, now: float | None = None) -> float | None:
        """The next moment a message becomes claimable: a future ``deferred_ts`` or the
        expiry of a lease (a lease left by a dead process is taken over then)."""
        at = time.time() if now is None else now
        leased = sa.and_(M.lease_expires.is_not(None), M.lease_expires > at)
        query = sa.select(
            sa.func.min(sa.case((sa.and_(M.deferred_ts > at, ~leased), M.deferred_ts))),
            sa.func.min(sa.case((leased, M.lease_expires))),
        ).where(M.status.in_(ACTIVE_STATUSES))

        async def op(conn: AsyncConnection) -> float | None:
            row = (await conn.execute(query)).one()
            times = [float(ts) for ts in row if ts is not None]
            return min(times) if times else None

        return await self._read(op, "next_due_ts")

    async def delete_messages(self, tenant_id: str, ids: Sequence[str]) -> DeleteResult:
        wanted = list(dict.fromkeys(ids))

        async def op(conn: AsyncConnection) -> DeleteResult:
            if not wanted:
                return DeleteResult([], [], [])
            owners = await conn.execute(sa.select(M.tenant_id, M.id).where(self._in(M.id, wanted)))
            mine: set[str] = set()
            elsewhere: set[str] = set()
            for owner, message_id in owners:
                (mine if owner == tenant_id else elsewhere).add(message_id)
            if mine:
                await conn.execute(
                    sa.delete(messages).where(M.tenant_id == tenant_id, self._in(M.id, mine))
                )
            return DeleteResult(
                removed=[i for i in wanted if i in mine],
                not_found=[i for i in wanted if i not in mine and i not in elsewhere],
                unauthorized=[i for i in wanted if i not in mine and i in elsewhere],
            )

        return await self._write(op, "delete_messages")

    async def cleanup_messages(self, older_than: float, tenant_id: str | None = None) -> int:
        unreported = sa.exists().where(
            message_events.c.message_pk == M.pk, message_events.c.reported_ts.is_(None)
        )
        statement = sa.delete(messages).where(
            M.status.in_(FINISHED_STATUSES), M.updated_at < older_than, ~unreported
        )
        if tenant_id is not None:
            statement = statement.where(M.tenant_id == tenant_id)

        async def op(conn: AsyncConnection) -> int:
            return (await conn.execute(statement)).rowcount

        return await self._write(op, "cleanup_messages")

    async def _insert_new(
        self, conn: AsyncConnection, batch: Sequence[NewMessage], now: float
    ) -> set[tuple[str, str]]:
        """Insert every message whose key is free, with multi-row statements; the keys
        that went in. Taken keys (and repeats within the batch) are left for replacing."""
        inserted: set[tuple[str, str]] = set()
        for start in range(0, len(batch), INSERT_CHUNK):
            chunk = batch[start : start + INSERT_CHUNK]
            sql = _INSERT_SQL.format(rows=", ".join([_ROW_MARKERS] * len(chunk)))
            params = [value for message in chunk for value in _new_row(message, now)]
            result = await self._fetch_driver(conn, sql, params)
            inserted.update((tenant_id, id_) for tenant_id, id_ in result)
        return inserted

    async def _existing(
        self, conn: AsyncConnection, batch: Sequence[NewMessage]
    ) -> dict[tuple[str, str], Any]:
        """Rows already stored under the batch's (tenant_id, id) keys."""
        by_tenant: dict[str, set[str]] = {}
        for message in batch:
            by_tenant.setdefault(message.tenant_id, set()).add(message.id)
        found: dict[tuple[str, str], Any] = {}
        for tenant_id, ids in by_tenant.items():
            query = sa.select(M.pk, M.id, M.status, M.lease_expires).where(
                M.tenant_id == tenant_id, self._in(M.id, ids)
            )
            for row in await conn.execute(query):
                found[(tenant_id, row.id)] = row
        return found

    async def _scalar_float(self, query: sa.Select[Any], what: str) -> float | None:
        async def op(conn: AsyncConnection) -> float | None:
            value = (await conn.execute(query)).scalar()
            return None if value is None else float(value)

        return await self._read(op, what)


def _conditions(flt: MessageFilter) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if flt.tenant_id is not None:
        conditions.append(M.tenant_id == flt.tenant_id)
    if flt.status is not None:
        conditions.append(M.status == Status(flt.status).value)
    if flt.active_only:
        conditions.append(M.status.in_(ACTIVE_STATUSES))
    if flt.batch_code is not None:
        conditions.append(M.batch_code == flt.batch_code)
    if flt.account_id is not None:
        conditions.append(M.account_id == flt.account_id)
    return conditions


def _plan_replacements(
    items: list[tuple[int, NewMessage]], existing: dict[tuple[str, str], Any], now: float
) -> tuple[dict[int, EnqueueResult], list[dict[str, Any]]]:
    """Messages whose key was taken: replaced unless sent or being sent; a later repeat
    within the batch wins."""
    results: dict[int, EnqueueResult] = {}
    replaces: dict[tuple[str, str], dict[str, Any]] = {}
    for index, message in items:
        row = existing[(message.tenant_id, message.id)]
        if row.status == Status.SENT.value:
            results[index] = EnqueueResult(message.id, EnqueueOutcome.REJECTED, ALREADY_SENT)
        elif row.lease_expires is not None and row.lease_expires > now:
            results[index] = EnqueueResult(message.id, EnqueueOutcome.REJECTED, BEING_SENT)
        else:
            key = (message.tenant_id, message.id)
            replaces[key] = _row_values(message, now) | {"b_pk": row.pk}
            results[index] = EnqueueResult(message.id, EnqueueOutcome.REPLACED)
    return results, list(replaces.values())


def _row_values(message: NewMessage, now: float) -> dict[str, Any]:
    return {
        "account_id": message.account_id,
        "priority": int(message.priority),
        "payload": records.dump_json(message.payload),
        "batch_code": message.batch_code,
        "deferred_ts": message.deferred_ts,
        "updated_at": now,
    }


def _new_row(message: NewMessage, now: float) -> tuple[Any, ...]:
    """Values of ``_NEW_COLUMNS`` for a message queued now."""
    return (
        message.tenant_id,
        message.id,
        message.account_id,
        int(message.priority),
        "pending",
        records.dump_json(message.payload),
        message.batch_code,
        message.deferred_ts,
        0,
        now,
        now,
    )
