"""Bring a database to the current schema at start-up, with Alembic.

An empty database gets every revision; an older one the revisions it lacks; one
created before migrations existed (tables but no ``alembic_version``) is stamped
with the baseline first. On PostgreSQL an advisory lock makes processes that start
together migrate one after another instead of racing.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
import structlog
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.storage.engines import Target

log = structlog.get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
BASELINE_REVISION = "0001"
# pg_advisory_xact_lock key: any constant unique to this application.
_LOCK_KEY = 0x6D61696C  # "mail"


def alembic_config(connection: sa.Connection) -> Config:
    """A programmatic Alembic config bound to an open connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: sa.Connection) -> None:
    tables = set(sa.inspect(connection).get_table_names())
    config = alembic_config(connection)
    if "alembic_version" not in tables and "messages" in tables:
        log.info("schema_stamped", revision=BASELINE_REVISION)
        command.stamp(config, BASELINE_REVISION)
    command.upgrade(config, "head")


async def migrate(conn: AsyncConnection, target: Target) -> None:
    """Apply every missing revision inside the caller's transaction."""
    if target.is_postgres:
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        if target.schema:
            await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{target.schema}"'))
    await conn.run_sync(_upgrade)
