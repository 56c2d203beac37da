"""SMTP accounts of each tenant, with their SMTP and IMAP passwords sealed at rest."""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.domain.models import Account, LimitBehavior
from mail_proxy.errors import InvalidInput
from mail_proxy.storage import records
from mail_proxy.storage.sql_base import SqlStore
from mail_proxy.storage.tables import accounts

A = accounts.c
_READ_ONLY_FIELDS = {"id", "tenant_id", "created_at", "updated_at"}
_UPDATABLE = {f.name for f in dataclasses.fields(Account)} - _READ_ONLY_FIELDS


class AccountOps(SqlStore):
    """Store methods over the ``accounts`` table."""

    async def upsert_account(self, account: Account, now: float) -> tuple[Account, bool]:
        values = records.account_values(account, self._cipher) | {"updated_at": now}

        async def op(conn: AsyncConnection) -> tuple[Account, bool]:
            found = await self._account_row(conn, account.tenant_id, account.id)
            if found is None:
                await conn.execute(sa.insert(accounts).values(values | {"created_at": now}))
            else:
                await conn.execute(
                    sa.update(accounts).where(*_key(account.tenant_id, account.id)).values(values)
                )
            saved = await self._account_row(conn, account.tenant_id, account.id)
            return records.account(saved, self._cipher), found is None

        return await self._write(op, "upsert_account")

    async def update_account(
        self, tenant_id: str, account_id: str, changes: dict[str, Any], now: float
    ) -> Account | None:
        unknown = set(changes) - _UPDATABLE
        if unknown:
            field = sorted(unknown)[0]
            raise InvalidInput(f"Account field {field!r} cannot be changed", field=field)
        fixed = dict(changes)
        if "limit_behavior" in fixed:
            fixed["limit_behavior"] = LimitBehavior(fixed["limit_behavior"])

        async def op(conn: AsyncConnection) -> Account | None:
            row = await self._account_row(conn, tenant_id, account_id, lock=True)
            if row is None:
                return None
            updated = dataclasses.replace(records.account(row, self._cipher), **fixed)
            values = records.account_values(updated, self._cipher) | {"updated_at": now}
            await conn.execute(
                sa.update(accounts).where(*_key(tenant_id, account_id)).values(values)
            )
            saved = await self._account_row(conn, tenant_id, account_id)
            return records.account(saved, self._cipher)

        return await self._write(op, "update_account")

    async def get_account(self, tenant_id: str, account_id: str) -> Account | None:
        async def op(conn: AsyncConnection) -> Account | None:
            row = await self._account_row(conn, tenant_id, account_id)
            return None if row is None else records.account(row, self._cipher)

        return await self._read(op, "get_account")

    async def list_accounts(self, tenant_id: str | None = None) -> list[Account]:
        query = sa.select(accounts).order_by(A.tenant_id, A.id)
        if tenant_id is not None:
            query = query.where(A.tenant_id == tenant_id)

        async def op(conn: AsyncConnection) -> list[Account]:
            return [records.account(row, self._cipher) for row in await conn.execute(query)]

        return await self._read(op, "list_accounts")

    async def delete_account(self, tenant_id: str, account_id: str) -> bool:
        async def op(conn: AsyncConnection) -> bool:
            result = await conn.execute(sa.delete(accounts).where(*_key(tenant_id, account_id)))
            return result.rowcount > 0

        return await self._write(op, "delete_account")

    async def _account_row(
        self, conn: AsyncConnection, tenant_id: str, account_id: str, *, lock: bool = False
    ) -> Any:
        query = sa.select(accounts).where(*_key(tenant_id, account_id))
        if lock:
            query = self._for_update(query)
        return (await conn.execute(query)).first()


def _key(tenant_id: str, account_id: str) -> tuple[sa.ColumnElement[bool], ...]:
    return (A.tenant_id == tenant_id, A.id == account_id)
