"""The PostgreSQL backend: a connection pool shared by any number of processes.

Claims use ``FOR UPDATE SKIP LOCKED`` so concurrent dispatchers, in one process or
many, lease disjoint sets of messages without waiting on each other. Rate-limit
checks of one account are serialised with a transaction-scoped advisory lock keyed
on (tenant, account), which covers sends that have no row to lock yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.domain.models import NewMessage
from mail_proxy.ports import WorkSignals
from mail_proxy.storage.cipher import Cipher
from mail_proxy.storage.claiming import POSTGRES_CLAIM
from mail_proxy.storage.database import Database
from mail_proxy.storage.engines import Target, postgres_engine
from mail_proxy.storage.intake import NEW_COLUMNS, new_row
from mail_proxy.storage.outcomes import FINISH_ARRAYS_SQL, FinishPlan
from mail_proxy.storage.work_signals import Announcer, PostgresWorkSignals, channel_for

_ACCOUNT_LOCK = sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))")
# A batch as one array per column: a short statement that psycopg parses once and the
# server prepares, where 100 rows of VALUES would be parsed again for every batch.
# ``%b`` sends the arrays in binary, sparing the escaping of JSON text in array
# literals. ORDER BY the array position keeps pk order equal to submission order.
_ARRAY_TYPES = (
    "text", "text", "text", "smallint", "text", "text", "text", "float8", "int", "float8",
    "float8", "text",
)  # fmt: skip
_INSERT_ARRAYS = (
    f"INSERT INTO messages ({', '.join(NEW_COLUMNS)})"
    f" SELECT {', '.join(NEW_COLUMNS)} FROM unnest("
    + ", ".join(f"%b::{kind}[]" for kind in _ARRAY_TYPES)
    + f") WITH ORDINALITY AS batch({', '.join(NEW_COLUMNS)}, position)"
    " ORDER BY position ON CONFLICT (tenant_id, id) DO NOTHING RETURNING tenant_id, id"
)


class PostgresDialect:
    """PostgreSQL's side of ``Dialect``."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._announcer = Announcer(channel_for(target))

    async def claim_rows(self, conn: AsyncConnection, params: dict[str, Any]) -> Sequence[Any]:
        return (await conn.execute(POSTGRES_CLAIM, params)).all()

    async def lock_send_log(self, conn: AsyncConnection, tenant_id: str, account_id: str) -> None:
        await conn.execute(_ACCOUNT_LOCK, {"key": f"send_log/{tenant_id}/{account_id}"})

    async def insert_new(
        self, db: Database, conn: AsyncConnection, batch: Sequence[NewMessage], now: float
    ) -> set[tuple[str, str]]:
        rows = (new_row(message, now, db.cipher) for message in batch)
        columns = [list(values) for values in zip(*rows, strict=True)]
        returned = await db.fetch_driver(conn, _INSERT_ARRAYS, columns)
        return {(tenant_id, id_) for tenant_id, id_ in returned}

    async def finish(self, db: Database, plan: FinishPlan) -> dict[int, Any]:
        columns = tuple(list(values) for values in zip(*plan.statement_rows(), strict=True))

        async def op(conn: AsyncConnection) -> dict[int, Any]:
            return {row[0]: row for row in await db.fetch_driver(conn, FINISH_ARRAYS_SQL, columns)}

        return await db.write(op, "finish", single=True)

    async def announce_work(self, conn: AsyncConnection) -> None:
        await self._announcer.announce(conn)

    def work_signals(self) -> WorkSignals:
        return PostgresWorkSignals(self._target, self._announcer)


def postgres_database(target: Target, cipher: Cipher, pool_size: int = 5) -> Database:
    """One pool serves reads and writes: PostgreSQL has no single-writer rule."""
    engine = postgres_engine(target, pool_size=pool_size)
    return Database(target, cipher, PostgresDialect(target), engine, engine)
