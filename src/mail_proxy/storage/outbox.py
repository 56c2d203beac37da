"""Events: the outbox of delivery reports.

An event stays unreported (``reported_ts`` NULL) until the tenant's endpoint
acknowledged the report carrying it; a partial index over exactly those rows keeps
the reporter's queries fast however much history the table holds. A finished
message whose events are all acknowledged gets ``reported_ts`` too, which is what
makes it eligible for cleanup.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.domain.models import Event
from mail_proxy.errors import NotFound
from mail_proxy.storage import records
from mail_proxy.storage.sql_base import SqlStore
from mail_proxy.storage.tables import FINISHED_STATUSES, message_events, messages

E = message_events.c
_TENANTS_WITH_UNREPORTED = sa.text(
    """
    WITH RECURSIVE waiting(tenant_id) AS (
        SELECT min(tenant_id) FROM message_events WHERE reported_ts IS NULL
        UNION ALL
        SELECT (SELECT min(e.tenant_id) FROM message_events e
                WHERE e.reported_ts IS NULL AND e.tenant_id > waiting.tenant_id)
        FROM waiting WHERE waiting.tenant_id IS NOT NULL
    )
    SELECT tenant_id FROM waiting WHERE tenant_id IS NOT NULL ORDER BY tenant_id
    """
)
M = messages.c


class EventOps(SqlStore):
    """Store methods over the ``message_events`` table."""

    async def add_event(
        self,
        event_message_pk: int,
        type_: str,
        ts: float,
        description: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> int:
        async def op(conn: AsyncConnection) -> int:
            owner = await conn.execute(sa.select(M.tenant_id, M.id).where(M.pk == event_message_pk))
            row = owner.first()
            if row is None:
                raise NotFound(f"No message with pk {event_message_pk}")
            result = await conn.execute(
                sa.insert(message_events)
                .returning(E.event_id)
                .values(
                    message_pk=event_message_pk,
                    tenant_id=row.tenant_id,
                    message_id=row.id,
                    type=str(type_),
                    ts=ts,
                    description=description,
                    details=records.dump_json(details),
                )
            )
            # The message has something to report again.
            await conn.execute(
                sa.update(messages).where(M.pk == event_message_pk).values(reported_ts=None)
            )
            return int(result.scalar_one())

        return await self._write(op, "add_event")

    async def message_events(self, tenant_id: str, message_id: str) -> list[Event]:
        query = (
            sa.select(message_events)
            .join(messages, M.pk == E.message_pk)
            .where(M.tenant_id == tenant_id, M.id == message_id)
            .order_by(E.event_id)
        )
        return await self._events(query, "message_events")

    async def unreported_events(self, tenant_id: str | None, limit: int) -> list[Event]:
        query = (
            sa.select(message_events)
            .where(E.reported_ts.is_(None))
            .order_by(E.event_id)
            .limit(limit)
        )
        if tenant_id is not None:
            query = query.where(E.tenant_id == tenant_id)
        return await self._events(query, "unreported_events")

    async def tenants_with_unreported(self) -> list[str]:
        """A loose index scan: one probe of the unreported-events index per tenant,
        not a DISTINCT over every unreported event. The reporter asks after each
        group of outcomes, and a backlog of unacknowledged events must not make
        that grow."""
        query = _TENANTS_WITH_UNREPORTED

        async def op(conn: AsyncConnection) -> list[str]:
            return list((await conn.execute(query)).scalars())

        return await self._read(op, "tenants_with_unreported")

    async def ack_events(self, event_ids: Sequence[int], now: float) -> int:
        ids = sorted(set(event_ids))
        if not ids:
            return 0
        pending = message_events.alias("pending")
        still_open = sa.exists().where(
            pending.c.message_pk == M.pk, pending.c.reported_ts.is_(None)
        )
        touched = sa.select(E.message_pk).where(self._in(E.event_id, ids))

        async def op(conn: AsyncConnection) -> int:
            acked = await conn.execute(
                sa.update(message_events)
                .where(self._in(E.event_id, ids), E.reported_ts.is_(None))
                .values(reported_ts=now)
            )
            await conn.execute(
                sa.update(messages)
                .where(M.pk.in_(touched), M.status.in_(FINISHED_STATUSES), ~still_open)
                .values(reported_ts=now)
            )
            return acked.rowcount

        return await self._write(op, "ack_events", writes_first=True)

    async def unreported_stats(self) -> tuple[int, float | None]:
        query = sa.select(sa.func.count(), sa.func.min(E.ts)).where(E.reported_ts.is_(None))

        async def op(conn: AsyncConnection) -> tuple[int, float | None]:
            count, oldest = (await conn.execute(query)).one()
            return int(count), None if oldest is None else float(oldest)

        return await self._read(op, "unreported_stats")

    async def _events(self, query: sa.Select[Any], what: str) -> list[Event]:
        async def op(conn: AsyncConnection) -> list[Event]:
            return [records.event(row) for row in await conn.execute(query)]

        return await self._read(op, what)

    async def events_of_messages(self, message_pks: Sequence[int]) -> list[Event]:
        """The events of many messages in one query (``GET /messages?include_history``),
        in the order they happened."""
        pks = sorted(set(message_pks))
        if not pks:
            return []
        query = sa.select(message_events).where(self._in(E.message_pk, pks)).order_by(E.event_id)
        return await self._events(query, "events_of_messages")
