"""Large files moved out of messages, and their download state.

A tenant's ``large_file_config`` (``rewrite``) uploads an oversized attachment and
sends a link instead; the file's expiry, first download and download count must
be the same for every process that serves the link, so they live here.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "offloaded_files",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.Column("lifespan_after_download", sa.Double),
        sa.Column("first_download_at", sa.Double),
        sa.Column("downloads", sa.Integer, nullable=False),
    )
    op.create_index("ix_offloaded_files_expires_at", "offloaded_files", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_offloaded_files_expires_at", table_name="offloaded_files")
    op.drop_table("offloaded_files")
