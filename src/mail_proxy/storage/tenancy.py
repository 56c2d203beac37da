"""Tenants, their suspensions and their client-sync bookkeeping.

A tenant's API key is stored only as its SHA-256 hex digest (the API hashes the key
it receives and looks the tenant up by digest); callback credentials and the signing
secret are sealed with the instance cipher.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.domain.models import Tenant
from mail_proxy.errors import Conflict, InvalidInput
from mail_proxy.storage import records
from mail_proxy.storage.base import TenantSyncState
from mail_proxy.storage.sql_base import SqlStore
from mail_proxy.storage.tables import accounts, message_events, messages, suspensions, tenants

T = tenants.c
S = suspensions.c
WHOLE_TENANT = "*"
_READ_ONLY_FIELDS = {"id", "has_api_key", "created_at", "updated_at"}
_UPDATABLE = {f.name for f in dataclasses.fields(Tenant)} - _READ_ONLY_FIELDS


class TenantOps(SqlStore):
    """Store methods over ``tenants`` and ``suspensions``."""

    async def create_tenant(self, tenant: Tenant, api_key_hash: str | None, now: float) -> Tenant:
        values = records.tenant_values(tenant, self._cipher) | {
            "api_key_hash": api_key_hash,
            "api_key_expires_at": tenant.api_key_expires_at,
            "signing_secret_enc": self._cipher.seal(tenant.signing_secret),
            "created_at": now,
            "updated_at": now,
        }

        async def op(conn: AsyncConnection) -> Tenant:
            if await _tenant_row(conn, tenant.id) is not None:
                raise Conflict(f"Tenant {tenant.id!r} already exists")
            try:
                await conn.execute(sa.insert(tenants).values(values))
            except sa_exc.IntegrityError as exc:
                raise Conflict(f"Tenant {tenant.id!r} or its API key already exists") from exc
            return await self._tenant_in(conn, tenant.id)

        return await self._write(op, "create_tenant")

    async def replace_tenant(self, tenant: Tenant, now: float) -> Tenant:
        values = records.tenant_values(tenant, self._cipher) | {"updated_at": now}

        async def op(conn: AsyncConnection) -> Tenant:
            if await _tenant_row(conn, tenant.id) is None:
                await conn.execute(
                    sa.insert(tenants).values(
                        values | {"created_at": now, "api_key_expires_at": None}
                    )
                )
            else:
                await conn.execute(sa.update(tenants).where(T.id == tenant.id).values(values))
            return await self._tenant_in(conn, tenant.id)

        return await self._write(op, "replace_tenant")

    async def update_tenant(
        self, tenant_id: str, changes: dict[str, Any], now: float
    ) -> Tenant | None:
        unknown = set(changes) - _UPDATABLE
        if unknown:
            field = sorted(unknown)[0]
            raise InvalidInput(f"Tenant field {field!r} cannot be changed", field=field)
        fixed = dict(changes)
        if "client_auth" in fixed:
            fixed["client_auth"] = records.client_auth(fixed["client_auth"])

        async def op(conn: AsyncConnection) -> Tenant | None:
            row = await _tenant_row(conn, tenant_id, lock=self._target.is_postgres)
            if row is None:
                return None
            updated = dataclasses.replace(records.tenant(row, self._cipher), **fixed)
            values = records.tenant_values(updated, self._cipher) | {
                "api_key_expires_at": updated.api_key_expires_at,
                "signing_secret_enc": self._cipher.seal(updated.signing_secret),
                "updated_at": now,
            }
            await conn.execute(sa.update(tenants).where(T.id == tenant_id).values(values))
            return await self._tenant_in(conn, tenant_id)

        return await self._write(op, "update_tenant")

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        async def op(conn: AsyncConnection) -> Tenant | None:
            row = await _tenant_row(conn, tenant_id)
            return None if row is None else records.tenant(row, self._cipher)

        return await self._read(op, "get_tenant")

    async def list_tenants(self, active_only: bool = False) -> list[Tenant]:
        query = sa.select(tenants).order_by(T.id)
        if active_only:
            query = query.where(T.active.is_(True))

        async def op(conn: AsyncConnection) -> list[Tenant]:
            return [records.tenant(row, self._cipher) for row in await conn.execute(query)]

        return await self._read(op, "list_tenants")

    async def delete_tenant(self, tenant_id: str) -> bool:
        async def op(conn: AsyncConnection) -> bool:
            await conn.execute(
                sa.delete(message_events).where(message_events.c.tenant_id == tenant_id)
            )
            await conn.execute(sa.delete(messages).where(messages.c.tenant_id == tenant_id))
            await conn.execute(sa.delete(accounts).where(accounts.c.tenant_id == tenant_id))
            await conn.execute(sa.delete(suspensions).where(S.tenant_id == tenant_id))
            result = await conn.execute(sa.delete(tenants).where(T.id == tenant_id))
            return result.rowcount > 0

        return await self._write(op, "delete_tenant")

    async def set_api_key(
        self, tenant_id: str, key_hash: str | None, expires_at: int | None
    ) -> bool:
        return await self._update_tenant_columns(
            tenant_id, "set_api_key", api_key_hash=key_hash, api_key_expires_at=expires_at
        )

    async def tenant_by_key_hash(self, key_hash: str) -> Tenant | None:
        query = sa.select(tenants).where(T.api_key_hash == key_hash)

        async def op(conn: AsyncConnection) -> Tenant | None:
            row = (await conn.execute(query)).first()
            return None if row is None else records.tenant(row, self._cipher)

        return await self._read(op, "tenant_by_key_hash")

    async def set_signing_secret(self, tenant_id: str, secret: str) -> bool:
        return await self._update_tenant_columns(
            tenant_id, "set_signing_secret", signing_secret_enc=self._cipher.seal(secret)
        )

    async def suspend(self, tenant_id: str, batch_code: str) -> None:
        statement = (
            self._insert(suspensions)
            .values(tenant_id=tenant_id, batch_code=batch_code)
            .on_conflict_do_nothing()
        )

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(statement)

        await self._write(op, "suspend")

    async def activate(self, tenant_id: str, batch_code: str | None) -> None:
        statement = sa.delete(suspensions).where(S.tenant_id == tenant_id)
        if batch_code is not None:
            statement = statement.where(S.batch_code == batch_code)

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(statement)

        await self._write(op, "activate")

    async def suspensions(self, tenant_id: str) -> list[str]:
        query = sa.select(S.batch_code).where(S.tenant_id == tenant_id).order_by(S.batch_code)

        async def op(conn: AsyncConnection) -> list[str]:
            return list((await conn.execute(query)).scalars())

        return await self._read(op, "suspensions")

    async def sync_states(self) -> list[TenantSyncState]:
        query = sa.select(
            T.id, T.last_sync_ts, T.dnd_until, T.sync_lease_holder, T.sync_lease_until
        ).order_by(T.id)

        async def op(conn: AsyncConnection) -> list[TenantSyncState]:
            rows = await conn.execute(query)
            return [
                TenantSyncState(
                    r.id, r.last_sync_ts, r.dnd_until, r.sync_lease_holder, r.sync_lease_until
                )
                for r in rows
            ]

        return await self._read(op, "sync_states")

    async def set_sync_state(
        self,
        tenant_id: str,
        *,
        last_sync_ts: float | None = None,
        dnd_until: float | None = None,
        clear_dnd: bool = False,
    ) -> None:
        """``None`` leaves a value as it is; ``clear_dnd`` ends Do Not Disturb."""
        values: dict[str, Any] = {}
        if last_sync_ts is not None:
            values["last_sync_ts"] = last_sync_ts
        if clear_dnd:
            values["dnd_until"] = None
        elif dnd_until is not None:
            values["dnd_until"] = dnd_until
        if values:
            await self._update_tenant_columns(tenant_id, "set_sync_state", **values)

    async def take_sync_lease(self, tenant_id: str, holder: str, now: float, until: float) -> bool:
        """One conditional UPDATE: free, expired or already ours becomes ours.

        The row lock of the UPDATE (PostgreSQL re-checks the condition on the row it
        waited for; SQLite has one writer) makes two takers never both succeed.
        """
        takeable = sa.or_(
            T.sync_lease_holder.is_(None), T.sync_lease_holder == holder, T.sync_lease_until < now
        )
        statement = (
            sa.update(tenants)
            .where(T.id == tenant_id, takeable)
            .values(sync_lease_holder=holder, sync_lease_until=until)
        )

        async def op(conn: AsyncConnection) -> bool:
            return (await conn.execute(statement)).rowcount > 0

        return await self._write(op, "take_sync_lease", writes_first=True)

    async def release_sync_lease(self, tenant_id: str, holder: str) -> None:
        statement = (
            sa.update(tenants)
            .where(T.id == tenant_id, T.sync_lease_holder == holder)
            .values(sync_lease_holder=None, sync_lease_until=None)
        )

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(statement)

        await self._write(op, "release_sync_lease", writes_first=True)

    async def _update_tenant_columns(self, tenant_id: str, what: str, **values: Any) -> bool:
        async def op(conn: AsyncConnection) -> bool:
            try:
                result = await conn.execute(
                    sa.update(tenants).where(T.id == tenant_id).values(**values)
                )
            except sa_exc.IntegrityError as exc:
                raise Conflict("That API key is already in use") from exc
            return result.rowcount > 0

        return await self._write(op, what)

    async def _tenant_in(self, conn: AsyncConnection, tenant_id: str) -> Tenant:
        row = await _tenant_row(conn, tenant_id)
        assert row is not None, "tenant vanished inside its own transaction"
        return records.tenant(row, self._cipher)


async def _tenant_row(conn: AsyncConnection, tenant_id: str, *, lock: bool = False) -> Any:
    query = sa.select(tenants).where(T.id == tenant_id)
    if lock:
        query = query.with_for_update()
    return (await conn.execute(query)).first()
