"""From ``GMP_DB_PATH`` to configured SQLAlchemy async engines.

A plain path selects SQLite (its folder is created); ``postgresql://`` or
``postgres://`` selects PostgreSQL through psycopg 3. A ``schema=NAME`` query
parameter on a PostgreSQL URL confines the proxy to that schema (created if missing),
which lets several proxies or test runs share one database.

SQLite runs in WAL mode so readers never block the writer; ``synchronous=NORMAL`` is
durable across process crashes in WAL mode and much faster than FULL; foreign keys
are switched on (they are off by default in SQLite).

Every write transaction holds the write lock from its first statement on
(``BEGIN IMMEDIATE``), so two processes never both read-then-write and deadlock, and
``busy_timeout`` makes the loser wait its turn. A transaction that reads first
issues ``BEGIN IMMEDIATE`` itself. One whose first statement writes
(``IMPLICIT_BEGIN``) lets the driver issue it within that statement's call, sparing
a round trip to the driver's thread per transaction. Python's sqlite3 does so only
before a statement that *starts* with INSERT, UPDATE, DELETE or REPLACE: anything
else, such as ``WITH ... UPDATE``, would run in autocommit, and a crash before the
rest of the transaction once left sent messages without their events. Such a first
statement is therefore refused (``ImplicitBeginError``) before it runs.

A new database file is created with mode 0600 before SQLite opens it; SQLite gives
its ``-wal`` and ``-shm`` files the mode of the database file, so all three stay
private. Engines never put SQL parameters into logs or error messages
(``hide_parameters``): they hold message bodies and sealed secrets.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from mail_proxy.errors import InvalidInput

SQLITE_BUSY_TIMEOUT_MS = 5000
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)
SQLITE_READERS = 4
PRIVATE_FILE_MODE = 0o600
# Execution option: this transaction's first statement writes, so the driver's own
# implicit BEGIN IMMEDIATE (issued just before it, in the same call) takes the lock.
IMPLICIT_BEGIN = "mail_proxy_implicit_begin"
_AWAITING_FIRST = "mail_proxy_awaiting_first_statement"
# What makes Python's sqlite3 open a transaction (Modules/_sqlite/statement.c).
_OPENS_TRANSACTION = re.compile(r"[ \t\r\n]*(INSERT|UPDATE|DELETE|REPLACE)", re.IGNORECASE)


class ImplicitBeginError(RuntimeError):
    """An ``IMPLICIT_BEGIN`` transaction began with a statement the driver would run
    in autocommit; a programming error, raised before anything is written."""


_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True, slots=True)
class Target:
    """Where the data lives: a SQLite file or a PostgreSQL URL (plus optional schema)."""

    backend: str
    url: sa.URL
    schema: str | None = None

    @property
    def is_postgres(self) -> bool:
        return self.backend == "postgres"

    def describe(self) -> str:
        """The location without a password, for logs and error messages."""
        shown = self.url.render_as_string(hide_password=True)
        return shown + (f" (schema {self.schema})" if self.schema else "")


def parse_target(db_path: str) -> Target:
    """Decide the backend from ``GMP_DB_PATH``."""
    if db_path.startswith(("postgresql://", "postgres://", "postgresql+")):
        return _postgres_target(db_path)
    path = Path(db_path).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return Target("sqlite", sa.make_url(f"sqlite+aiosqlite:///{path}"))


def create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (an empty file is a valid
    empty SQLite database); an existing file keeps the mode its operator gave it."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))


def _postgres_target(db_path: str) -> Target:
    url = sa.make_url(re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg://", db_path))
    query = dict(url.query)
    schema = query.pop("schema", None)
    if isinstance(schema, tuple):
        schema = schema[-1]
    if schema is not None and not _SCHEMA_NAME.match(schema):
        raise InvalidInput(f"Invalid PostgreSQL schema name {schema!r}", field="db_path")
    return Target("postgres", url.set(query=query), schema)


def sqlite_engine(
    target: Target, *, writer: bool, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS
) -> AsyncEngine:
    """The writer engine holds one connection; readers a few."""
    if target.url.database:
        create_private(Path(target.url.database))
    engine = create_async_engine(
        target.url,
        pool_size=1 if writer else SQLITE_READERS,
        max_overflow=0,
        pool_timeout=60,
        # Every use ends in COMMIT or ROLLBACK already; skip the extra reset round trip.
        pool_reset_on_return=None,
        hide_parameters=True,
    )

    @sa.event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # The writer: the driver's implicit BEGIN, when it issues one, is IMMEDIATE.
        # Readers: autocommit, each query reads one consistent snapshot on its own.
        dbapi_connection.isolation_level = "IMMEDIATE" if writer else None
        cursor = dbapi_connection.cursor()
        for pragma in (*SQLITE_PRAGMAS, f"PRAGMA busy_timeout={busy_timeout_ms}"):
            cursor.execute(pragma)
        cursor.close()

    if writer:

        @sa.event.listens_for(engine.sync_engine, "begin")
        def _begin(connection: sa.Connection) -> None:
            # A writes_first operation that failed before its first statement leaves
            # the flag behind on this pooled connection: every transaction resets it.
            connection.info.pop(_AWAITING_FIRST, None)
            if connection.get_execution_options().get(IMPLICIT_BEGIN):
                connection.info[_AWAITING_FIRST] = True
            else:
                connection.exec_driver_sql("BEGIN IMMEDIATE")

        @sa.event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _check_first(
            connection: sa.Connection, _cursor: Any, statement: str, *_rest: Any
        ) -> None:
            if connection.info.pop(_AWAITING_FIRST, False) and not _OPENS_TRANSACTION.match(
                statement
            ):
                raise ImplicitBeginError(
                    "A writes_first transaction must start with INSERT, UPDATE, DELETE or"
                    f" REPLACE; sqlite3 would run this in autocommit: {statement[:60]!r}"
                )

    return engine


def postgres_engine(target: Target, *, pool_size: int = 5) -> AsyncEngine:
    """A pooled psycopg engine.

    No pre-ping (a round trip per transaction): a connection the server dropped fails
    its transaction, is discarded, and the store's retry runs it again on a fresh one.
    """
    # Every statement is prepared on its first run on a connection, not its sixth
    # (psycopg's default): a fresh process spreads its first thousand messages over
    # a pool of connections, each of which would plan the claim five times first.
    # Delivery of 1,000 messages, paired runs: 1.06x the default, 1.025x preparing
    # on the second run. A statement spelling a list inline would be prepared once
    # per length: lists are bound as arrays (``Database.in_``, ``Database.pairs_in``).
    connect_args: dict[str, Any] = {"connect_timeout": 5, "prepare_threshold": 0}
    if target.schema:
        connect_args["options"] = f"-csearch_path={target.schema}"
    return create_async_engine(
        target.url,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_recycle=1800,
        pool_timeout=30,
        connect_args=connect_args,
        hide_parameters=True,
    )
