"""The durable queue and everything else the proxy persists.

``open_store`` is the only entry point: it reads ``GMP_DB_PATH`` from the settings,
picks the backend (a file path → SQLite, ``postgresql://`` → PostgreSQL), applies
the schema migrations and returns a ready ``Store``.
"""

from __future__ import annotations

import structlog

from mail_proxy.settings import Settings
from mail_proxy.storage.cipher import load_cipher
from mail_proxy.storage.engines import parse_target
from mail_proxy.storage.postgres import postgres_database
from mail_proxy.storage.sqlite import sqlite_database
from mail_proxy.storage.store import SqlStore

__all__ = ["SqlStore", "open_store"]

log = structlog.get_logger(__name__)


async def open_store(settings: Settings) -> SqlStore:
    """Open (creating or upgrading as needed) the database named by ``settings.db_path``.

    Raises ``MailProxyError`` when the database's secrets were sealed with another
    key: better to stop here than to fail every delivery later."""
    target = parse_target(settings.db_path)
    cipher = load_cipher(settings)
    if target.is_postgres:
        store = SqlStore(postgres_database(target, cipher, settings.db_pool_size))
    else:
        store = SqlStore(sqlite_database(target, cipher))
    try:
        await store.run_migrations()
        await store.check_secret_key()
    except BaseException:
        await store.close()
        raise
    log.info("store_opened", backend=target.backend, location=target.describe())
    return store
