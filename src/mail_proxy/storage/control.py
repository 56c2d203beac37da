"""What may be sent right now: suspended tenants and batches, and the instance switch.

Both live in the database, so every proxy process sharing it and every restart obey
the same answer; nothing about them is held in a process's memory.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.ports import Control
from mail_proxy.storage.database import Database
from mail_proxy.storage.tables import instance_state, suspensions

SUSP = suspensions.c
STATE = instance_state.c
_INSTANCE_ROW = 1


class SqlControl(Control):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def suspend(self, tenant_id: str, batch_code: str) -> None:
        statement = (
            self._db.insert(suspensions)
            .values(tenant_id=tenant_id, batch_code=batch_code)
            .on_conflict_do_nothing()
        )

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(statement)

        await self._db.write(op, "suspend")

    async def activate(self, tenant_id: str, batch_code: str | None) -> None:
        statement = sa.delete(suspensions).where(SUSP.tenant_id == tenant_id)
        if batch_code is not None:
            statement = statement.where(SUSP.batch_code == batch_code)

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(statement)
            await self._db.dialect.announce_work(conn)

        await self._db.write(op, "activate")

    async def suspensions(self, tenant_id: str) -> list[str]:
        query = (
            sa.select(SUSP.batch_code).where(SUSP.tenant_id == tenant_id).order_by(SUSP.batch_code)
        )

        async def op(conn: AsyncConnection) -> list[str]:
            return list((await conn.execute(query)).scalars())

        return await self._db.read(op, "suspensions")

    async def set_instance_active(self, active: bool, *, if_unset: bool = False) -> None:
        upsert = self._db.insert(instance_state).values(id=_INSTANCE_ROW, active=active)
        if if_unset:
            upsert = upsert.on_conflict_do_nothing(index_elements=[STATE.id])
        else:
            upsert = upsert.on_conflict_do_update(
                index_elements=[STATE.id], set_={"active": active}
            )

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(upsert)
            if active:
                await self._db.dialect.announce_work(conn)

        await self._db.write(op, "set_instance_active")

    async def instance_active(self) -> bool:
        async def op(conn: AsyncConnection) -> bool:
            stored = await conn.scalar(sa.select(STATE.active).where(STATE.id == _INSTANCE_ROW))
            return True if stored is None else bool(stored)

        return await self._db.read(op, "instance_active")
