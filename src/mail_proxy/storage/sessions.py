"""Dashboard sessions, stored by the SHA-256 of their id."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.ports import SessionRecord, Sessions
from mail_proxy.storage.database import Database
from mail_proxy.storage.tables import ui_sessions

SES = ui_sessions.c


class SqlSessions(Sessions):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, session: SessionRecord) -> None:
        statement = sa.insert(ui_sessions).values(
            id_hash=session.id_hash,
            tenant_id=session.tenant_id,
            credential_hash=session.credential_hash,
            created_at=session.created_at,
            expires_at=session.expires_at,
        )

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(statement)

        await self._db.write(op, "add_session", writes_first=True)

    async def get(self, id_hash: str) -> SessionRecord | None:
        query = sa.select(
            SES.id_hash, SES.tenant_id, SES.credential_hash, SES.created_at, SES.expires_at
        ).where(SES.id_hash == id_hash)

        async def op(conn: AsyncConnection) -> SessionRecord | None:
            row = (await conn.execute(query)).first()
            return None if row is None else SessionRecord(*row)

        return await self._db.read(op, "get_session")

    async def remove(self, id_hash: str) -> None:
        statement = sa.delete(ui_sessions).where(SES.id_hash == id_hash)

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(statement)

        await self._db.write(op, "remove_session", writes_first=True)

    async def purge(self, now: float) -> int:
        statement = sa.delete(ui_sessions).where(SES.expires_at <= now)

        async def op(conn: AsyncConnection) -> int:
            return (await conn.execute(statement)).rowcount or 0

        return await self._db.write(op, "purge_sessions", writes_first=True)
