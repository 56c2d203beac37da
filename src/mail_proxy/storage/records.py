"""Conversions between table rows and the domain's dataclasses.

Rows keep times as floats and JSON as text; the dataclasses use integer seconds and
dicts. Secrets are sealed on the way in and opened on the way out, so nothing above
the storage layer ever sees a ciphertext. That includes the credentials a queued
message carries for fetching its attachments (``attachments[].auth``): in the stored
payload each such object is replaced by ``{"sealed": <Fernet token of its JSON>}``.
"""

from __future__ import annotations

import json
from typing import Any

import structlog

from mail_proxy.domain.models import (
    Account,
    AuthMethod,
    ClientAuth,
    CommandLogEntry,
    Event,
    EventType,
    LimitBehavior,
    MessageRecord,
    Status,
    Tenant,
)
from mail_proxy.domain.text import storable
from mail_proxy.errors import MailProxyError
from mail_proxy.storage.cipher import Cipher

log = structlog.get_logger(__name__)


def dump_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def load_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def whole(ts: float | None) -> int | None:
    """Seconds as the wire shows them (rounded down)."""
    return None if ts is None else int(ts)


_STATUS = {status.value: status for status in Status}
SEALED_KEY = "sealed"


def payload_json(payload: dict[str, Any], cipher: Cipher) -> str:
    """The payload as stored: JSON text with every attachment's ``auth`` sealed."""
    attachments = payload.get("attachments")
    if attachments:
        payload = payload | {"attachments": [_sealed_auth(spec, cipher) for spec in attachments]}
    return str(dump_json(payload))


def _sealed_auth(spec: Any, cipher: Cipher) -> Any:
    if not isinstance(spec, dict) or not isinstance(spec.get("auth"), dict):
        return spec
    return spec | {"auth": {SEALED_KEY: cipher.seal(json.dumps(spec["auth"]))}}


def payload_from_json(text: str, cipher: Cipher) -> dict[str, Any]:
    """The payload as queued: sealed ``auth`` objects opened (older rows, written
    before they were sealed, pass through as they are)."""
    payload: dict[str, Any] = json.loads(text)
    attachments = payload.get("attachments")
    if attachments:
        payload["attachments"] = [_opened_auth(spec, cipher) for spec in attachments]
    return payload


def _opened_auth(spec: Any, cipher: Cipher) -> Any:
    """One attachment's ``auth`` opened. A token this key cannot open costs that
    attachment its credentials (its fetch is then refused), never the whole claim
    batch the row was read with."""
    auth = spec.get("auth") if isinstance(spec, dict) else None
    if not isinstance(auth, dict) or set(auth) != {SEALED_KEY}:
        return spec
    try:
        return spec | {"auth": json.loads(cipher.open(auth[SEALED_KEY]) or "null")}
    except MailProxyError:
        log.warning("attachment_auth_unreadable", filename=storable(spec.get("filename"), 255))
        return spec | {"auth": None}


def message_record(row: Any, cipher: Cipher) -> MessageRecord:
    """From a row of every ``messages`` column in table order (the claim's hot path,
    hence positional: 100 records per claim)."""
    (
        pk,
        tenant_id,
        id_,
        account_id,
        priority,
        status,
        payload,
        batch_code,
        deferred_ts,
        attempts,
        created_at,
        updated_at,
        smtp_ts,
        error_ts,
        error,
        reported_ts,
        _lease_token,
        _lease_expires,
        rfc_message_id,
    ) = row
    return MessageRecord(
        pk,
        tenant_id,
        id_,
        account_id,
        priority,
        _STATUS[status],
        payload_from_json(payload, cipher),
        batch_code,
        None if deferred_ts is None else int(deferred_ts),
        attempts,
        int(created_at),
        int(updated_at),
        None if smtp_ts is None else int(smtp_ts),
        None if error_ts is None else int(error_ts),
        error,
        None if reported_ts is None else int(reported_ts),
        rfc_message_id,
    )


def event(row: Any) -> Event:
    return Event(
        event_id=row.event_id,
        message_pk=row.message_pk,
        tenant_id=row.tenant_id,
        message_id=row.message_id,
        type=EventType(row.type),
        ts=int(row.ts),
        description=row.description,
        details=load_json(row.details),
        reported_ts=whole(row.reported_ts),
    )


def tenant(row: Any, cipher: Cipher) -> Tenant:
    return Tenant(
        id=row.id,
        name=row.name,
        client_base_url=row.client_base_url,
        client_sync_path=row.client_sync_path,
        client_attachment_path=row.client_attachment_path,
        client_auth=ClientAuth(
            method=AuthMethod(row.client_auth_method),
            token=cipher.open(row.client_auth_token_enc),
            user=row.client_auth_user,
            password=cipher.open(row.client_auth_password_enc),
        ),
        rate_limits=load_json(row.rate_limits),
        large_file_config=_opened_config(load_json(row.large_file_config), cipher),
        active=bool(row.active),
        api_key_expires_at=row.api_key_expires_at,
        has_api_key=row.api_key_hash is not None,
        signing_secret=cipher.open(row.signing_secret_enc),
        target_trusted=bool(row.target_trusted),
        created_at=whole(row.created_at),
        updated_at=whole(row.updated_at),
    )


def tenant_values(t: Tenant, cipher: Cipher) -> dict[str, Any]:
    """Columns of every field but the API key, signing secret and sync state."""
    return {
        "id": t.id,
        "name": t.name,
        "client_base_url": t.client_base_url,
        "client_sync_path": t.client_sync_path,
        "client_attachment_path": t.client_attachment_path,
        "client_auth_method": AuthMethod(t.client_auth.method).value,
        "client_auth_user": t.client_auth.user,
        "client_auth_token_enc": cipher.seal(t.client_auth.token),
        "client_auth_password_enc": cipher.seal(t.client_auth.password),
        "rate_limits": dump_json(t.rate_limits),
        "large_file_config": dump_json(_sealed_config(t.large_file_config, cipher)),
        "active": t.active,
        "target_trusted": t.target_trusted,
    }


LARGE_FILE_SECRETS = ("secret_access_key",)
"""Secrets of a tenant's storage configuration: stored as ``<name>_enc`` Fernet tokens
inside the JSON, so a copied database reveals no storage credential."""


def _sealed_config(config: dict[str, Any] | None, cipher: Cipher) -> dict[str, Any] | None:
    if config is None:
        return None
    sealed = {k: v for k, v in config.items() if k not in LARGE_FILE_SECRETS}
    for name in LARGE_FILE_SECRETS:
        if config.get(name) is not None:
            sealed[f"{name}_enc"] = cipher.seal(config[name])
    return sealed


def _opened_config(stored: Any, cipher: Cipher) -> dict[str, Any] | None:
    if not isinstance(stored, dict):
        return None
    config = {k: v for k, v in stored.items() if not k.endswith("_enc")}
    for name in LARGE_FILE_SECRETS:
        if stored.get(f"{name}_enc") is not None:
            config[name] = cipher.open(stored[f"{name}_enc"])
    return config


def client_auth(value: ClientAuth | dict[str, Any] | None) -> ClientAuth:
    """Accept the dataclass or its dict form (as an API body carries it)."""
    if value is None:
        return ClientAuth()
    if isinstance(value, ClientAuth):
        return value
    fields = {k: v for k, v in value.items() if k in ("method", "token", "user", "password")}
    fields["method"] = AuthMethod(fields.get("method") or AuthMethod.NONE)
    return ClientAuth(**fields)


_ACCOUNT_PLAIN = (
    "host", "port", "user", "use_tls", "ttl", "limit_per_minute", "limit_per_hour",
    "limit_per_day", "batch_size", "is_default", "default_from", "timeout",
    "is_pec_account", "imap_host", "imap_port", "imap_user", "imap_ssl", "imap_folder",
    "target_trusted",
)  # fmt: skip


def account(row: Any, cipher: Cipher) -> Account:
    plain = {name: getattr(row, name) for name in _ACCOUNT_PLAIN}
    for flag in ("is_default", "is_pec_account", "imap_ssl", "target_trusted"):
        plain[flag] = bool(plain[flag])
    if plain["use_tls"] is not None:
        plain["use_tls"] = bool(plain["use_tls"])
    return Account(
        id=row.id,
        tenant_id=row.tenant_id,
        password=cipher.open(row.password_enc),
        imap_password=cipher.open(row.imap_password_enc),
        limit_behavior=LimitBehavior(row.limit_behavior),
        created_at=whole(row.created_at),
        updated_at=whole(row.updated_at),
        **plain,
    )


def account_values(a: Account, cipher: Cipher) -> dict[str, Any]:
    values = {name: getattr(a, name) for name in _ACCOUNT_PLAIN}
    values.update(
        tenant_id=a.tenant_id,
        id=a.id,
        password_enc=cipher.seal(a.password),
        imap_password_enc=cipher.seal(a.imap_password),
        limit_behavior=LimitBehavior(a.limit_behavior).value,
    )
    return values


def command_log_entry(row: Any) -> CommandLogEntry:
    return CommandLogEntry(
        id=row.id,
        ts=int(row.ts),
        method=row.method,
        path=row.path,
        actor=row.actor,
        tenant_id=row.tenant_id,
        status_code=row.status_code,
        body=load_json(row.body),
    )
