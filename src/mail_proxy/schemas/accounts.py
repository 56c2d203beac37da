"""Wire models of SMTP accounts. Passwords go in and never come out."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from mail_proxy.schemas.common import MAX_COUNT, WriteOnlySecret, examples

HOST_PATTERN = r"^[^\s/]+$"


class AccountIn(BaseModel):
    """``POST /account`` creates or replaces the account (id, tenant_id).

    A ``password`` left out, or sent as the mask, keeps the stored one on replace.
    """

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
    tenant_id: str | None = Field(default=None, description="Taken from a tenant token.")
    host: str = Field(pattern=HOST_PATTERN, max_length=255)
    port: int = Field(default=587, ge=1, le=65535)
    user: str | None = None
    password: WriteOnlySecret = None
    use_tls: bool | None = Field(default=None, description="STARTTLS; port 465 is implicit TLS.")
    ttl: int = Field(default=300, ge=0, le=MAX_COUNT, description="Pooled connection lifetime (s).")
    limit_per_minute: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    limit_per_hour: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    limit_per_day: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    limit_behavior: Literal["defer", "reject"] = "defer"
    batch_size: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    is_default: bool = False
    default_from: str | None = Field(default=None, description="Sender when a message has none.")
    timeout: float = Field(default=30.0, ge=0.1, le=600)
    is_pec_account: bool = False
    imap_host: str | None = Field(default=None, pattern=HOST_PATTERN)
    imap_port: int | None = Field(default=None, ge=1, le=65535)
    imap_user: str | None = None
    imap_password: WriteOnlySecret = None
    imap_ssl: bool = True
    imap_folder: str | None = None

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": "smtp-main",
                    "tenant_id": "acme",
                    "host": "smtp.acme.example",
                    "port": 587,
                    "user": "mailer",
                    "password": "secret",
                    "use_tls": True,
                    "limit_per_minute": 60,
                    "default_from": "ACME <noreply@acme.example>",
                }
            ]
        }
    }


class AccountOut(BaseModel):
    id: str
    tenant_id: str
    host: str
    port: int
    user: str | None
    has_password: bool
    use_tls: bool | None
    ttl: int
    limit_per_minute: int | None
    limit_per_hour: int | None
    limit_per_day: int | None
    limit_behavior: Literal["defer", "reject"]
    batch_size: int | None
    is_default: bool
    default_from: str | None
    timeout: float
    is_pec_account: bool
    imap_host: str | None
    imap_port: int | None
    imap_user: str | None
    has_imap_password: bool
    imap_ssl: bool
    imap_folder: str | None
    created_at: int | None
    updated_at: int | None

    model_config = examples(
        {
            "id": "smtp-main",
            "tenant_id": "acme",
            "host": "smtp.acme.example",
            "port": 587,
            "user": "mailer",
            "has_password": True,
            "use_tls": True,
            "ttl": 300,
            "limit_per_minute": 60,
            "limit_per_hour": None,
            "limit_per_day": None,
            "limit_behavior": "defer",
            "batch_size": None,
            "is_default": True,
            "default_from": "ACME <noreply@acme.example>",
            "timeout": 30.0,
            "is_pec_account": False,
            "imap_host": None,
            "imap_port": None,
            "imap_user": None,
            "has_imap_password": False,
            "imap_ssl": True,
            "imap_folder": None,
            "created_at": 1716999990,
            "updated_at": 1716999990,
        }
    )


class AccountSaveResponse(BaseModel):
    ok: Literal[True] = True
    created: bool
    account: AccountOut


class AccountListResponse(BaseModel):
    ok: Literal[True] = True
    accounts: list[AccountOut]
