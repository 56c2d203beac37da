"""The queue: lease, finish, release, list, delete and clean up messages.

Batches are written with one statement per kind of change, never a round trip per
message, so claiming or finishing 100 messages costs one or two statements.

A finish batch that fails for any reason but an unavailable database is split in
halves until the rows that cannot be stored are found; each of those is recorded
with ``outcomes.unstorable`` (its decision without its text) and every other row is
committed. One bad row never holds back the outcomes of other messages or tenants.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.domain.models import (
    ClaimedMessage,
    MessageRecord,
    Outcome,
    Status,
)
from mail_proxy.domain.text import storable
from mail_proxy.storage import records
from mail_proxy.storage.base import DeleteResult, MessageFilter
from mail_proxy.storage.outcomes import EVENT_SQL, finish_plan, unstorable, update_sql
from mail_proxy.storage.sql_base import SqlStore, error_summary
from mail_proxy.storage.tables import ACTIVE_STATUSES, FINISHED_STATUSES, message_events, messages

log = structlog.get_logger(__name__)

# What the database (or the driver encoding a value) says about the data of a row.
# Only these split a batch to find the row; StorageUnavailable and programming
# errors go up whole, since no row of the batch is to blame.
ROW_REFUSALS = (sa_exc.StatementError, UnicodeError, ValueError)

M = messages.c
# How many due rows a claim looks at to fill ``limit`` under the per-account caps.
CLAIM_SCAN_FACTOR = 2

# Finishes per UPDATE statement: 500 x 5 parameters, far below the drivers' limits.
FINISH_CHUNK = 500


class QueueOps(SqlStore):
    """Store methods over the ``messages`` table."""

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

        rows = await self._write(op, "claim", writes_first=True)
        rows = sorted(rows, key=lambda r: (r.priority, r.pk))
        return [
            ClaimedMessage(records.message_record(r, self._cipher), token, expires) for r in rows
        ]

    async def finish_many(self, items: Sequence[tuple[int, str, Outcome]]) -> list[bool]:
        if not items:
            return []
        try:
            return await self._finish(items)
        except ROW_REFUSALS as exc:
            if len(items) > 1:
                half = len(items) // 2
                return await self.finish_many(items[:half]) + await self.finish_many(items[half:])
            return [await self._finish_unstorable(items[0], exc)]

    async def _finish_unstorable(self, item: tuple[int, str, Outcome], exc: Exception) -> bool:
        """Record the one outcome that failed to store without its outside text; if even
        that fails the row is left leased, and the message is tried again once the
        lease expires."""
        pk, token, outcome = item
        log.error("finish_outcome_unstorable", message_pk=pk, error=_describe(exc))
        try:
            return (await self._finish([(pk, token, unstorable(outcome))]))[0]
        except ROW_REFUSALS as again:
            log.error("finish_row_unstorable", message_pk=pk, error=_describe(again))
            return False

    async def _finish(self, items: Sequence[tuple[int, str, Outcome]]) -> list[bool]:
        """Apply a batch of outcomes in one transaction."""
        plan = finish_plan(items)

        async def op(conn: AsyncConnection) -> list[bool]:
            updated: dict[int, Any] = {}
            for kind, rows in plan.groups.items():
                for start in range(0, len(rows), FINISH_CHUNK):
                    chunk = rows[start : start + FINISH_CHUNK]
                    for row in await self._apply_outcomes(conn, kind, chunk):
                        updated[row[0]] = row
            events = plan.events(updated)
            if events:
                await self._executemany(conn, EVENT_SQL, events)
            return plan.applied(updated)

        return await self._write(op, "finish", writes_first=True)

    async def _apply_outcomes(
        self, conn: AsyncConnection, kind: str, rows: list[tuple[Any, ...]]
    ) -> Sequence[Any]:
        """Apply outcomes of one kind; the (pk, tenant_id, id) of rows whose lease matched."""
        params = [value for row in rows for value in row]
        return await self._fetch_driver(conn, update_sql(kind, len(rows)), params)

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

        return await self._write(op, "release", writes_first=True)

    async def get_message(self, tenant_id: str, message_id: str) -> MessageRecord | None:
        query = sa.select(messages).where(M.tenant_id == tenant_id, M.id == message_id)

        async def op(conn: AsyncConnection) -> MessageRecord | None:
            row = (await conn.execute(query)).first()
            return records.message_record(row, self._cipher) if row is not None else None

        return await self._read(op, "get_message")

    async def list_messages(
        self, flt: MessageFilter, *, limit: int = 100, offset: int = 0
    ) -> list[MessageRecord]:
        query = (
            sa.select(messages).where(*_conditions(flt)).order_by(M.pk).limit(limit).offset(offset)
        )

        async def op(conn: AsyncConnection) -> list[MessageRecord]:
            return [records.message_record(row, self._cipher) for row in await conn.execute(query)]

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

    async def _scalar_float(self, query: sa.Select[Any], what: str) -> float | None:
        async def op(conn: AsyncConnection) -> float | None:
            value = (await conn.execute(query)).scalar()
            return None if value is None else float(value)

        return await self._read(op, what)


def _describe(exc: Exception) -> str:
    """An exception for the log: its type and first words, themselves storable."""
    return storable(f"{type(exc).__name__}: {error_summary(exc)}", 300)


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
