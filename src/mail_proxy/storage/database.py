"""One database: transactions, retries, and what differs between SQLite and PostgreSQL.

Every port method is one call of ``Database.write`` or ``Database.read`` with a
coroutine that receives an open transaction; the whole coroutine commits or rolls back together, so
a batch is written whole or not at all. A transaction that fails because the
database is busy, locked, full or unreachable is retried from the start a few times
with a short backoff; after that the caller gets ``StorageUnavailable`` with a
sentence saying what happened. That sentence reaches tenants in a 503, so it names
the kind of trouble only; the database's location and the driver's own words
(which name hosts, ports and users) go to the server log.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
import structlog
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mail_proxy.domain.models import NewMessage
from mail_proxy.errors import StorageUnavailable
from mail_proxy.ports import WorkSignals
from mail_proxy.storage.cipher import Cipher
from mail_proxy.storage.engines import IMPLICIT_BEGIN, Target
from mail_proxy.storage.outcomes import FinishPlan

log = structlog.get_logger(__name__)

T = TypeVar("T")
Operation = Callable[[AsyncConnection], Awaitable[T]]

RETRY_DELAYS = (0.05, 0.2, 0.5)
_SQLITE_TRANSIENT = ("locked", "busy", "disk", "full", "i/o", "unable to open")
# PostgreSQL SQLSTATE classes (Appendix A of its manual) told to callers as such.
_PG_REASONS = {
    "08": "connection to the database server failed",
    "40": "database busy with conflicting transactions",
    "53": "database server out of resources (disk, memory or connections)",
    "57": "database server shutting down or restarting",
    "58": "database server I/O error",
}


class Dialect(Protocol):
    """The statements that differ per backend, beyond what SQLAlchemy hides."""

    async def claim_rows(self, conn: AsyncConnection, params: dict[str, Any]) -> Sequence[Any]:
        """Lease due messages in one statement and return their full rows."""

    async def lock_send_log(self, conn: AsyncConnection, tenant_id: str, account_id: str) -> None:
        """Serialise rate-limit checks of one account across processes."""

    async def insert_new(
        self, db: Database, conn: AsyncConnection, batch: Sequence[NewMessage], now: float
    ) -> set[tuple[str, str]]:
        """Insert every message whose key is free; the (tenant_id, id) keys that went in.
        Taken keys (and repeats within the batch) are left for replacing."""

    async def finish(self, db: Database, plan: FinishPlan) -> dict[int, Any]:
        """Apply a plan's outcomes and append their events in one transaction; the
        returned (pk, tenant_id, id) row per pk whose lease matched."""

    async def announce_work(self, conn: AsyncConnection) -> None:
        """Tell the other processes, once this transaction commits, that messages
        became due (``WorkSignals``)."""

    def work_signals(self) -> WorkSignals:
        """What this process listens to for the other processes' announcements."""


class Database:
    """The engines of one database and the transactions every port runs on them."""

    def __init__(
        self,
        target: Target,
        cipher: Cipher,
        dialect: Dialect,
        writer: AsyncEngine,
        reader: AsyncEngine,
    ) -> None:
        self.target = target
        self.cipher = cipher
        self.dialect = dialect
        self._writer = writer
        self._reader = reader
        # SQLite has one writer at a time anyway; queueing here is cheaper than busy waits.
        self._write_gate = None if target.is_postgres else asyncio.Lock()
        self._read_options = {"isolation_level": "AUTOCOMMIT"} if target.is_postgres else {}

    @property
    def writer_engine(self) -> AsyncEngine:
        """The engine that writes (tests use it to inspect raw rows)."""
        return self._writer

    async def close(self) -> None:
        await self._writer.dispose()
        if self._reader is not self._writer:
            await self._reader.dispose()

    def for_update(self, query: sa.Select[Any]) -> sa.Select[Any]:
        """Lock the selected rows until commit (a no-op where writers are serialised)."""
        return query.with_for_update() if self.target.is_postgres else query

    def in_(self, column: sa.ColumnElement[Any], values: Iterable[Any]) -> sa.ColumnElement[bool]:
        """``column IN values``; on PostgreSQL as ``= ANY(array)``, one parameter instead
        of hundreds, which plans and binds about ten times faster for 100 values."""
        listed = list(values)
        if self.target.is_postgres:
            return column == sa.any_(_array(column, listed))
        return column.in_(listed)

    def pairs_in(
        self,
        first: sa.ColumnElement[Any],
        second: sa.ColumnElement[Any],
        pairs: Iterable[tuple[Any, Any]],
    ) -> sa.ColumnElement[bool]:
        """``(first, second) IN pairs``; on PostgreSQL against two arrays that ``unnest``
        zips back into pairs. The statement's text is then the same for any number of
        pairs, so psycopg prepares it once per connection: a list of tuples spells a
        new text for each length, each prepared on first use (engines.py) and crowding
        the hot statements out of psycopg's cache of 100."""
        listed = list(pairs)
        key = sa.tuple_(first, second)
        if self.target.is_postgres:
            columns = [
                sa.func.unnest(_array(column, [pair[i] for pair in listed]))
                for i, column in enumerate((first, second))
            ]
            return key.in_(sa.select(*columns))
        return key.in_(listed)

    def insert(self, table: sa.Table) -> Any:
        """The dialect's INSERT, which offers ``on_conflict_do_update``/``_do_nothing``."""
        return postgresql.insert(table) if self.target.is_postgres else sqlite.insert(table)

    async def executemany(
        self, conn: AsyncConnection, sql: str, rows: Sequence[tuple[Any, ...]]
    ) -> None:
        """Run driver-level SQL written with ``?`` markers once per parameter tuple."""
        await conn.exec_driver_sql(self.markers(sql), list(rows))

    async def fetch_driver(
        self, conn: AsyncConnection, sql: str, params: Sequence[Any]
    ) -> Sequence[Any]:
        """Rows of driver-level SQL written with ``?`` markers (a RETURNING statement)."""
        return (await conn.exec_driver_sql(self.markers(sql), tuple(params))).all()

    def markers(self, sql: str) -> str:
        """``?`` (sqlite3's style) to ``%s`` (psycopg's); our SQL has no other ``?``."""
        return sql.replace("?", "%s") if self.target.is_postgres else sql

    # -- transactions ---------------------------------------------------------------
    async def write(
        self, op: Operation[T], what: str, *, writes_first: bool = False, single: bool = False
    ) -> T:
        """Run ``op`` in one write transaction. ``writes_first``: its first statement
        starts with INSERT/UPDATE/DELETE/REPLACE, which lets SQLite open the
        transaction in the same call (anything else is refused; see engines.py).
        ``single`` (PostgreSQL): ``op`` runs exactly one statement, which is then its
        own transaction, in autocommit: one round trip instead of three."""
        options: dict[str, Any] = {IMPLICIT_BEGIN: True} if writes_first else {}
        if single and self.target.is_postgres:
            options = {"isolation_level": "AUTOCOMMIT"}
        return await self._transact(self._writer, op, what, self._write_gate, options)

    async def read(self, op: Operation[T], what: str) -> T:
        """Run ``op`` as reads only. On PostgreSQL in autocommit: at READ COMMITTED
        every statement takes its own snapshot inside a transaction too, so BEGIN and
        COMMIT bought nothing but two round trips, each one a wait behind the event
        loop's other work under load. (SQLite's readers already run without one.)"""
        return await self._transact(self._reader, op, what, None, self._read_options)

    async def _transact(
        self,
        engine: AsyncEngine,
        op: Operation[T],
        what: str,
        gate: asyncio.Lock | None,
        options: dict[str, Any],
    ) -> T:
        failure: Exception | None = None
        for delay in (*RETRY_DELAYS, None):
            try:
                async with _held(gate), engine.connect() as conn:
                    if options:
                        await conn.execution_options(**options)
                    async with conn.begin():
                        return await op(conn)
            except sa_exc.DBAPIError as exc:
                if not self._transient(exc):
                    raise
                failure = exc
            except sa_exc.TimeoutError as exc:
                failure = exc
            if delay is not None:
                log.warning(
                    "storage_retry", operation=what, delay=delay, error=error_summary(failure)
                )
                await asyncio.sleep(delay)
        log.error(
            "storage_unavailable",
            operation=what,
            location=self.target.describe(),
            error=error_summary(failure),
        )
        raise StorageUnavailable(
            f"The database is unavailable ({self._publicerror_summary(failure)}). "
            "Retry later; nothing of this request was written."
        ) from failure

    def _publicerror_summary(self, exc: Exception | None) -> str:
        """What went wrong in words fit for a tenant: SQLite's messages name no file
        ("database is locked", "disk I/O error"); PostgreSQL's name hosts and users,
        so only their SQLSTATE class is told."""
        if isinstance(exc, sa_exc.TimeoutError):
            return "no database connection became free in time"
        if not isinstance(exc, sa_exc.DBAPIError):
            return "unknown error"
        if not self.target.is_postgres:
            return error_summary(exc)
        state = getattr(exc.orig, "sqlstate", None) or ""
        return _PG_REASONS.get(state[:2], "database server unreachable or failing")

    def _transient(self, exc: sa_exc.DBAPIError) -> bool:
        if exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError):
            return True
        if not isinstance(exc, sa_exc.OperationalError):
            return False
        if self.target.is_postgres:
            return True
        text = str(exc.orig).lower()
        return any(word in text for word in _SQLITE_TRANSIENT)


@contextlib.asynccontextmanager
async def _held(gate: asyncio.Lock | None) -> AsyncIterator[None]:
    if gate is None:
        yield
        return
    async with gate:
        yield


def error_summary(exc: Exception | None) -> str:
    """The first line of a driver's error: PostgreSQL's DETAIL lines that follow may
    quote the row's values, which are message contents."""
    if isinstance(exc, sa_exc.DBAPIError):
        return (
            str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc).__name__
        )
    return str(exc) if exc is not None else "unknown error"


def _array(column: sa.ColumnElement[Any], values: list[Any]) -> sa.BindParameter[Any]:
    """``values`` as one PostgreSQL array parameter of the column's type."""
    # A bare VARCHAR[]: a cast to VARCHAR(n)[] made the lookup ~20x slower.
    item = sa.String() if isinstance(column.type, sa.String) else column.type
    return sa.bindparam(None, values, type_=postgresql.ARRAY(item))
