"""Instance-wide suspension as shared state; tenant windows of the send log.

``instance_state`` holds one row (id 1) once the instance was suspended or
activated: every process on the database reads it, and it survives a restart.
``ix_send_log_tenant_ts`` serves the tenant-level rate limits, counted across all
of a tenant's accounts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instance_state",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("active", sa.Boolean, nullable=False),
    )
    op.create_index("ix_send_log_tenant_ts", "send_log", ["tenant_id", "ts"])


def downgrade() -> None:
    op.drop_index("ix_send_log_tenant_ts", table_name="send_log")
    op.drop_table("instance_state")
