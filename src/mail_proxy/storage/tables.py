"""SQLAlchemy Core tables: the one schema both backends share.

Times are Unix seconds stored as double precision. JSON values (payloads, event
details, tenant limits) are stored as text so both backends read them the same way.
Columns ending in ``_enc`` hold Fernet tokens (see ``cipher.py``): a copied database
alone reveals no SMTP password, callback credential or signing secret.

The partial indexes keep the hot queries (claim, unreported events, rate-limit
windows) independent of how many finished rows the table holds. Alembic revisions in
``migrations/versions`` must create exactly this schema (a contract test compares).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# INTEGER PRIMARY KEY is SQLite's rowid alias (fast, autoincrementing); BIGINT elsewhere.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

#: Pages of ``messages`` on PostgreSQL are filled to this percent at insert. A claim
#: changes only the lease columns, which no index holds; with room left on the page
#: PostgreSQL writes it as a heap-only tuple (HOT) and skips the index inserts of a
#: full update (nine indexes then, eight since revision 0010). Measured on the
#: delivery benchmark at N = 5,000 (four paired runs, revision 0009): 70 made 29 % of
#: claims HOT against 7 % and delivered 1.034x as fast; 50 made 88 % HOT and 1.048x,
#: for a heap twice the size.
MESSAGES_FILLFACTOR = 70

ACTIVE_STATUSES = ("pending", "deferred")
FINISHED_STATUSES = ("sent", "error")


def _status_in(*statuses: str) -> sa.TextClause:
    listed = ", ".join(f"'{status}'" for status in statuses)
    return sa.text(f"status IN ({listed})")


tenants = sa.Table(
    "tenants",
    metadata,
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
    sa.Column("target_trusted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("sync_lease_holder", sa.String(200)),
    sa.Column("sync_lease_until", sa.Double),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Index("ux_tenants_api_key_hash", "api_key_hash", unique=True),
)

suspensions = sa.Table(
    "suspensions",
    metadata,
    sa.Column("tenant_id", sa.String(128), primary_key=True),
    sa.Column("batch_code", sa.String(64), primary_key=True),
)

accounts = sa.Table(
    "accounts",
    metadata,
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
    sa.Column("target_trusted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
)

messages = sa.Table(
    "messages",
    metadata,
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
    # Room for domain.outgoing.MAX_MESSAGE_ID; indexed to trace bounces and receipts.
    sa.Column("rfc_message_id", sa.String(255)),
    sa.UniqueConstraint("tenant_id", "id", name="ux_messages_tenant_id"),
    sa.Index(
        "ix_messages_claim",
        "priority",
        "pk",
        sqlite_where=_status_in(*ACTIVE_STATUSES),
        postgresql_where=_status_in(*ACTIVE_STATUSES),
    ),
    sa.Index(
        "ix_messages_finished",
        "updated_at",
        sqlite_where=_status_in(*FINISHED_STATUSES),
        postgresql_where=_status_in(*FINISHED_STATUSES),
    ),
    sa.Index("ix_messages_tenant_pk", "tenant_id", "pk"),
    sa.Index("ix_messages_rfc_message_id", "rfc_message_id"),
    postgresql_with={"fillfactor": MESSAGES_FILLFACTOR},
)

message_events = sa.Table(
    "message_events",
    metadata,
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
    sa.Index("ix_events_message", "message_pk"),
    sa.Index(
        "ix_events_unreported",
        "tenant_id",
        "event_id",
        sqlite_where=sa.text("reported_ts IS NULL"),
        postgresql_where=sa.text("reported_ts IS NULL"),
    ),
)

send_log = sa.Table(
    "send_log",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.String(128), nullable=False),
    sa.Column("account_id", sa.String(128), nullable=False),
    sa.Column("ts", sa.Double, nullable=False),
    sa.Index("ix_send_log_account_ts", "tenant_id", "account_id", "ts"),
    sa.Index("ix_send_log_ts", "ts"),
    sa.Index("ix_send_log_tenant_ts", "tenant_id", "ts"),
)

#: One row (id 1) once the instance was suspended or activated; absent means active.
instance_state = sa.Table(
    "instance_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("active", sa.Boolean, nullable=False),
)

instance_settings = sa.Table(
    "instance_settings",
    metadata,
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

command_log = sa.Table(
    "command_log",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Double, nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("tenant_id", sa.String(128)),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("body", sa.Text),
    sa.Index("ix_command_log_ts", "ts"),
    sa.Index("ix_command_log_tenant", "tenant_id", "id"),
)

#: Large files moved out of messages (``large_file_config`` rewrite): where each is
#: stored and its download state, shared by every process serving the links.
offloaded_files = sa.Table(
    "offloaded_files",
    metadata,
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
    sa.Index("ix_offloaded_files_expires_at", "expires_at"),
)

#: Dashboard sessions (``/ui``), by the SHA-256 of their id: the id itself lives only
#: in the browser's cookie.
ui_sessions = sa.Table(
    "ui_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(128)),
    sa.Column("credential_hash", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False),
    sa.Index("ix_ui_sessions_expires_at", "expires_at"),
)

# The dashboard's message search at a million rows (revision 0008): a batch code and
# a time range. An id typed without its tenant probes ux_messages_tenant_id once per
# tenant (storage/messages.py); revision 0010 dropped the index on id alone.
# No (status, pk) index: SQLite's planner chose it for the claim over ix_messages_claim.
sa.Index(
    "ix_messages_batch_code",
    messages.c.batch_code,
    messages.c.pk,
    sqlite_where=sa.text("batch_code IS NOT NULL"),
    postgresql_where=sa.text("batch_code IS NOT NULL"),
)
sa.Index("ix_messages_created_at", messages.c.created_at)
#: Failed recipients read from bounce mailboxes; ``tenant_id`` NULL when unmatched.
bounces = sa.Table(
    "bounces",
    metadata,
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
    sa.Index("ix_bounces_tenant", "tenant_id", "id"),
    sa.Index("ix_bounces_recipient", "tenant_id", "recipient", "ts"),
)

#: Each tenant's addresses not to mail again, and why.
suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("tenant_id", sa.String(128), primary_key=True),
    sa.Column("address", sa.String(256), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("bounce_id", sa.BigInteger),
    sa.Column("created_at", sa.Double, nullable=False),
)

#: Mail each polled mailbox has handled (``mail_key``: UIDVALIDITY:UID).
mailbox_processed = sa.Table(
    "mailbox_processed",
    metadata,
    sa.Column("mailbox", sa.String(200), primary_key=True),
    sa.Column("mail_key", sa.String(255), primary_key=True),
    sa.Column("processed_at", sa.Double, nullable=False),
)

#: One poller per mailbox across the processes sharing the database.
mailbox_leases = sa.Table(
    "mailbox_leases",
    metadata,
    sa.Column("mailbox", sa.String(200), primary_key=True),
    sa.Column("lease_holder", sa.String(200)),
    sa.Column("lease_until", sa.Double),
)
