"""Removing secrets and message bodies from what the API shows or records.

The command log keeps request bodies for audit, but never a password, token, API
key or signing secret (masked) and never message content (omitted). Queue records
shown by ``GET /messages`` lose attachment credentials.
"""

from __future__ import annotations

from typing import Any

from mail_proxy.schemas import MASK

SECRET_KEYS = frozenset(
    {"password", "token", "api_key", "api_token", "secret", "signing_secret",
     "imap_password", "client_sync_password", "client_sync_token", "authorization"}
)  # fmt: skip
CONTENT_KEYS = frozenset({"body", "attachments"})


def mask_secrets(value: Any) -> Any:
    """A copy of a JSON value with secret values masked and message content omitted."""
    if isinstance(value, dict):
        return {key: _masked_item(str(key), item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_secrets(item) for item in value]
    return value


def _masked_item(key: str, item: Any) -> Any:
    lowered = key.lower()
    if lowered in SECRET_KEYS or lowered.endswith(("_password", "_token", "_secret")):
        return MASK if item not in (None, "") else item
    if lowered in CONTENT_KEYS and item not in (None, "", []):
        return "[omitted]"
    if lowered == "messages" and isinstance(item, list):
        return {"count": len(item), "ids": [_message_id(m) for m in item]}
    return mask_secrets(item)


def _message_id(message: Any) -> Any:
    return message.get("id") if isinstance(message, dict) else None


def public_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """A queued message as shown to its owner: attachment credentials removed."""
    attachments = payload.get("attachments")
    if not attachments:
        return payload
    cleaned = [
        {key: value for key, value in spec.items() if key != "auth"}
        if isinstance(spec, dict) else spec
        for spec in attachments
    ]  # fmt: skip
    return payload | {"attachments": cleaned}
