"""Alembic environment: runs on the connection ``open_store`` hands over.

Migrations are applied in-process at start-up (``storage.migrate``), never from an
ini file, so the connection (and for PostgreSQL the schema on its search_path) is
exactly the one the proxy will use.
"""

from __future__ import annotations

from alembic import context

from mail_proxy.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("mail-proxy migrations run through mail_proxy.storage.migrate only")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
)
with context.begin_transaction():
    context.run_migrations()
