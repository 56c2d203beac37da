"""Aggregate reads for the dashboard's overview.

Counting by minute reads ``ix_messages_created_at``; the send windows
``ix_send_log_account_ts``; the backlog the unreported-events index. The counts by
status, the oldest waiting message and the deferred reasons have no index of their
own: a ``(status, pk)`` index made SQLite's planner leave the partial claim index
for the dispatcher's claim (delivery at 50,000 queued fell to half), and the claim
matters more than an overview refreshed every ten seconds.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.domain.rate_limit import DAY, HOUR, MINUTE
from mail_proxy.ports import AccountSends, Backlog, MinuteCount, Overview
from mail_proxy.storage.database import Database
from mail_proxy.storage.tables import ACTIVE_STATUSES, message_events, messages, send_log

MSG = messages.c
EVT = message_events.c
SENDS = send_log.c


class SqlOverview(Overview):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def per_minute(self, since: float, tenant_id: str | None) -> list[MinuteCount]:
        minute = sa.cast(sa.func.floor(MSG.created_at / 60), sa.BigInteger).label("minute")
        query = (
            sa.select(
                minute,
                sa.func.count(),
                sa.func.sum(sa.case((MSG.status == "sent", 1), else_=0)),
                sa.func.sum(sa.case((MSG.status == "error", 1), else_=0)),
            )
            .where(MSG.created_at >= since, *_tenant(MSG.tenant_id, tenant_id))
            .group_by(minute)
            .order_by(minute)
        )

        async def op(conn: AsyncConnection) -> list[MinuteCount]:
            return [
                MinuteCount(int(m), int(q), int(s or 0), int(f or 0))
                for m, q, s, f in await conn.execute(query)
            ]

        return await self._db.read(op, "overview_per_minute")

    async def oldest_active(self, tenant_id: str | None) -> float | None:
        """The first submitted of each waiting status, found in submission order."""
        firsts = [
            sa.select(MSG.created_at)
            .where(MSG.status == status, *_tenant(MSG.tenant_id, tenant_id))
            .order_by(MSG.pk)
            .limit(1)
            for status in ACTIVE_STATUSES
        ]

        async def op(conn: AsyncConnection) -> float | None:
            found = [(await conn.execute(query)).scalar() for query in firsts]
            return min((float(ts) for ts in found if ts is not None), default=None)

        return await self._db.read(op, "overview_oldest_active")

    async def deferred_reasons(self, tenant_id: str | None, limit: int) -> list[tuple[str, int]]:
        reason = sa.func.coalesce(MSG.error, "")
        query = (
            sa.select(reason, sa.func.count().label("n"))
            .where(MSG.status == "deferred", *_tenant(MSG.tenant_id, tenant_id))
            .group_by(reason)
            .order_by(sa.text("n DESC"))
            .limit(limit)
        )

        async def op(conn: AsyncConnection) -> list[tuple[str, int]]:
            return [(str(r), int(n)) for r, n in await conn.execute(query)]

        return await self._db.read(op, "overview_deferred_reasons")

    async def account_sends(self, tenant_id: str | None, now: float) -> list[AccountSends]:
        def within(seconds: float) -> Any:
            return sa.func.sum(sa.case((SENDS.ts > now - seconds, 1), else_=0))

        query = (
            sa.select(
                SENDS.tenant_id, SENDS.account_id, within(MINUTE), within(HOUR), sa.func.count()
            )
            .where(SENDS.ts > now - DAY, *_tenant(SENDS.tenant_id, tenant_id))
            .group_by(SENDS.tenant_id, SENDS.account_id)
        )

        async def op(conn: AsyncConnection) -> list[AccountSends]:
            return [
                AccountSends(t, a, int(m or 0), int(h or 0), int(d))
                for t, a, m, h, d in await conn.execute(query)
            ]

        return await self._db.read(op, "overview_account_sends")

    async def backlogs(self, tenant_id: str | None) -> list[Backlog]:
        query = (
            sa.select(EVT.tenant_id, sa.func.count(), sa.func.min(EVT.ts))
            .where(EVT.reported_ts.is_(None), *_tenant(EVT.tenant_id, tenant_id))
            .group_by(EVT.tenant_id)
        )

        async def op(conn: AsyncConnection) -> list[Backlog]:
            return [Backlog(t, int(n), o) for t, n, o in await conn.execute(query)]

        return await self._db.read(op, "overview_backlogs")

    async def newest_pk(self, tenant_id: str | None) -> int:
        query = sa.select(sa.func.max(MSG.pk)).where(*_tenant(MSG.tenant_id, tenant_id))
        return int(await self._scalar(query, "overview_newest_pk") or 0)

    async def _scalar(self, query: sa.Select[Any], what: str) -> Any:
        async def op(conn: AsyncConnection) -> Any:
            return (await conn.execute(query)).scalar()

        return await self._db.read(op, what)


def _tenant(column: sa.ColumnElement[Any], tenant_id: str | None) -> list[sa.ColumnElement[bool]]:
    return [] if tenant_id is None else [column == tenant_id]
