"""Bounces, the suppression list, and what each polled mailbox has handled.

``bounces`` keeps every failed recipient read from a bounce mailbox, matched to its
message or not (unmatched rows are kept for inspection). ``suppressions`` is each
tenant's list of addresses not to mail again. ``mailbox_processed`` remembers the
mail each mailbox poller has handled (by UIDVALIDITY and UID), so that a restart or
a second process never handles one twice; ``mailbox_leases`` lets one process at a
time poll each mailbox. ``ix_messages_id`` finds a message by the
``X-Genro-Mail-ID`` a bounce returns, whose tenant is not known yet.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bounces",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("ts", sa.Double, nullable=False),
        sa.Column("mailbox", sa.String(200), nullable=False),
        sa.Column("tenant_id", sa.String(128)),
        sa.Column("message_id", sa.String(255)),
        sa.Column("message_pk", sa.BigInteger),
        sa.Column("matched_by", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(256), nullable=False),
        sa.Column("bounce_type", sa.String(8), nullable=False),
        sa.Column("bounce_code", sa.String(16)),
        sa.Column("bounce_reason", sa.Text, nullable=False),
    )
    op.create_index("ix_bounces_tenant", "bounces", ["tenant_id", "id"])
    op.create_index("ix_bounces_recipient", "bounces", ["tenant_id", "recipient", "ts"])
    op.create_table(
        "suppressions",
        sa.Column("tenant_id", sa.String(128), primary_key=True),
        sa.Column("address", sa.String(256), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("bounce_id", sa.BigInteger),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    op.create_table(
        "mailbox_processed",
        sa.Column("mailbox", sa.String(200), primary_key=True),
        sa.Column("mail_key", sa.String(255), primary_key=True),
        sa.Column("processed_at", sa.Double, nullable=False),
    )
    op.create_table(
        "mailbox_leases",
        sa.Column("mailbox", sa.String(200), primary_key=True),
        sa.Column("lease_holder", sa.String(200)),
        sa.Column("lease_until", sa.Double),
    )
    op.create_index("ix_messages_id", "messages", ["id"])


def downgrade() -> None:
    op.drop_index("ix_messages_id", table_name="messages")
    op.drop_table("mailbox_leases")
    op.drop_table("mailbox_processed")
    op.drop_table("suppressions")
    op.drop_index("ix_bounces_recipient", table_name="bounces")
    op.drop_index("ix_bounces_tenant", table_name="bounces")
    op.drop_table("bounces")
