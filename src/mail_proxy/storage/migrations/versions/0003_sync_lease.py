"""Per-tenant reporting lease, so several processes never report the same events.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("sync_lease_holder", sa.String(200)))
        batch.add_column(sa.Column("sync_lease_until", sa.Double))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("sync_lease_until")
        batch.drop_column("sync_lease_holder")
