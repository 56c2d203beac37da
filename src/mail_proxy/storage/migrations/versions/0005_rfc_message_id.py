"""The Message-ID each message is sent with, indexed.

A delivery status notification (RFC 3464) or a PEC receipt names the message it is
about by the Message-ID it carried; storing it with the message is what lets such a
report be traced back to the queued message.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("rfc_message_id", sa.String(255)))
    op.create_index("ix_messages_rfc_message_id", "messages", ["rfc_message_id"])


def downgrade() -> None:
    op.drop_index("ix_messages_rfc_message_id", table_name="messages")
    op.drop_column("messages", "rfc_message_id")
