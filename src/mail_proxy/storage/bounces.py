"""Recorded bounces and each tenant's suppression list, as the API lists them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.ports.returned_mail import BounceRecord, Bounces, Suppression, Suppressions
from mail_proxy.storage.database import Database
from mail_proxy.storage.tables import bounces, suppressions

BNC = bounces.c
SUP = suppressions.c


class SqlBounces(Bounces):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def search(
        self, tenant_id: str | None, *, unmatched: bool = False, limit: int = 100, offset: int = 0
    ) -> list[BounceRecord]:
        query = sa.select(bounces).order_by(BNC.id.desc()).limit(limit).offset(offset)
        if unmatched:
            query = query.where(BNC.tenant_id.is_(None))
        elif tenant_id is not None:
            query = query.where(BNC.tenant_id == tenant_id)

        async def op(conn: AsyncConnection) -> list[BounceRecord]:
            return [_bounce(row) for row in await conn.execute(query)]

        return await self._db.read(op, "search_bounces")


def _bounce(row: Any) -> BounceRecord:
    return BounceRecord(
        id=row.id,
        ts=int(row.ts),
        mailbox=row.mailbox,
        tenant_id=row.tenant_id,
        message_id=row.message_id,
        matched_by=row.matched_by,
        recipient=row.recipient,
        bounce_type=row.bounce_type,
        bounce_code=row.bounce_code,
        bounce_reason=row.bounce_reason,
    )


class SqlSuppressions(Suppressions):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def search(
        self, tenant_id: str | None, *, limit: int = 1000, offset: int = 0
    ) -> list[Suppression]:
        query = sa.select(suppressions).order_by(SUP.tenant_id, SUP.address)
        if tenant_id is not None:
            query = query.where(SUP.tenant_id == tenant_id)
        query = query.limit(limit).offset(offset)

        async def op(conn: AsyncConnection) -> list[Suppression]:
            return [
                Suppression(r.tenant_id, r.address, r.reason, r.bounce_id, int(r.created_at))
                for r in await conn.execute(query)
            ]

        return await self._db.read(op, "search_suppressions")

    async def add(self, tenant_id: str, address: str, reason: str, now: float) -> bool:
        entry = {
            "tenant_id": tenant_id,
            "address": address.lower(),
            "reason": reason,
            "bounce_id": None,
            "created_at": now,
        }
        statement = (
            self._db.insert(suppressions)
            .values(entry)
            .on_conflict_do_nothing()
            .returning(SUP.address)
        )

        async def op(conn: AsyncConnection) -> bool:
            return (await conn.execute(statement)).first() is not None

        return await self._db.write(op, "add_suppression", writes_first=True)

    async def remove(self, tenant_id: str, address: str) -> bool:
        statement = sa.delete(suppressions).where(
            SUP.tenant_id == tenant_id, SUP.address == address.lower()
        )

        async def op(conn: AsyncConnection) -> bool:
            return (await conn.execute(statement)).rowcount > 0

        return await self._db.write(op, "remove_suppression", writes_first=True)

    async def suppressed(self, tenant_id: str, addresses: Sequence[str]) -> dict[str, str]:
        wanted = sorted({address.lower() for address in addresses})
        if not wanted:
            return {}
        query = sa.select(SUP.address, SUP.reason).where(
            SUP.tenant_id == tenant_id, self._db.in_(SUP.address, wanted)
        )

        async def op(conn: AsyncConnection) -> dict[str, str]:
            return {row.address: row.reason for row in await conn.execute(query)}

        return await self._db.read(op, "suppressed_addresses")
