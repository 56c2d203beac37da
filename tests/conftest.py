"""Fixtures shared by every test: settings, and stores on SQLite and PostgreSQL.

- ``settings_factory(**overrides)``: a ``Settings`` whose database and instance folder
  live in ``tmp_path`` and whose secret key is set (no key file is written).
- ``sqlite_store`` / ``pg_store``: a freshly migrated store on one backend.
- ``db_settings`` / ``store``: the same, parametrised over ``sqlite`` and ``postgres``.
- ``pg_dsn``: the URL of a fresh PostgreSQL schema, dropped after the test; pass it as
  ``db_path`` to anything that calls ``open_store``.

- ``dovecot``: a real IMAP server for the session (bounce and PEC mailboxes).

PostgreSQL comes from ``GMP_TEST_PG_DSN`` (default
postgresql://postgres@127.0.0.1:5432/test). When it cannot be reached the postgres
tests are skipped, or fail when ``GMP_TEST_REQUIRE_PG=1`` (as in CI).
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import psycopg
import pytest
from cryptography.fernet import Fernet

from mail_proxy.ports import Store
from mail_proxy.settings import Settings
from mail_proxy.storage import open_store
from mail_proxy.testing import Dovecot

PG_DSN = os.environ.get("GMP_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

SettingsFactory = Callable[..., Settings]


@functools.cache
def _pg_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can (checked once per run)."""
    try:
        with psycopg.connect(PG_DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"PostgreSQL not reachable at {PG_DSN} ({first_line}); set GMP_TEST_PG_DSN"
    return None


def require_postgres() -> None:
    """Skip (or fail, with GMP_TEST_REQUIRE_PG=1) when PostgreSQL is unreachable."""
    problem = _pg_problem()
    if problem is None:
        return
    if os.environ.get("GMP_TEST_REQUIRE_PG") == "1":
        pytest.fail(problem, pytrace=False)
    pytest.skip(problem)


def _admin(statement: str) -> None:
    with psycopg.connect(PG_DSN, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SET lock_timeout = '10s'")
        conn.execute(statement)


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """A PostgreSQL URL confined to a fresh, empty schema that is dropped afterwards."""
    require_postgres()
    schema = f"test_{uuid.uuid4().hex[:16]}"
    _admin(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in PG_DSN else "?"
    try:
        yield f"{PG_DSN}{separator}schema={schema}"
    finally:
        _admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def settings_factory(tmp_path: Any) -> SettingsFactory:
    """Build Settings for a test: SQLite in tmp_path, a fixed secret key, overrides win."""
    key = Fernet.generate_key().decode()
    data_dir = tmp_path / "data"

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "db_path": str(data_dir / "mail_proxy.db"),
            "instance_dir": data_dir,
            "secret_key": key,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
async def sqlite_store(settings_factory: SettingsFactory) -> AsyncIterator[Store]:
    """A fresh SQLite store in tmp_path."""
    store = await open_store(settings_factory())
    yield store
    await store.close()


@pytest.fixture
async def pg_store(settings_factory: SettingsFactory, pg_dsn: str) -> AsyncIterator[Store]:
    """A fresh PostgreSQL store in a schema of its own."""
    store = await open_store(settings_factory(db_path=pg_dsn))
    yield store
    await store.close()


@pytest.fixture(params=BACKENDS)
def db_settings(request: pytest.FixtureRequest, settings_factory: SettingsFactory) -> Settings:
    """Settings pointing at an empty database of each backend in turn."""
    if request.param == "postgres":
        return settings_factory(db_path=request.getfixturevalue("pg_dsn"))
    return settings_factory()


@pytest.fixture
async def store(db_settings: Settings) -> AsyncIterator[Store]:
    """A fresh store, once on SQLite and once on PostgreSQL."""
    opened = await open_store(db_settings)
    yield opened
    await opened.close()


@pytest.fixture(scope="session")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    """One throw-away Dovecot IMAP server for the session (user ``bounces``/``secret``);
    tests keep apart by using folders of their own. Skipped when Debian's
    dovecot-imapd is not installed (``make test`` installs it), or fails when
    ``GMP_TEST_REQUIRE_IMAP=1`` (as in CI)."""
    if not os.path.exists(Dovecot.BINARY):
        problem = f"dovecot not installed ({Dovecot.BINARY}); install dovecot-imapd"
        if os.environ.get("GMP_TEST_REQUIRE_IMAP") == "1":
            pytest.fail(problem, pytrace=False)
        pytest.skip(problem)
    server = Dovecot(tmp_path_factory.mktemp("dovecot")).start()
    try:
        yield server
    finally:
        server.stop()
