"""Drop ``ix_messages_id``: one index fewer to write for every message.

An outcome changes ``status``, which two partial indexes name in their predicates,
so PostgreSQL can never write it as a heap-only tuple: each outcome, like each
insert, adds an entry to every index of ``messages``. The index on ``id`` alone
served one query, the dashboard's search by id without a tenant, which now probes
the unique ``(tenant_id, id)`` index once per tenant. Delivery of 1,000 messages on
PostgreSQL without it: 1.034x (median of 8 paired runs).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_messages_id", table_name="messages")


def downgrade() -> None:
    op.create_index("ix_messages_id", "messages", ["id"])
