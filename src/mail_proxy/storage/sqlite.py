"""The SQLite backend: one file, WAL mode, one writer at a time.

SQLite allows a single writer per database file. Inside a process, writes queue on
an ``asyncio.Lock`` in front of a single writer connection; across processes,
``BEGIN IMMEDIATE`` takes the write lock at the start of every write transaction and
``busy_timeout`` makes other processes wait for it. Because claims are serialised
this way, a claim is a plain UPDATE ... RETURNING: no two claimers can see the same
free row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.domain.models import NewMessage
from mail_proxy.ports import WorkSignals
from mail_proxy.storage.cipher import Cipher
from mail_proxy.storage.claiming import SQLITE_CLAIM
from mail_proxy.storage.database import Database
from mail_proxy.storage.engines import SQLITE_BUSY_TIMEOUT_MS, Target, sqlite_engine
from mail_proxy.storage.intake import NEW_COLUMNS, new_row
from mail_proxy.storage.outcomes import EVENT_SQL, FinishPlan, update_sql
from mail_proxy.storage.work_signals import NoWorkSignals

# Driver-level multi-row INSERT: SQLAlchemy's per-row parameter processing costs more
# than SQLite's own work for a 100-message batch. 500 rows stay far below SQLite's
# parameter limit (32,766).
INSERT_CHUNK = 500
# Finishes per UPDATE statement: 500 x 5 parameters, far below the same limit.
FINISH_CHUNK = 500
_ROW_MARKERS = "(" + ", ".join("?" * len(NEW_COLUMNS)) + ")"
_INSERT_SQL = (
    f"INSERT INTO messages ({', '.join(NEW_COLUMNS)}) VALUES {{rows}}"
    " ON CONFLICT (tenant_id, id) DO NOTHING RETURNING tenant_id, id"
)


class SqliteDialect:
    """SQLite's side of ``Dialect``."""

    async def claim_rows(self, conn: AsyncConnection, params: dict[str, Any]) -> Sequence[Any]:
        return (await conn.execute(SQLITE_CLAIM, params)).all()

    async def lock_send_log(self, conn: AsyncConnection, tenant_id: str, account_id: str) -> None:
        """Nothing to do: BEGIN IMMEDIATE already made this transaction the only writer."""

    async def insert_new(
        self, db: Database, conn: AsyncConnection, batch: Sequence[NewMessage], now: float
    ) -> set[tuple[str, str]]:
        inserted: set[tuple[str, str]] = set()
        for start in range(0, len(batch), INSERT_CHUNK):
            chunk = batch[start : start + INSERT_CHUNK]
            sql = _INSERT_SQL.format(rows=", ".join([_ROW_MARKERS] * len(chunk)))
            params = [value for message in chunk for value in new_row(message, now, db.cipher)]
            result = await db.fetch_driver(conn, sql, params)
            inserted.update((tenant_id, id_) for tenant_id, id_ in result)
        return inserted

    async def finish(self, db: Database, plan: FinishPlan) -> dict[int, Any]:
        """One UPDATE per outcome kind (in chunks of ``FINISH_CHUNK``), then the events
        by executemany: sqlite3 runs one prepared statement per row in C."""

        async def op(conn: AsyncConnection) -> dict[int, Any]:
            updated: dict[int, Any] = {}
            for kind, rows in plan.groups().items():
                for start in range(0, len(rows), FINISH_CHUNK):
                    chunk = rows[start : start + FINISH_CHUNK]
                    params = [value for row in chunk for value in row]
                    sql = update_sql(kind, len(chunk))
                    for row in await db.fetch_driver(conn, sql, params):
                        updated[row[0]] = row
            events = plan.events(updated)
            if events:
                await db.executemany(conn, EVENT_SQL, events)
            return updated

        return await db.write(op, "finish", writes_first=True)

    async def announce_work(self, conn: AsyncConnection) -> None:
        """Nothing to announce with: other processes on the file poll."""

    def work_signals(self) -> WorkSignals:
        return NoWorkSignals()


def sqlite_database(
    target: Target, cipher: Cipher, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS
) -> Database:
    """A writer connection and a reader pool on the file (WAL lets them overlap)."""
    writer = sqlite_engine(target, writer=True, busy_timeout_ms=busy_timeout_ms)
    reader = sqlite_engine(target, writer=False, busy_timeout_ms=busy_timeout_ms)
    return Database(target, cipher, SqliteDialect(), writer, reader)
