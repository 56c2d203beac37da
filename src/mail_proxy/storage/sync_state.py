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
from mail_proxy.storage.leases import release_row_lease, take_row_lease
from mail_proxy.storage.tables import tenants
from mail_proxy.storage.tenants import update_tenant_columns

TEN = tenants.c
_LEASE = ("sync_lease_holder", "sync_lease_until")


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
        async def op(conn: AsyncConnection) -> bool:
            return await take_row_lease(
                conn, tenants, TEN.id == tenant_id, _LEASE, holder, now, until
            )

        return await self._db.write(op, "take_sync_lease", writes_first=True)

    async def release_lease(self, tenant_id: str, holder: str) -> None:
        async def op(conn: AsyncConnection) -> None:
            await release_row_lease(conn, tenants, TEN.id == tenant_id, _LEASE, holder)

        await self._db.write(op, "release_sync_lease", writes_first=True)
