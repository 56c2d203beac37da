"""Listings of the queue: read, count, delete and clean up messages and their events."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.domain.models import Event, MessageRecord, Status
from mail_proxy.ports import DeleteResult, MessageFilter, Messages
from mail_proxy.storage import records
from mail_proxy.storage.database import Database
from mail_proxy.storage.tables import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    message_events,
    messages,
    tenants,
)

MSG = messages.c
EVT = message_events.c


class SqlMessages(Messages):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, tenant_id: str, message_id: str) -> MessageRecord | None:
        query = sa.select(messages).where(MSG.tenant_id == tenant_id, MSG.id == message_id)

        async def op(conn: AsyncConnection) -> MessageRecord | None:
            row = (await conn.execute(query)).first()
            return records.message_record(row, self._db.cipher) if row is not None else None

        return await self._db.read(op, "get_message")

    async def search(
        self, flt: MessageFilter, *, limit: int = 100, offset: int = 0
    ) -> list[MessageRecord]:
        query = (
            sa.select(messages)
            .where(*_conditions(flt))
            .order_by(MSG.pk)
            .limit(limit)
            .offset(offset)
        )

        async def op(conn: AsyncConnection) -> list[MessageRecord]:
            return [
                records.message_record(row, self._db.cipher) for row in await conn.execute(query)
            ]

        return await self._db.read(op, "list_messages")

    async def page(
        self, flt: MessageFilter, *, before_pk: int | None, limit: int
    ) -> list[MessageRecord]:
        query = sa.select(messages).where(*_conditions(flt))
        if before_pk is not None:
            query = query.where(MSG.pk < before_pk)
        query = query.order_by(MSG.pk.desc()).limit(limit)

        async def op(conn: AsyncConnection) -> list[MessageRecord]:
            return [
                records.message_record(row, self._db.cipher) for row in await conn.execute(query)
            ]

        return await self._db.read(op, "page_messages")

    async def retry_now(self, tenant_id: str, message_id: str, now: float) -> bool:
        statement = (
            sa.update(messages)
            .where(
                MSG.tenant_id == tenant_id,
                MSG.id == message_id,
                MSG.status.in_(ACTIVE_STATUSES),
                sa.or_(MSG.lease_expires.is_(None), MSG.lease_expires < now),
            )
            .values(deferred_ts=now, updated_at=now)
        )

        async def op(conn: AsyncConnection) -> bool:
            changed = (await conn.execute(statement)).rowcount == 1
            if changed:
                await self._db.dialect.announce_work(conn)
            return changed

        return await self._db.write(op, "retry_now", writes_first=True)

    async def count(self, flt: MessageFilter) -> int:
        query = sa.select(sa.func.count()).select_from(messages).where(*_conditions(flt))

        async def op(conn: AsyncConnection) -> int:
            return int((await conn.execute(query)).scalar_one())

        return await self._db.read(op, "count_messages")

    async def count_by_status(self, tenant_id: str | None = None) -> dict[Status, int]:
        query = sa.select(MSG.status, sa.func.count()).group_by(MSG.status)
        if tenant_id is not None:
            query = query.where(MSG.tenant_id == tenant_id)

        async def op(conn: AsyncConnection) -> dict[Status, int]:
            counts = dict.fromkeys(Status, 0)
            for status, count in await conn.execute(query):
                counts[Status(status)] = int(count)
            return counts

        return await self._db.read(op, "count_by_status")

    async def delete(self, tenant_id: str, ids: Sequence[str]) -> DeleteResult:
        wanted = list(dict.fromkeys(ids))

        async def op(conn: AsyncConnection) -> DeleteResult:
            if not wanted:
                return DeleteResult([], [], [])
            owners = await conn.execute(
                sa.select(MSG.tenant_id, MSG.id).where(self._db.in_(MSG.id, wanted))
            )
            mine: set[str] = set()
            elsewhere: set[str] = set()
            for owner, message_id in owners:
                (mine if owner == tenant_id else elsewhere).add(message_id)
            if mine:
                await conn.execute(
                    sa.delete(messages).where(
                        MSG.tenant_id == tenant_id, self._db.in_(MSG.id, mine)
                    )
                )
            return DeleteResult(
                removed=[i for i in wanted if i in mine],
                not_found=[i for i in wanted if i not in mine and i not in elsewhere],
                unauthorized=[i for i in wanted if i not in mine and i in elsewhere],
            )

        return await self._db.write(op, "delete_messages")

    async def cleanup(self, older_than: float, tenant_id: str | None = None) -> int:
        unreported = sa.exists().where(
            message_events.c.message_pk == MSG.pk, message_events.c.reported_ts.is_(None)
        )
        statement = sa.delete(messages).where(
            MSG.status.in_(FINISHED_STATUSES), MSG.updated_at < older_than, ~unreported
        )
        if tenant_id is not None:
            statement = statement.where(MSG.tenant_id == tenant_id)

        async def op(conn: AsyncConnection) -> int:
            return (await conn.execute(statement)).rowcount

        return await self._db.write(op, "cleanup_messages")

    async def events(self, tenant_id: str, message_id: str) -> list[Event]:
        query = (
            sa.select(message_events)
            .join(messages, MSG.pk == EVT.message_pk)
            .where(MSG.tenant_id == tenant_id, MSG.id == message_id)
            .order_by(EVT.event_id)
        )
        return await read_events(self._db, query, "message_events")

    async def events_of(self, message_pks: Sequence[int]) -> list[Event]:
        """The events of many messages in one query (``GET /messages?include_history``),
        in the order they happened."""
        pks = sorted(set(message_pks))
        if not pks:
            return []
        query = (
            sa.select(message_events)
            .where(self._db.in_(EVT.message_pk, pks))
            .order_by(EVT.event_id)
        )
        return await read_events(self._db, query, "events_of_messages")


def _conditions(flt: MessageFilter) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if flt.tenant_id is not None:
        conditions.append(MSG.tenant_id == flt.tenant_id)
    if flt.status is not None:
        conditions.append(MSG.status == Status(flt.status).value)
    if flt.active_only:
        conditions.append(MSG.status.in_(ACTIVE_STATUSES))
    if flt.batch_code is not None:
        conditions.append(MSG.batch_code == flt.batch_code)
    if flt.account_id is not None:
        conditions.append(MSG.account_id == flt.account_id)
    if flt.message_id is not None:
        conditions.append(MSG.id == flt.message_id)
        if flt.tenant_id is None:
            # Every tenant's (tenant_id, id) probed in the unique index: an index on id
            # alone cost every insert and every outcome update one more index entry.
            # Deleting a tenant deletes its messages, so no message is left out.
            conditions.append(MSG.tenant_id.in_(sa.select(tenants.c.id)))
    if flt.text:
        # As stored: the payload is JSON text with non-ASCII characters \u-escaped.
        needle = json.dumps(flt.text)[1:-1]
        conditions.append(MSG.payload.icontains(needle, autoescape=True))
    if flt.since is not None:
        conditions.append(MSG.created_at >= flt.since)
    if flt.until is not None:
        conditions.append(MSG.created_at <= flt.until)
    return conditions


async def read_events(db: Database, query: sa.Select[Any], what: str) -> list[Event]:
    """The events a query selects (listings and the outbox read them the same way)."""

    async def op(conn: AsyncConnection) -> list[Event]:
        return [records.event(row) for row in await conn.execute(query)]

    return await db.read(op, what)
