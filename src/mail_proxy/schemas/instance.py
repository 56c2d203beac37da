"""Wire models of instance-wide settings and of the audit trail."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from mail_proxy.schemas.common import MAX_COUNT, StatusResponse, WriteOnlySecret, examples


class BounceSettings(BaseModel):
    """The IMAP mailbox polled for bounces (RFC 3464 DSNs)."""

    enabled: bool = False
    imap_host: str | None = Field(default=None, pattern=r"^[^\s/]+$")
    imap_port: int | None = Field(default=None, ge=1, le=65535)
    imap_user: str | None = None
    imap_password: WriteOnlySecret = Field(default=None, description="Write-only; masked on read.")
    imap_ssl: bool = True
    imap_folder: str = "INBOX"
    poll_interval_seconds: int = Field(default=60, ge=5, le=MAX_COUNT)

    model_config = examples(
        {
            "enabled": True,
            "imap_host": "imap.acme.example",
            "imap_port": 993,
            "imap_user": "bounces",
            "imap_password": "secret",
            "imap_folder": "INBOX",
        }
    )


BOUNCE_FLAT_FIELDS = {
    "bounce_enabled": "enabled",
    "bounce_imap_host": "imap_host",
    "bounce_imap_port": "imap_port",
    "bounce_imap_user": "imap_user",
    "bounce_imap_password": "imap_password",
    "bounce_imap_ssl": "imap_ssl",
    "bounce_imap_folder": "imap_folder",
    "bounce_poll_interval": "poll_interval_seconds",
}
"""The reference's flat ``bounce_*`` instance fields → keys of :class:`BounceSettings`."""


class InstanceUpdate(BaseModel):
    """``PUT /instance``: the fields sent are changed, the others kept.

    Bounce settings come nested (``bounce``: replaced whole) or as the flat
    ``bounce_*`` fields (each changes one setting; applied after ``bounce``).
    """

    name: str | None = Field(default=None, max_length=200)
    bounce: BounceSettings | None = None
    bounce_enabled: bool | None = None
    bounce_imap_host: str | None = Field(default=None, pattern=r"^[^\s/]+$")
    bounce_imap_port: int | None = Field(default=None, ge=1, le=65535)
    bounce_imap_user: str | None = None
    bounce_imap_password: WriteOnlySecret = Field(default=None, description="Write-only.")
    bounce_imap_ssl: bool | None = None
    bounce_imap_folder: str | None = None
    bounce_poll_interval: int | None = Field(default=None, ge=5, le=MAX_COUNT)

    model_config = examples(
        {"name": "mail-proxy eu-1", "bounce_enabled": True, "bounce_imap_host": "imap.example"},
        {"name": "mail-proxy eu-1", "bounce": {"enabled": False}},
    )


class InstanceOut(BaseModel):
    name: str | None
    bounce: dict[str, Any] | None = Field(description="Bounce settings, password masked.")
    bounce_enabled: bool
    bounce_imap_host: str | None
    bounce_imap_port: int | None
    bounce_imap_user: str | None
    bounce_imap_ssl: bool
    bounce_imap_folder: str | None
    bounce_poll_interval: int
    active: bool = Field(description="Sending (the instance is not suspended).")
    test_mode: bool
    default_priority: int
    sync_interval_seconds: int
    version: str


class InstanceResponse(InstanceOut):
    """``GET``/``PUT /instance``: the settings at top level, beside ``ok``."""

    ok: Literal[True] = True

    model_config = examples(
        {
            "ok": True,
            "name": "eu-1",
            "bounce": None,
            "bounce_enabled": False,
            "bounce_imap_host": None,
            "bounce_imap_port": None,
            "bounce_imap_user": None,
            "bounce_imap_ssl": True,
            "bounce_imap_folder": "INBOX",
            "bounce_poll_interval": 60,
            "active": True,
            "test_mode": False,
            "default_priority": 2,
            "sync_interval_seconds": 300,
            "version": "0.1.0",
        }
    )


class InstanceStatusResponse(StatusResponse):
    """``GET /status`` with the reference's names beside ours."""

    scheduler_active: bool = Field(description="Same as active.")
    pending_messages: int = Field(description="Same as pending.")
    mailboxes: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Polled mailboxes (bounce, PEC) in this process: state, last poll, "
        "last error. A tenant sees its PEC mailboxes only.",
    )


class ReloadBounceResponse(BaseModel):
    """Bounce settings are checked and stored, and this process's pollers restarted
    with them (other processes pick them up within a minute)."""

    ok: Literal[True] = True
    bounce: dict[str, Any] | None
    polling: bool = Field(description="Whether the bounce mailbox is polled (enabled, host set).")
    detail: str

    model_config = examples(
        {
            "ok": True,
            "bounce": {"enabled": True, "imap_host": "imap.acme.example"},
            "polling": False,
            "detail": "Bounce settings stored; this version does not poll.",
        }
    )


class CommandLogEntryOut(BaseModel):
    """One audited call. ``command_ts``, ``endpoint``, ``payload`` and ``response_status``
    repeat ``ts``, ``method path``, ``body`` and ``status_code`` under the names
    genro-mail-proxy clients read."""

    id: int
    ts: int
    method: str
    path: str
    actor: str = Field(description="`admin` or `tenant:<id>`.")
    tenant_id: str | None
    status_code: int
    body: dict[str, Any] | None = Field(
        description="Request body, secrets masked; a long one is cut and marked `truncated`."
    )
    command_ts: int
    endpoint: str = Field(description="`METHOD /path?query`.")
    payload: dict[str, Any] | None
    response_status: int

    model_config = examples(
        {
            "id": 1,
            "ts": 1717000000,
            "method": "POST",
            "path": "/account",
            "actor": "admin",
            "tenant_id": "acme",
            "status_code": 200,
            "body": {"id": "smtp-main", "host": "smtp.acme.example", "password": "********"},
            "command_ts": 1717000000,
            "endpoint": "POST /account",
            "payload": {"id": "smtp-main", "host": "smtp.acme.example", "password": "********"},
            "response_status": 200,
        }
    )


class CommandReplayItem(BaseModel):
    """One call of the replay export: what to send again, in order."""

    endpoint: str = Field(description="`METHOD /path?query`.")
    tenant_id: str | None
    payload: dict[str, Any] | None
    command_ts: int

    model_config = examples(
        {
            "endpoint": "POST /tenant",
            "tenant_id": "acme",
            "payload": {"id": "acme", "name": "ACME"},
            "command_ts": 1717000000,
        }
    )


class CommandLogResponse(BaseModel):
    ok: Literal[True] = True
    entries: list[CommandLogEntryOut]
