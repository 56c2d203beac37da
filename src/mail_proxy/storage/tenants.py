"""Tenants, with their API-key digest and sealed secrets.

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
from mail_proxy.ports import Tenants
from mail_proxy.storage import records
from mail_proxy.storage.database import Database
from mail_proxy.storage.tables import accounts, message_events, messages, suspensions, tenants

TEN = tenants.c
SUSP = suspensions.c
_READ_ONLY_FIELDS = {"id", "has_api_key", "created_at", "updated_at"}
_UPDATABLE = {f.name for f in dataclasses.fields(Tenant)} - _READ_ONLY_FIELDS


class SqlTenants(Tenants):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, tenant: Tenant, api_key_hash: str | None, now: float) -> Tenant:
        values = records.tenant_values(tenant, self._db.cipher) | {
            "api_key_hash": api_key_hash,
            "api_key_expires_at": tenant.api_key_expires_at,
            "signing_secret_enc": self._db.cipher.seal(tenant.signing_secret),
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

        return await self._db.write(op, "create_tenant")

    async def update(self, tenant_id: str, changes: dict[str, Any], now: float) -> Tenant | None:
        unknown = set(changes) - _UPDATABLE
        if unknown:
            field = sorted(unknown)[0]
            raise InvalidInput(f"Tenant field {field!r} cannot be changed", field=field)
        fixed = dict(changes)
        if "client_auth" in fixed:
            fixed["client_auth"] = records.client_auth(fixed["client_auth"])

        async def op(conn: AsyncConnection) -> Tenant | None:
            row = await _tenant_row(conn, tenant_id, lock=self._db.target.is_postgres)
            if row is None:
                return None
            updated = dataclasses.replace(records.tenant(row, self._db.cipher), **fixed)
            values = records.tenant_values(updated, self._db.cipher) | {
                "api_key_expires_at": updated.api_key_expires_at,
                "signing_secret_enc": self._db.cipher.seal(updated.signing_secret),
                "updated_at": now,
            }
            await conn.execute(sa.update(tenants).where(TEN.id == tenant_id).values(values))
            return await self._tenant_in(conn, tenant_id)

        return await self._db.write(op, "update_tenant")

    async def get(self, tenant_id: str) -> Tenant | None:
        async def op(conn: AsyncConnection) -> Tenant | None:
            row = await _tenant_row(conn, tenant_id)
            return None if row is None else records.tenant(row, self._db.cipher)

        return await self._db.read(op, "get_tenant")

    async def all(self, active_only: bool = False) -> list[Tenant]:
        query = sa.select(tenants).order_by(TEN.id)
        if active_only:
            query = query.where(TEN.active.is_(True))

        async def op(conn: AsyncConnection) -> list[Tenant]:
            return [records.tenant(row, self._db.cipher) for row in await conn.execute(query)]

        return await self._db.read(op, "list_tenants")

    async def delete(self, tenant_id: str) -> bool:
        async def op(conn: AsyncConnection) -> bool:
            await conn.execute(
                sa.delete(message_events).where(message_events.c.tenant_id == tenant_id)
            )
            await conn.execute(sa.delete(messages).where(messages.c.tenant_id == tenant_id))
            await conn.execute(sa.delete(accounts).where(accounts.c.tenant_id == tenant_id))
            await conn.execute(sa.delete(suspensions).where(SUSP.tenant_id == tenant_id))
            result = await conn.execute(sa.delete(tenants).where(TEN.id == tenant_id))
            return result.rowcount > 0

        return await self._db.write(op, "delete_tenant")

    async def set_api_key(
        self, tenant_id: str, key_hash: str | None, expires_at: int | None
    ) -> bool:
        return await update_tenant_columns(
            self._db, tenant_id, "set_api_key", api_key_hash=key_hash, api_key_expires_at=expires_at
        )

    async def by_key_hash(self, key_hash: str) -> Tenant | None:
        query = sa.select(tenants).where(TEN.api_key_hash == key_hash)

        async def op(conn: AsyncConnection) -> Tenant | None:
            row = (await conn.execute(query)).first()
            return None if row is None else records.tenant(row, self._db.cipher)

        return await self._db.read(op, "tenant_by_key_hash")

    async def set_signing_secret(self, tenant_id: str, secret: str) -> bool:
        return await update_tenant_columns(
            self._db,
            tenant_id,
            "set_signing_secret",
            signing_secret_enc=self._db.cipher.seal(secret),
        )

    async def _tenant_in(self, conn: AsyncConnection, tenant_id: str) -> Tenant:
        row = await _tenant_row(conn, tenant_id)
        assert row is not None, "tenant vanished inside its own transaction"
        return records.tenant(row, self._db.cipher)


async def _tenant_row(conn: AsyncConnection, tenant_id: str, *, lock: bool = False) -> Any:
    query = sa.select(tenants).where(TEN.id == tenant_id)
    if lock:
        query = query.with_for_update()
    return (await conn.execute(query)).first()


async def update_tenant_columns(db: Database, tenant_id: str, what: str, **values: Any) -> bool:
    """Set some columns of one tenant; False if there is no such tenant."""

    async def op(conn: AsyncConnection) -> bool:
        try:
            result = await conn.execute(
                sa.update(tenants).where(TEN.id == tenant_id).values(**values)
            )
        except sa_exc.IntegrityError as exc:
            raise Conflict("That API key is already in use") from exc
        return result.rowcount > 0

    return await db.write(op, what)
