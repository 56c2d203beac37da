"""Dashboard sessions, and the indexes its message search needs at a million rows.

Sessions are stored by the SHA-256 of their id (the id is only in the browser's
cookie). The indexes serve a batch code and a creation-time range, which otherwise
scan the table (an id without its tenant: 0007's index). No index on (status, pk):
SQLite's planner took it for the dispatcher's claim instead of the partial claim
index, and delivery at 50,000 queued fell to half.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ui_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(128)),
        sa.Column("credential_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
    )
    op.create_index("ix_ui_sessions_expires_at", "ui_sessions", ["expires_at"])
    op.create_index(
        "ix_messages_batch_code",
        "messages",
        ["batch_code", "pk"],
        sqlite_where=sa.text("batch_code IS NOT NULL"),
        postgresql_where=sa.text("batch_code IS NOT NULL"),
    )
    op.create_index("ix_messages_created_at", "messages", ["created_at"])


def downgrade() -> None:
    for index in (
        "ix_messages_created_at",
        "ix_messages_batch_code",
    ):
        op.drop_index(index, table_name="messages")
    op.drop_index("ix_ui_sessions_expires_at", table_name="ui_sessions")
    op.drop_table("ui_sessions")
