"""Remember who saved a tenant's callback or an account's hosts (network policy).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("tenants", "accounts"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("target_trusted", sa.Boolean, nullable=False, server_default=sa.false())
            )


def downgrade() -> None:
    for table in ("tenants", "accounts"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("target_trusted")
