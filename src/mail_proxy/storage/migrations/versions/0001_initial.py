"""Initial schema: tenants, accounts, the message queue, events, send log, audit.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ACTIVE = sa.text("status IN ('pending', 'deferred')")
FINISHED = sa.text("status IN ('sent', 'error')")
UNREPORTED = sa.text("reported_ts IS NULL")


def upgrade() -> None:
    _tenants()
    _accounts()
    _messages()
    _events()
    _small_tables()


def _tenants() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("client_base_url", sa.Text),
        sa.Column("client_sync_path", sa.Text, nullable=False),
        sa.Column("client_attachment_path", sa.Text, nullable=False),
        sa.Column("client_auth_method", sa.String(16), nullable=False),
        sa.Column("client_auth_user", sa.Text),
        sa.Column("client_auth_token_enc", sa.Text),
        sa.Column("client_auth_password_enc", sa.Text),
        sa.Column("rate_limits", sa.Text),
        sa.Column("large_file_config", sa.Text),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("api_key_hash", sa.String(64)),
        sa.Column("api_key_expires_at", sa.BigInteger),
        sa.Column("signing_secret_enc", sa.Text),
        sa.Column("last_sync_ts", sa.Double),
        sa.Column("dnd_until", sa.Double),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    op.create_index("ux_tenants_api_key_hash", "tenants", ["api_key_hash"], unique=True)
    op.create_table(
        "suspensions",
        sa.Column("tenant_id", sa.String(128), primary_key=True),
        sa.Column("batch_code", sa.String(64), primary_key=True),
    )


def _accounts() -> None:
    op.create_table(
        "accounts",
        sa.Column("tenant_id", sa.String(128), primary_key=True),
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("user", sa.Text),
        sa.Column("password_enc", sa.Text),
        sa.Column("use_tls", sa.Boolean),
        sa.Column("ttl", sa.Integer, nullable=False),
        sa.Column("limit_per_minute", sa.Integer),
        sa.Column("limit_per_hour", sa.Integer),
        sa.Column("limit_per_day", sa.Integer),
        sa.Column("limit_behavior", sa.String(16), nullable=False),
        sa.Column("batch_size", sa.Integer),
        sa.Column("is_default", sa.Boolean, nullable=False),
        sa.Column("default_from", sa.Text),
        sa.Column("timeout", sa.Double, nullable=False),
        sa.Column("is_pec_account", sa.Boolean, nullable=False),
        sa.Column("imap_host", sa.Text),
        sa.Column("imap_port", sa.Integer),
        sa.Column("imap_user", sa.Text),
        sa.Column("imap_password_enc", sa.Text),
        sa.Column("imap_ssl", sa.Boolean, nullable=False),
        sa.Column("imap_folder", sa.Text),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    )


def _messages() -> None:
    op.create_table(
        "messages",
        sa.Column("pk", BigId, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("account_id", sa.String(128), nullable=False),
        sa.Column("priority", sa.SmallInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("batch_code", sa.String(64)),
        sa.Column("deferred_ts", sa.Double),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("smtp_ts", sa.Double),
        sa.Column("error_ts", sa.Double),
        sa.Column("error", sa.Text),
        sa.Column("reported_ts", sa.Double),
        sa.Column("lease_token", sa.String(32)),
        sa.Column("lease_expires", sa.Double),
        sa.UniqueConstraint("tenant_id", "id", name="ux_messages_tenant_id"),
    )
    op.create_index(
        "ix_messages_claim",
        "messages",
        ["priority", "pk"],
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )
    op.create_index(
        "ix_messages_finished",
        "messages",
        ["updated_at"],
        sqlite_where=FINISHED,
        postgresql_where=FINISHED,
    )
    op.create_index("ix_messages_tenant_pk", "messages", ["tenant_id", "pk"])


def _events() -> None:
    op.create_table(
        "message_events",
        sa.Column("event_id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "message_pk",
            BigId,
            sa.ForeignKey("messages.pk", ondelete="CASCADE", name="fk_events_message"),
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("ts", sa.Double, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("details", sa.Text),
        sa.Column("reported_ts", sa.Double),
    )
    op.create_index("ix_events_message", "message_events", ["message_pk"])
    op.create_index(
        "ix_events_unreported",
        "message_events",
        ["tenant_id", "event_id"],
        sqlite_where=UNREPORTED,
        postgresql_where=UNREPORTED,
    )


def _small_tables() -> None:
    op.create_table(
        "send_log",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("account_id", sa.String(128), nullable=False),
        sa.Column("ts", sa.Double, nullable=False),
    )
    op.create_index("ix_send_log_account_ts", "send_log", ["tenant_id", "account_id", "ts"])
    op.create_index("ix_send_log_ts", "send_log", ["ts"])
    op.create_table(
        "instance_settings",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "command_log",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("ts", sa.Double, nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("tenant_id", sa.String(128)),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("body", sa.Text),
    )
    op.create_index("ix_command_log_ts", "command_log", ["ts"])
    op.create_index("ix_command_log_tenant", "command_log", ["tenant_id", "id"])


def downgrade() -> None:
    for table in (
        "command_log",
        "instance_settings",
        "send_log",
        "message_events",
        "messages",
        "accounts",
        "suspensions",
        "tenants",
    ):
        op.drop_table(table)
