"""Events: the outbox of delivery reports.

An event stays unreported (``reported_ts`` NULL) until the tenant's endpoint
acknowledged the report carrying it; a partial index over exactly those rows keeps
the sync loop's queries fast however much history the table holds. A finished
message whose events are all acknowledged gets ``reported_ts`` too, which is what
makes it eligible for cleanup.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.domain.models import Event
from mail_proxy.ports import Outbox
from mail_proxy.storage.database import Database
from mail_proxy.storage.messages import read_events
from mail_proxy.storage.tables import FINISHED_STATUSES, message_events, messages

EVT = message_events.c
_TENANTS_WITH_UNREPORTED = sa.text(
    """
    WITH RECURSIVE waiting(tenant_id) AS (
        SELECT min(tenant_id) FROM message_events WHERE reported_ts IS NULL
        UNION ALL
        SELECT (SELECT min(later.tenant_id) FROM message_events later
                WHERE later.reported_ts IS NULL AND later.tenant_id > waiting.tenant_id)
        FROM waiting WHERE waiting.tenant_id IS NOT NULL
    )
    SELECT tenant_id FROM waiting WHERE tenant_id IS NOT NULL ORDER BY tenant_id
    """
)
MSG = messages.c


class SqlOutbox(Outbox):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def unreported(self, tenant_id: str | None, limit: int) -> list[Event]:
        query = (
            sa.select(message_events)
            .where(EVT.reported_ts.is_(None))
            .order_by(EVT.event_id)
            .limit(limit)
        )
        if tenant_id is not None:
            query = query.where(EVT.tenant_id == tenant_id)
        return await read_events(self._db, query, "unreported_events")

    async def tenants_with_unreported(self) -> list[str]:
        """A loose index scan: one probe of the unreported-events index per tenant,
        not a DISTINCT over every unreported event. The sync loop asks after each
        group of outcomes, and a backlog of unacknowledged events must not make
        that grow."""
        query = _TENANTS_WITH_UNREPORTED

        async def op(conn: AsyncConnection) -> list[str]:
            return list((await conn.execute(query)).scalars())

        return await self._db.read(op, "tenants_with_unreported")

    async def ack(self, event_ids: Sequence[int], now: float) -> int:
        ids = sorted(set(event_ids))
        if not ids:
            return 0
        pending = message_events.alias("pending")
        still_open = sa.exists().where(
            pending.c.message_pk == MSG.pk, pending.c.reported_ts.is_(None)
        )
        touched = sa.select(EVT.message_pk).where(self._db.in_(EVT.event_id, ids))

        async def op(conn: AsyncConnection) -> int:
            acked = await conn.execute(
                sa.update(message_events)
                .where(self._db.in_(EVT.event_id, ids), EVT.reported_ts.is_(None))
                .values(reported_ts=now)
            )
            await conn.execute(
                sa.update(messages)
                .where(MSG.pk.in_(touched), MSG.status.in_(FINISHED_STATUSES), ~still_open)
                .values(reported_ts=now)
            )
            return acked.rowcount

        return await self._db.write(op, "ack_events", writes_first=True)

    async def unreported_stats(self) -> tuple[int, float | None]:
        query = sa.select(sa.func.count(), sa.func.min(EVT.ts)).where(EVT.reported_ts.is_(None))

        async def op(conn: AsyncConnection) -> tuple[int, float | None]:
            count, oldest = (await conn.execute(query)).one()
            return int(count), None if oldest is None else float(oldest)

        return await self._db.read(op, "unreported_stats")
