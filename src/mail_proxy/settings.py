"""One typed Settings object read from ``GMP_*`` variables, passed in, never global."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the proxy. Names follow the protocol's ``GMP_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="GMP_", extra="ignore", populate_by_name=True)

    # serving
    api_token: str | None = Field(default=None, description="Admin token (X-API-Token).")
    db_path: str = Field(
        default="./mail-proxy-data/mail_proxy.db",
        validation_alias=AliasChoices("GMP_DB_PATH", "GMP_DATABASE_URL", "db_path"),
        description="SQLite file path, or a postgresql:// URL.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    instance_dir: Path | None = Field(
        default=None, description="Folder for the secret key file; defaults to the DB's folder."
    )
    secret_key: str | None = Field(
        default=None, description="Key encrypting stored secrets (Fernet, urlsafe base64)."
    )
    dev_sink: bool = Field(
        default=False, description="Run an in-process accept-all SMTP sink with a demo tenant."
    )
    dev_sink_port: int = 2525
    log_level: str = "INFO"
    log_format: Literal["console", "json"] = "console"
    log_delivery_activity: bool = False

    # dispatcher
    scheduler_active: bool = Field(
        default=True,
        validation_alias=AliasChoices(
            "GMP_SCHEDULER_ACTIVE", "GMP_START_ACTIVE", "scheduler_active"
        ),
    )
    db_pool_size: int = Field(
        default=5,
        ge=1,
        description="PostgreSQL: connections each process keeps open (up to twice as many "
        "more under bursts).",
    )
    dispatch: bool = Field(
        default=True,
        description="Deliver in this process; false: serve the API and report only, "
        "while other processes on the same database deliver.",
    )
    test_mode: bool = False
    send_loop_interval: float = 0.5
    default_priority: int = Field(default=2, ge=0, le=3)
    batch_size_per_account: int = Field(default=50, ge=1)
    claim_limit: int = Field(default=200, ge=1, description="Messages leased per claim.")
    lease_seconds: float = Field(default=120.0, ge=1)
    max_concurrent_sends: int = Field(default=32, ge=1)
    max_concurrent_per_account: int = Field(default=8, ge=1)
    max_concurrent_per_tenant: int = Field(default=16, ge=1)
    smtp_timeout: float = Field(default=30.0, gt=0)
    retry_delays: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [60, 300, 900, 3600, 7200]
    )
    html_text_alternative: bool = True
    shutdown_grace_seconds: float = 10.0

    # client sync (the code's ``mail_proxy.sync``). Field names stay those of the
    # documented GMP_* variables (GMP_REPORT_BATCH_SIZE, GMP_CLIENT_SYNC_URL, ...).
    sync_interval: float = 300.0
    sync_timeout: float = 30.0
    report_batch_size: int = Field(default=500, ge=1)
    sync_concurrency: int = Field(default=8, ge=1)
    sync_retry_base_delay: float = Field(
        default=1.0,
        gt=0,
        description="First back-off after a failed sync call; doubles, capped at sync_interval.",
    )
    sync_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long a process holds a tenant's reporting without renewing it.",
    )
    client_sync_url: str | None = None
    client_sync_user: str | None = None
    client_sync_password: str | None = None
    client_sync_token: str | None = None
    client_sync_signing_secret: str | None = Field(
        default=None, description="Signs calls to client_sync_url; unsigned when unset."
    )
    delivery_report_retention_seconds: int = 7 * 86400
    cleanup_interval: float = 3600.0

    # large files (tenant large_file_config): links to files the proxy serves itself
    public_base_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]+$",
        description="Where clients reach this proxy, for download links of file:// "
        "storage (a tenant's public_base_url wins); default http://host:port.",
    )
    offload_cleanup_interval: float = Field(
        default=3600.0, gt=0, description="Seconds between removals of expired large files."
    )

    # network policy for tenant-chosen targets (SMTP hosts, callback URLs)
    allow_private_targets: bool = Field(
        default=False,
        description="Let tenants point SMTP accounts and sync URLs at private addresses.",
    )
    private_targets_allowlist: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Networks (CIDR) and host names tenants may use although private.",
    )

    # API limits
    max_body_bytes: int = 10 * 1024 * 1024
    max_batch_messages: int = 1000
    max_batch_recipients: int = Field(
        default=20_000,
        ge=1,
        description="Addresses (to + cc + bcc) one add-messages request may name in all.",
    )
    command_log_max_body_bytes: int = Field(
        default=16 * 1024, ge=256, description="Request body bytes a command-log entry keeps."
    )
    command_log_retention_seconds: int = Field(
        default=30 * 86400, ge=1, description="Command-log entries older than this are pruned."
    )
    metrics_require_token: bool = False
    list_body_chars: int = Field(
        default=2000, ge=0, description="Body characters a GET /messages record shows."
    )
    list_max_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        description="Size a GET /messages answer stops growing at (next_offset pages on).",
    )

    # attachments fetched by reference (mail_proxy.attachments, docs/attachments.md)
    attachment_base_dir: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Folders filesystem attachments may be read from (none: mode refused).",
    )
    attachment_fetch_timeout: float = Field(
        default=30.0, gt=0, description="Connect and read timeout of one attachment fetch."
    )
    attachment_max_mb: float = Field(
        default=25.0, gt=0, description="Largest attachment fetched; a bigger one fails."
    )
    attachment_max_redirects: int = Field(default=3, ge=0)
    attachment_fetch_concurrency: int = Field(
        default=16, ge=1, description="Attachment fetches in flight at once, whole process."
    )
    attachment_fetch_concurrency_per_tenant: int = Field(
        default=4, ge=1, description="Attachment fetches in flight at once per tenant."
    )
    cache_memory_max_mb: float = Field(default=50, ge=0)
    cache_disk_dir: str | None = None
    cache_disk_max_mb: float = Field(default=500, ge=0)

    # PEC (a later issue reads this)
    pec_acceptance_timeout: int = 1800

    # dashboard (/ui)
    ui_session_ttl: int = Field(
        default=8 * 3600, ge=60, description="Seconds a dashboard login lasts."
    )
    # Bounces and the suppression list (docs/bounces.md)
    soft_bounce_limit: int = Field(
        default=3, ge=1, description="Soft bounces within the window that suppress an address."
    )
    soft_bounce_window: float = Field(
        default=7 * 86400.0, gt=0, description="Seconds over which soft bounces are counted."
    )
    bounce_match_window: float = Field(
        default=7 * 86400.0,
        gt=0,
        description="How far back a bounce without ids is matched by recipient alone.",
    )
    mailbox_lease_seconds: float = Field(
        default=120.0, ge=5, description="How long a poller holds its mailbox unrenewed."
    )
    mailbox_idle_seconds: float = Field(
        default=300.0, gt=0, description="Longest IMAP IDLE before the poller renews it."
    )

    @field_validator("retry_delays", "private_targets_allowlist", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        """Lists from the environment: ``60,300,900`` or JSON ``[60, 300, 900]``."""
        if not isinstance(value, str):
            return value
        if value.strip().startswith("["):
            return json.loads(value)
        return [part.strip() for part in value.split(",") if part.strip()]

    @field_validator("attachment_base_dir", mode="before")
    @classmethod
    def _split_dirs(cls, value: object) -> object:
        """Folders from the environment, separated by the OS path separator (``:``,
        as in ``PATH``) or by commas."""
        if not isinstance(value, str):
            return value
        parts = value.replace(os.pathsep, ",").split(",")
        return [part.strip() for part in parts if part.strip()]

    @field_validator("attachment_base_dir")
    @classmethod
    def _absolute_dirs(cls, value: list[str]) -> list[str]:
        """Absolute and normalised, as the paths submitted are compared with them."""
        return [os.path.abspath(os.path.expanduser(folder)) for folder in value]

    @property
    def attachment_max_bytes(self) -> int:
        return int(self.attachment_max_mb * 1024 * 1024)

    @property
    def own_paths(self) -> list[Path]:
        """The proxy's own files and folders (instance folder with the key and token
        files, SQLite database, attachment cache): never served as attachments."""
        paths = [self.data_dir]
        if not self.is_postgres:
            paths.append(Path(self.db_path).expanduser())
        if self.cache_disk_dir:
            paths.append(Path(self.cache_disk_dir).expanduser())
        return paths

    @property
    def is_postgres(self) -> bool:
        return self.db_path.startswith(("postgresql://", "postgresql+", "postgres://"))

    @property
    def data_dir(self) -> Path:
        """Where instance files (the secret key) live: instance_dir or the DB's folder."""
        if self.instance_dir is not None:
            return self.instance_dir
        if self.is_postgres:
            return Path("./mail-proxy-data")
        return Path(self.db_path).expanduser().resolve().parent
