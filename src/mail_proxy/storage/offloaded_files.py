"""``SqlOffloadedFiles``: offloaded large files and their download state.

A download is counted by one conditional UPDATE (the row lock on PostgreSQL, the
single writer on SQLite), so two processes serving the same link at once never
both see themselves as the first download.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.domain.large_files import OffloadedFile, download_token, read_download_token
from mail_proxy.ports import OffloadedFiles
from mail_proxy.storage.database import Database
from mail_proxy.storage.tables import offloaded_files

OFF = offloaded_files.c
TOKEN_KEY_PURPOSE = "mail-proxy download links v1"


class SqlOffloadedFiles(OffloadedFiles):
    def __init__(self, db: Database) -> None:
        self._db = db
        self._key = db.cipher.derived_key(TOKEN_KEY_PURPOSE)

    async def add(self, file: OffloadedFile) -> None:
        statement = sa.insert(offloaded_files).values(_values(file))

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(statement)

        await self._db.write(op, "add_offloaded_file", writes_first=True)

    def token(self, file: OffloadedFile) -> str:
        return download_token(self._key, file.id, file.expires_at)

    async def redeem(self, token: str, now: float) -> OffloadedFile | None:
        file_id = read_download_token(self._key, token, now)
        if file_id is None:
            return None
        shortened = now + OFF.lifespan_after_download
        first = OFF.first_download_at.is_(None) & OFF.lifespan_after_download.is_not(None)
        statement = (
            sa.update(offloaded_files)
            .where(OFF.id == file_id, OFF.expires_at > now)
            .values(
                downloads=OFF.downloads + 1,
                first_download_at=sa.func.coalesce(OFF.first_download_at, now),
                expires_at=sa.case(
                    (first & (shortened < OFF.expires_at), shortened), else_=OFF.expires_at
                ),
            )
        )
        query = sa.select(offloaded_files).where(OFF.id == file_id)

        async def op(conn: AsyncConnection) -> OffloadedFile | None:
            if (await conn.execute(statement)).rowcount == 0:
                return None
            return _file((await conn.execute(query)).one())

        return await self._db.write(op, "redeem_download", writes_first=True)

    async def expired(self, now: float, limit: int) -> list[OffloadedFile]:
        query = (
            sa.select(offloaded_files)
            .where(OFF.expires_at <= now)
            .order_by(OFF.expires_at, OFF.id)
            .limit(limit)
        )

        async def op(conn: AsyncConnection) -> list[OffloadedFile]:
            return [_file(row) for row in await conn.execute(query)]

        return await self._db.read(op, "expired_offloaded_files")

    async def delete(self, file_ids: Sequence[str]) -> int:
        statement = sa.delete(offloaded_files).where(self._db.in_(OFF.id, file_ids))

        async def op(conn: AsyncConnection) -> int:
            return (await conn.execute(statement)).rowcount

        return await self._db.write(op, "delete_offloaded_files", writes_first=True)


def _values(file: OffloadedFile) -> dict[str, Any]:
    return {column.name: getattr(file, column.name) for column in offloaded_files.columns}


def _file(row: Any) -> OffloadedFile:
    return OffloadedFile(**row._mapping)
