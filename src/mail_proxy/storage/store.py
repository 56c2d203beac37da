"""``SqlStore``: every port over one SQLite or PostgreSQL database."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mail_proxy.ports import Store
from mail_proxy.storage.accounts import SqlAccounts
from mail_proxy.storage.audit import SqlAudit
from mail_proxy.storage.bounces import SqlBounces, SqlSuppressions
from mail_proxy.storage.control import SqlControl
from mail_proxy.storage.database import Database
from mail_proxy.storage.instance import SqlInstanceSettings
from mail_proxy.storage.intake import SqlIntake
from mail_proxy.storage.mailboxes import SqlMailboxes
from mail_proxy.storage.messages import SqlMessages
from mail_proxy.storage.migrate import migrate
from mail_proxy.storage.offloaded_files import SqlOffloadedFiles
from mail_proxy.storage.outbox import SqlOutbox
from mail_proxy.storage.overview import SqlOverview
from mail_proxy.storage.queue import SqlQueue
from mail_proxy.storage.send_log import SqlSendLog
from mail_proxy.storage.sessions import SqlSessions
from mail_proxy.storage.sync_state import SqlSyncState
from mail_proxy.storage.tables import instance_settings, metadata
from mail_proxy.storage.tenants import SqlTenants


class SqlStore(Store):
    """The ports share one ``Database``: its engines, its write gate and its cipher."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.intake = SqlIntake(db)
        self.queue = SqlQueue(db)
        self.send_log = SqlSendLog(db)
        self.messages = SqlMessages(db)
        self.outbox = SqlOutbox(db)
        self.sync_state = SqlSyncState(db)
        self.tenants = SqlTenants(db)
        self.accounts = SqlAccounts(db)
        self.control = SqlControl(db)
        self.instance = SqlInstanceSettings(db)
        self.audit = SqlAudit(db)
        self.offloaded_files = SqlOffloadedFiles(db)
        self.work_signals = db.dialect.work_signals()
        self.sessions = SqlSessions(db)
        self.overview = SqlOverview(db)
        self.mailboxes = SqlMailboxes(db)
        self.bounces = SqlBounces(db)
        self.suppressions = SqlSuppressions(db)

    @property
    def writer_engine(self) -> AsyncEngine:
        """The engine that writes (tests use it to inspect raw rows)."""
        return self._db.writer_engine

    async def close(self) -> None:
        await self._db.close()

    async def run_migrations(self) -> None:
        """Create or upgrade the schema (``open_store`` does this before returning)."""
        await self._db.write(lambda conn: migrate(conn, self._db.target), "migrate")

    async def check_secret_key(self) -> None:
        """Open one stored secret, so that a wrong key stops start-up with a clear
        message (``Cipher.open`` raises it) instead of failing deliveries later.
        A database holding no secret yet accepts any key."""

        async def op(conn: AsyncConnection) -> str | None:
            for column in _sealed_columns():
                query = sa.select(column).where(column.is_not(None)).limit(1)
                sealed = (await conn.execute(query)).scalar()
                if sealed is not None:
                    return str(sealed)
            return None

        self._db.cipher.open(await self._db.read(op, "check_secret_key"))


def _sealed_columns() -> list[sa.Column[Any]]:
    """Columns holding nothing but Fernet tokens: every ``*_enc`` column, and the
    instance settings' values (sealed whole, bounce password included)."""
    columns = [c for t in metadata.sorted_tables for c in t.columns if c.name.endswith("_enc")]
    return [*columns, instance_settings.c.value]
