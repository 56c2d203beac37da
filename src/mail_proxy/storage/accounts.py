"""SMTP accounts of each tenant, with their SMTP and IMAP passwords sealed at rest."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.domain.models import Account
from mail_proxy.ports import Accounts
from mail_proxy.storage import records
from mail_proxy.storage.database import Database
from mail_proxy.storage.tables import accounts

ACCT = accounts.c


class SqlAccounts(Accounts):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def upsert(self, account: Account, now: float) -> tuple[Account, bool]:
        values = records.account_values(account, self._db.cipher) | {"updated_at": now}

        async def op(conn: AsyncConnection) -> tuple[Account, bool]:
            found = await self._account_row(conn, account.tenant_id, account.id)
            if found is None:
                await conn.execute(sa.insert(accounts).values(values | {"created_at": now}))
            else:
                await conn.execute(
                    sa.update(accounts).where(*_key(account.tenant_id, account.id)).values(values)
                )
            saved = await self._account_row(conn, account.tenant_id, account.id)
            return records.account(saved, self._db.cipher), found is None

        return await self._db.write(op, "upsert_account")

    async def get(self, tenant_id: str, account_id: str) -> Account | None:
        async def op(conn: AsyncConnection) -> Account | None:
            row = await self._account_row(conn, tenant_id, account_id)
            return None if row is None else records.account(row, self._db.cipher)

        return await self._db.read(op, "get_account")

    async def all(self, tenant_id: str | None = None) -> list[Account]:
        query = sa.select(accounts).order_by(ACCT.tenant_id, ACCT.id)
        if tenant_id is not None:
            query = query.where(ACCT.tenant_id == tenant_id)

        async def op(conn: AsyncConnection) -> list[Account]:
            return [records.account(row, self._db.cipher) for row in await conn.execute(query)]

        return await self._db.read(op, "list_accounts")

    async def delete(self, tenant_id: str, account_id: str) -> bool:
        async def op(conn: AsyncConnection) -> bool:
            result = await conn.execute(sa.delete(accounts).where(*_key(tenant_id, account_id)))
            return result.rowcount > 0

        return await self._db.write(op, "delete_account")

    async def _account_row(
        self, conn: AsyncConnection, tenant_id: str, account_id: str, *, lock: bool = False
    ) -> Any:
        query = sa.select(accounts).where(*_key(tenant_id, account_id))
        if lock:
            query = self._db.for_update(query)
        return (await conn.execute(query)).first()


def _key(tenant_id: str, account_id: str) -> tuple[sa.ColumnElement[bool], ...]:
    return (ACCT.tenant_id == tenant_id, ACCT.id == account_id)
