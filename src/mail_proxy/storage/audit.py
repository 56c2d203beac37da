"""The audit trail: who changed what through the API, and when.

Entries are written by ``CommandLogMiddleware`` and read back by ``/command-log``.
The table only grows through authenticated calls and is pruned by the runtime's
clean-up loop (``GMP_COMMAND_LOG_RETENTION_SECONDS``), so it cannot fill the disk.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.domain.models import CommandLogEntry
from mail_proxy.ports import Audit, AuditFilter
from mail_proxy.storage import records
from mail_proxy.storage.database import Database
from mail_proxy.storage.tables import command_log

CMD = command_log.c


class SqlAudit(Audit):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(
        self,
        *,
        ts: float,
        method: str,
        path: str,
        actor: str,
        tenant_id: str | None,
        status_code: int,
        body: dict[str, Any] | None,
    ) -> None:
        statement = sa.insert(command_log).values(
            ts=ts,
            method=method,
            path=path,
            actor=actor,
            tenant_id=tenant_id,
            status_code=status_code,
            body=records.dump_json(body),
        )

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(statement)

        await self._db.write(op, "log_command", writes_first=True, single=True)

    async def entries(
        self, flt: AuditFilter | None = None, *, limit: int = 100, offset: int = 0
    ) -> list[CommandLogEntry]:
        flt = flt or AuditFilter()
        query = sa.select(command_log).order_by(CMD.id).limit(limit).offset(offset)
        if flt.since is not None:
            query = query.where(CMD.ts >= flt.since)
        if flt.until is not None:
            query = query.where(CMD.ts <= flt.until)
        if flt.tenant_id is not None:
            query = query.where(CMD.tenant_id == flt.tenant_id)
        if flt.endpoint:
            called = sa.func.lower(CMD.method + " " + CMD.path)
            query = query.where(called.contains(flt.endpoint.lower(), autoescape=True))

        async def op(conn: AsyncConnection) -> list[CommandLogEntry]:
            return [records.command_log_entry(row) for row in await conn.execute(query)]

        return await self._db.read(op, "command_log")

    async def purge(self, before: float) -> int:
        """Remove entries older than ``before``; the number removed."""
        statement = sa.delete(command_log).where(CMD.ts < before)

        async def op(conn: AsyncConnection) -> int:
            return (await conn.execute(statement)).rowcount or 0

        return await self._db.write(op, "purge_command_log")
