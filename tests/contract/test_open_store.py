"""Opening a store: migrations on new, existing and pre-migration databases, the
secret key, and what happens when the database cannot be used."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
import structlog
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from mail_proxy.domain.models import Account, NewMessage
from mail_proxy.errors import MailProxyError, StorageUnavailable
from mail_proxy.settings import Settings
from mail_proxy.storage import open_store
from mail_proxy.storage.cipher import Cipher, load_cipher
from mail_proxy.storage.engines import parse_target
from mail_proxy.storage.migrate import MIGRATIONS_DIR, alembic_config
from mail_proxy.storage.sqlite import sqlite_database
from mail_proxy.storage.store import SqlStore
from mail_proxy.storage.tables import messages, metadata

NOW = 1_700_000_000.0


def _message(id_: str) -> NewMessage:
    return NewMessage("acme", id_, "smtp1", 2, {"subject": "s"})


async def _schema_differences(store: SqlStore) -> list[Any]:
    async with store.writer_engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
        )


HEAD = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()  # one head: a linear history


async def _revision(store: SqlStore) -> str:
    async with store.writer_engine.connect() as conn:
        return str(
            (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar()
        )


async def test_empty_database_is_migrated_to_exactly_the_declared_schema(
    db_settings: Settings,
) -> None:
    """The Alembic revisions create what tables.py declares, nothing more or less."""
    store = await open_store(db_settings)
    try:
        assert isinstance(store, SqlStore)
        assert await _schema_differences(store) == []
        assert await _revision(store) == HEAD
    finally:
        await store.close()


@pytest.mark.postgres
async def test_postgres_messages_table_has_the_declared_storage_parameters(
    settings_factory: Callable[..., Settings], pg_dsn: str
) -> None:
    """compare_metadata does not look at WITH (...): the fillfactor that keeps claims
    heap-only (tables.MESSAGES_FILLFACTOR) is checked here, set by revision 0009."""
    store = await open_store(settings_factory(db_path=pg_dsn))
    try:
        assert isinstance(store, SqlStore)
        async with store.writer_engine.connect() as conn:
            options = (
                await conn.execute(
                    sa.text("SELECT reloptions FROM pg_class WHERE oid = to_regclass('messages')")
                )
            ).scalar()
        declared = messages.dialect_options["postgresql"]["with"]
        assert options == [f"{name}={value}" for name, value in declared.items()]
    finally:
        await store.close()


async def test_reopening_keeps_data_and_secrets(db_settings: Settings) -> None:
    """A second open runs no migration that loses rows; sealed secrets still open."""
    first = await open_store(db_settings)
    await first.intake.enqueue([_message("m")], NOW)
    await first.accounts.upsert(Account(id="a", tenant_id="acme", host="h", password="pw"), NOW)
    await first.close()
    second = await open_store(db_settings)
    try:
        assert await second.messages.get("acme", "m") is not None
        account = await second.accounts.get("acme", "a")
        assert account is not None and account.password == "pw"
    finally:
        await second.close()


async def test_database_from_before_migrations_is_stamped_and_kept(db_settings: Settings) -> None:
    """Tables without an alembic_version table: stamped as the baseline, rows kept."""
    store = await open_store(db_settings)
    await store.intake.enqueue([_message("old")], NOW)
    assert isinstance(store, SqlStore)
    async with store.writer_engine.begin() as conn:
        # What a database written before migrations existed holds: the baseline schema.
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0001"))
        await conn.execute(sa.text("DROP TABLE alembic_version"))
    await store.close()
    reopened = await open_store(db_settings)
    try:
        assert isinstance(reopened, SqlStore)
        assert await _revision(reopened) == HEAD
        assert await reopened.messages.get("acme", "old") is not None
    finally:
        await reopened.close()


async def test_sqlite_folder_is_created_and_wal_is_on(
    settings_factory: Callable[..., Settings], tmp_path: Any
) -> None:
    """A path in a missing folder works; the database runs in WAL mode."""
    path = tmp_path / "deep" / "er" / "q.db"
    store = await open_store(settings_factory(db_path=str(path)))
    await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_secret_key_file_is_created_private_and_reused(
    settings_factory: Callable[..., Settings], tmp_path: Any
) -> None:
    """Without GMP_SECRET_KEY a 0600 key file is made once and used from then on."""
    settings = settings_factory(secret_key=None, instance_dir=tmp_path / "instance")
    first = load_cipher(settings)
    key_file = tmp_path / "instance" / "secret.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    sealed = first.seal("pw")
    assert load_cipher(settings).open(sealed) == "pw"


def test_cipher_accepts_passphrases_and_rejects_a_wrong_key() -> None:
    """Any passphrase works as a key; a token sealed under another key is refused."""
    sealed = Cipher("correct horse").seal("pw")
    assert Cipher("correct horse").open(sealed) == "pw"
    with pytest.raises(MailProxyError, match="secret key differs"):
        Cipher("battery staple").open(sealed)


async def test_unreachable_postgres_raises_storage_unavailable(
    settings_factory: Callable[..., Settings],
) -> None:
    """Nobody listens on port 1: a clear StorageUnavailable after a few retries. Its
    message reaches tenants in a 503, so the location is only in the server log."""
    settings = settings_factory(db_path="postgresql://postgres:hunter2@127.0.0.1:1/test")
    with (
        structlog.testing.capture_logs() as logs,
        pytest.raises(StorageUnavailable, match="database is unavailable") as raised,
    ):
        await open_store(settings)
    message = str(raised.value)
    assert "127.0.0.1" not in message and "postgres" not in message and ":1" not in message
    [logged] = [entry for entry in logs if entry["event"] == "storage_unavailable"]
    assert "127.0.0.1:1/test" in logged["location"] and "hunter2" not in str(logs)


async def test_wrong_secret_key_stops_opening_with_a_clear_message(
    db_settings: Settings, settings_factory: Callable[..., Settings]
) -> None:
    """Secrets sealed under one key, the store opened with another: open_store refuses
    (docs/storage.md) rather than failing deliveries later."""
    store = await open_store(db_settings)
    await store.accounts.upsert(Account(id="a", tenant_id="acme", host="h", password="pw"), NOW)
    await store.close()
    other_key = db_settings.model_copy(update={"secret_key": "another passphrase entirely"})
    with pytest.raises(MailProxyError, match="secret key differs"):
        await open_store(other_key)
    reopened = await open_store(db_settings)
    await reopened.close()


async def test_sqlite_files_are_private(
    settings_factory: Callable[..., Settings], tmp_path: Any
) -> None:
    """Database, WAL and shared-memory files are created 0600 whatever the umask."""
    path = tmp_path / "private" / "q.db"
    previous = os.umask(0o022)
    try:
        store = await open_store(settings_factory(db_path=str(path)))
        await store.intake.enqueue([_message("m")], NOW)
        try:
            files = [path, path.with_name("q.db-wal"), path.with_name("q.db-shm")]
            assert {f.name: stat.S_IMODE(os.stat(f).st_mode) for f in files} == {
                f.name: 0o600 for f in files
            }
        finally:
            await store.close()
    finally:
        os.umask(previous)


async def test_sql_parameters_never_reach_logs_or_errors(
    db_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """With SQLAlchemy's engine logging at INFO, statements are logged but a message's
    body is not; a failing statement's error does not quote its parameters either."""
    store = await open_store(db_settings)
    assert isinstance(store, SqlStore)
    try:
        with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"):
            await store.intake.enqueue(
                [NewMessage("acme", "m", "smtp1", 2, {"body": "SECRET-BODY"})], NOW
            )
        assert "INSERT INTO messages" in caplog.text
        assert "SECRET-BODY" not in caplog.text
        async with store.writer_engine.connect() as conn:
            with pytest.raises(sa.exc.DBAPIError) as raised:
                await conn.execute(
                    sa.text("INSERT INTO messages (no_such_column) VALUES (:payload)"),
                    {"payload": "SECRET-PARAMETER"},
                )
        assert "no_such_column" in str(raised.value)
        assert "SECRET-PARAMETER" not in str(raised.value)
    finally:
        await store.close()


async def test_locked_sqlite_raises_storage_unavailable_and_writes_nothing(
    settings_factory: Callable[..., Settings],
) -> None:
    """Another process holding the write lock: retries, then StorageUnavailable;
    once the lock is gone the same batch goes in whole."""
    settings = settings_factory()
    await (await open_store(settings)).close()
    target = parse_target(settings.db_path)
    store = SqlStore(sqlite_database(target, load_cipher(settings), busy_timeout_ms=20))
    blocker = sqlite3.connect(target.url.database or "", isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StorageUnavailable, match="database is locked"):
            await store.intake.enqueue([_message("a"), _message("b")], NOW)
        blocker.execute("ROLLBACK")
        assert sum((await store.messages.count_by_status()).values()) == 0
        assert len(await store.intake.enqueue([_message("a"), _message("b")], NOW)) == 2
    finally:
        blocker.close()
        await store.close()
