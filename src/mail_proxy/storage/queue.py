"""The queue: lease, finish and release messages.

Batches are written with one statement per kind of change, never a round trip per
message, so claiming or finishing 100 messages costs one or two statements.

A finish batch that fails for any reason but an unavailable database is split in
halves until the rows that cannot be stored are found; each of those is recorded
with ``outcomes.unstorable`` (its decision without its text) and every other row is
committed. One bad row never holds back the outcomes of other messages or tenants.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.domain.models import ClaimedMessage, Outcome
from mail_proxy.domain.text import storable
from mail_proxy.ports import Queue
from mail_proxy.storage import records
from mail_proxy.storage.database import Database, error_summary
from mail_proxy.storage.outcomes import finish_plan, unstorable
from mail_proxy.storage.tables import ACTIVE_STATUSES, messages

log = structlog.get_logger(__name__)

# What the database (or the driver encoding a value) says about the data of a row.
# Only these split a batch to find the row; StorageUnavailable and programming
# errors go up whole, since no row of the batch is to blame.
ROW_REFUSALS = (sa_exc.StatementError, UnicodeError, ValueError)

MSG = messages.c
# How many due rows a claim looks at to fill ``limit`` under the per-account caps.
CLAIM_SCAN_FACTOR = 2


class SqlQueue(Queue):
    def __init__(self, db: Database) -> None:
        self._db = db

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
            return await self._db.dialect.claim_rows(conn, params)

        rows = await self._db.write(op, "claim", writes_first=True)
        rows = sorted(rows, key=lambda r: (r.priority, r.pk))
        return [
            ClaimedMessage(records.message_record(r, self._db.cipher), token, expires) for r in rows
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
        return plan.applied(await self._db.dialect.finish(self._db, plan))

    async def release(self, leases: Iterable[tuple[int, str]]) -> int:
        pairs = list(leases)
        if not pairs:
            return 0

        async def op(conn: AsyncConnection) -> int:
            result = await conn.execute(
                sa.update(messages)
                .where(self._db.pairs_in(MSG.pk, MSG.lease_token, pairs))
                .values(lease_token=None, lease_expires=None)
            )
            return result.rowcount

        return await self._db.write(op, "release", writes_first=True, single=True)

    async def oldest_due_ts(self, now: float) -> float | None:
        """Messages leased to a dispatcher are not waiting, so they do not count."""
        query = sa.select(sa.func.min(MSG.created_at)).where(
            MSG.status.in_(ACTIVE_STATUSES),
            sa.or_(MSG.deferred_ts.is_(None), MSG.deferred_ts <= now),
            sa.or_(MSG.lease_expires.is_(None), MSG.lease_expires <= now),
        )
        return await self._scalar_float(query, "oldest_due_ts")

    async def _scalar_float(self, query: sa.Select[Any], what: str) -> float | None:
        async def op(conn: AsyncConnection) -> float | None:
            value = (await conn.execute(query)).scalar()
            return None if value is None else float(value)

        return await self._db.read(op, what)


def _describe(exc: Exception) -> str:
    """An exception for the log: its type and first words, themselves storable."""
    return storable(f"{type(exc).__name__}: {error_summary(exc)}", 300)
