"""Room on each ``messages`` page for the dispatcher's lease (PostgreSQL only).

A claim rewrites a row's lease columns, which no index holds. PostgreSQL can keep
such an update on the same page as a heap-only tuple, without new entries in the
table's nine indexes (primary and unique keys included), only if the page has room;
pages filled to 100 % at insert have none; from this revision they are left 30 %
empty (``tables.MESSAGES_FILLFACTOR`` says why 70; a revision keeps its own number
so that it never changes meaning). The setting applies to pages written from now
on: no rewrite, and the lock it takes does not block reads or writes. SQLite has no
such parameter.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE messages SET (fillfactor = 70)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE messages RESET (fillfactor)")
