"""Each tenant's client-sync bookkeeping: last sync, Do Not Disturb, reporting lease.

Kept on the tenant's row so that every process sharing the database agrees on when
a tenant was last synced and which process is reporting to it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.ports import SyncState, TenantSyncState
from mail_proxy.storage.database import Database
from mail_proxy.storage.tables import tenants
from mail_proxy.storage.tenants import update_tenant_columns

TEN = tenants.c


class SqlSyncState(SyncState):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def all(self) -> list[TenantSyncState]:
        query = sa.select(
            TEN.id, TEN.last_sync_ts, TEN.dnd_until, TEN.sync_lease_holder, TEN.sync_lease_until
        ).order_by(TEN.id)

        async def op(conn: AsyncConnection) -> list[TenantSyncState]:
            rows = await conn.execute(query)
            return [
                TenantSyncState(
                    r.id, r.last_sync_ts, r.dnd_until, r.sync_lease_holder, r.sync_lease_until
                )
                for r in rows
            ]

        return await self._db.read(op, "sync_states")

    async def set(
        self,
        tenant_id: str,
        *,
        last_sync_ts: float | None = None,
        dnd_until: float | None = None,
        clear_dnd: bool = False,
    ) -> None:
        values: dict[str, Any] = {}
        if last_sync_ts is not None:
            values["last_sync_ts"] = last_sync_ts
        if clear_dnd:
            values["dnd_until"] = None
        elif dnd_until is not None:
            values["dnd_until"] = dnd_until
        if values:
            await update_tenant_columns(self._db, tenant_id, "set_sync_state", **values)

    async def take_lease(self, tenant_id: str, holder: str, now: float, until: float) -> bool:
        """One conditional UPDATE: free, expired or already ours becomes ours.

        The row lock of the UPDATE (PostgreSQL re-checks the condition on the row it
        waited for; SQLite has one writer) makes two takers never both succeed.
        """
        takeable = sa.or_(
            TEN.sync_lease_holder.is_(None),
            TEN.sync_lease_holder == holder,
            TEN.sync_lease_until < now,
        )
        statement = (
            sa.update(tenants)
            .where(TEN.id == tenant_id, takeable)
            .values(sync_lease_holder=holder, sync_lease_until=until)
        )

        async def op(conn: AsyncConnection) -> bool:
            return (await conn.execute(statement)).rowcount > 0

        return await self._db.write(op, "take_sync_lease", writes_first=True)

    async def release_lease(self, tenant_id: str, holder: str) -> None:
        statement = (
            sa.update(tenants)
            .where(TEN.id == tenant_id, TEN.sync_lease_holder == holder)
            .values(sync_lease_holder=None, sync_lease_until=None)
        )

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(statement)

        await self._db.write(op, "release_sync_lease", writes_first=True)
