"""Wire models of tenants: the organisations sharing one proxy, and their keys.

Secrets the proxy uses towards a tenant (``client_auth`` token or password) are
write-only: answers show ``MASK`` in their place, and sending ``MASK`` back keeps
the stored value. The tenant's API key is shown once, when it is made.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, StrictInt, model_validator

from mail_proxy.domain.large_file_config import Action, large_file_rules
from mail_proxy.domain.models import AuthMethod
from mail_proxy.schemas.common import MAX_COUNT, MAX_TS, WriteOnlySecret, examples, masked

TENANT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
URL_PATTERN = r"^https?://[^\s]+$"
PATH_PATTERN = r"^/[^\s]*$"


class ClientAuthIn(BaseModel):
    """How the proxy authenticates to the tenant's endpoints (sync, attachments)."""

    method: AuthMethod = AuthMethod.NONE
    token: WriteOnlySecret = None
    user: str | None = None
    password: WriteOnlySecret = None

    model_config = examples({"method": "bearer", "token": "s3cr3t-callback-token"})

    @model_validator(mode="before")
    @classmethod
    def _complete(cls, data: Any) -> Any:
        """Judged on what was sent, before the mask becomes ``None``: a masked secret
        is a secret given (the stored one)."""
        if not isinstance(data, dict):
            return data
        method = data.get("method", "none")
        if method == "bearer" and not data.get("token"):
            raise ValueError("bearer auth needs a token")
        if method == "basic" and not (data.get("user") and data.get("password")):
            raise ValueError("basic auth needs user and password")
        return data


class ClientAuthOut(BaseModel):
    method: AuthMethod
    token: str | None = Field(description="Masked when set.")
    user: str | None
    password: str | None = Field(description="Masked when set.")

    model_config = examples(
        {"method": "bearer", "token": "********", "user": None, "password": None}
    )


RATE_LIMIT_KEYS = {
    "per_minute": "per_minute",
    "per_hour": "per_hour",
    "per_day": "per_day",
    "limit_per_minute": "per_minute",
    "limit_per_hour": "per_hour",
    "limit_per_day": "per_day",
    "hourly": "per_hour",
    "daily": "per_day",
}
"""Accepted ``rate_limits`` keys → the canonical key stored. ``hourly`` and ``daily``
are the reference's documented names; ``limit_per_*`` are its account field names."""


def canonical_rate_limits(given: dict[str, object] | None) -> dict[str, int | None] | None:
    """``rate_limits`` under the canonical keys; ``ValueError`` names what is wrong.

    Two names of one window with different values, an unknown key, or a value that
    is not a positive whole number are refused rather than guessed at.
    """
    if given is None:
        return None
    limits: dict[str, int | None] = {}
    for key, value in given.items():
        canonical = RATE_LIMIT_KEYS.get(key)
        if canonical is None:
            known = ", ".join(sorted(RATE_LIMIT_KEYS))
            raise ValueError(f"unknown rate_limits key {key!r} (known: {known})")
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT
        ):
            raise ValueError(f"rate_limits {key!r} must be a whole number from 1 or null")
        if limits.get(canonical, value) != value:
            raise ValueError(f"rate_limits gives {canonical} twice with different values")
        limits[canonical] = value
    return limits


class LargeFileConfig(BaseModel):
    """Attachments above ``max_size_mb``: ``warn`` (send inline), ``reject`` (fail the
    message) or ``rewrite`` (upload to ``storage_url``, send a download link).
    ``secret_access_key`` is write-only (``MASK`` in answers) and sealed at rest."""

    enabled: bool = False
    max_size_mb: float | None = Field(default=None, ge=0.01, le=MAX_COUNT)
    storage_url: str | None = Field(
        default=None, max_length=1000, description="file:///dir or s3://bucket/prefix (fsspec)."
    )
    public_base_url: str | None = Field(
        default=None,
        pattern=URL_PATTERN,
        max_length=1000,
        description="Base of download links to file:// storage (default: the proxy's own).",
    )
    file_ttl_days: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    lifespan_after_download_days: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    action: Action = Action.WARN
    endpoint_url: str | None = Field(
        default=None,
        pattern=URL_PATTERN,
        max_length=1000,
        description="S3-compatible server (MinIO, Ceph...); AWS when unset.",
    )
    region: str | None = Field(default=None, max_length=64)
    access_key_id: str | None = Field(default=None, max_length=256)
    secret_access_key: WriteOnlySecret = Field(default=None, max_length=256)

    model_config = examples(
        {
            "enabled": True,
            "max_size_mb": 10,
            "action": "rewrite",
            "storage_url": "file:///srv/big",
            "public_base_url": "https://files.acme.example",
            "file_ttl_days": 30,
            "lifespan_after_download_days": 7,
        }
    )

    @model_validator(mode="after")
    def _storage(self) -> LargeFileConfig:
        """The storage rules the proxy applies when sending, checked when saving
        (even while ``enabled`` is false, so enabling it later cannot fail)."""
        large_file_rules({**self.model_dump(), "enabled": True})
        return self


def large_file_config_out(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored config as answers show it: its secrets masked."""
    if config is None:
        return None
    return {**config, "secret_access_key": masked(config.get("secret_access_key"))}


class TenantUpdate(BaseModel):
    """A partial update: only the fields sent are changed."""

    name: str | None = Field(default=None, max_length=200)
    client_base_url: str | None = Field(default=None, pattern=URL_PATTERN)
    client_sync_path: str | None = Field(default=None, pattern=PATH_PATTERN)
    client_attachment_path: str | None = Field(default=None, pattern=PATH_PATTERN)
    client_auth: ClientAuthIn | None = None
    # Strict: pydantic would turn ``true`` into 1 and ``2.0`` into 2 before the
    # canonical check could refuse them.
    rate_limits: dict[str, StrictInt | None] | None = Field(
        default=None,
        description="Sends per window: `per_minute`, `per_hour`, `per_day` "
        "(also `hourly`, `daily`, `limit_per_*`); stored under the `per_*` names.",
        examples=[{"hourly": 1000, "daily": 10000}],
    )
    large_file_config: LargeFileConfig | None = None
    active: bool | None = Field(default=None, description="Admin only.")
    api_key_expires_at: int | None = Field(default=None, ge=0, le=MAX_TS, description="Admin only.")

    model_config = examples({"name": "ACME Corp.", "client_base_url": "https://app.acme.example"})


class TenantIn(TenantUpdate):
    """``POST /tenant``: creates the tenant, or updates the fields sent when it exists."""

    id: str = Field(pattern=TENANT_ID_PATTERN, description="Letters, digits, . _ - (≤ 64).")

    model_config = examples(
        {
            "id": "acme",
            "name": "ACME Corp.",
            "client_base_url": "https://app.acme.example",
            "client_sync_path": "/mail-proxy/sync",
            "client_auth": {"method": "bearer", "token": "s3cr3t-callback-token"},
        }
    )


class TenantOut(BaseModel):
    id: str
    name: str | None
    client_base_url: str | None
    client_sync_path: str
    client_attachment_path: str
    client_auth: ClientAuthOut
    rate_limits: dict[str, int | None] | None
    large_file_config: dict[str, object] | None
    active: bool
    has_api_key: bool
    api_key_expires_at: int | None
    created_at: int | None
    updated_at: int | None

    model_config = examples(
        {
            "id": "acme",
            "name": "ACME Corp.",
            "client_base_url": "https://app.acme.example",
            "client_sync_path": "/mail-proxy/sync",
            "client_attachment_path": "/mail-proxy/attachments",
            "client_auth": {"method": "none", "token": None, "user": None, "password": None},
            "rate_limits": None,
            "large_file_config": None,
            "active": True,
            "has_api_key": True,
            "api_key_expires_at": None,
            "created_at": 1716999990,
            "updated_at": 1716999990,
        }
    )


class TenantDetail(TenantOut):
    """A tenant as its owner or the admin sees it, with the report-signing secret."""

    signing_secret: str | None = Field(
        description="HMAC key the proxy signs client-sync calls with."
    )
    suspended_batches: list[str] = Field(description="Suspended batch codes; `*` = all.")


class TenantResponse(TenantDetail):
    """``GET``/``PUT /tenant/{id}``: the tenant's fields at top level, beside ``ok``."""

    ok: Literal[True] = True


class TenantSaveResponse(BaseModel):
    """``api_key`` is present only when the tenant was just created: store it now."""

    ok: Literal[True] = True
    created: bool
    tenant: TenantDetail
    api_key: str | None = Field(default=None, description="Shown once, on creation.")


class TenantListResponse(BaseModel):
    ok: Literal[True] = True
    tenants: list[TenantOut]


class ApiKeyRequest(BaseModel):
    expires_at: int | None = Field(
        default=None, ge=0, le=MAX_TS, description="Unix s; null = never."
    )

    model_config = examples({"expires_at": None})


class ApiKeyResponse(BaseModel):
    ok: Literal[True] = True
    tenant_id: str
    api_key: str = Field(description="43 URL-safe characters, shown once.")
    api_key_expires_at: int | None

    model_config = examples(
        {"ok": True, "tenant_id": "acme", "api_key": "Zk3q" + "x" * 39, "api_key_expires_at": None}
    )


class SigningSecretResponse(BaseModel):
    ok: Literal[True] = True
    tenant_id: str
    signing_secret: str

    model_config = examples({"ok": True, "tenant_id": "acme", "signing_secret": "q" * 43})


class RemovedResponse(BaseModel):
    ok: Literal[True] = True
    removed: str = Field(description="Id of what was removed.")

    model_config = examples({"ok": True, "removed": "acme"})


class SyncStatusEntry(BaseModel):
    id: str
    name: str | None
    active: bool
    client_base_url: str | None
    last_sync_ts: int | None
    next_sync_due: bool = Field(description="A client-sync call is due now.")
    next_sync_ts: int | None = Field(
        description="When the next call is due (Unix s); null without a callback URL."
    )
    in_dnd: bool = Field(description="The tenant asked not to be called before next_sync_ts.")


class SyncStatusResponse(BaseModel):
    ok: Literal[True] = True
    sync_interval_seconds: int
    tenants: list[SyncStatusEntry]

    model_config = examples(
        {
            "ok": True,
            "sync_interval_seconds": 300,
            "tenants": [
                {
                    "id": "acme",
                    "name": "ACME Corp.",
                    "active": True,
                    "client_base_url": "https://app.acme.example",
                    "last_sync_ts": 1717000000,
                    "next_sync_due": False,
                    "next_sync_ts": 1717000300,
                    "in_dnd": False,
                }
            ],
        }
    )
