"""Removing secrets and message bodies from what the API shows or records.

The command log keeps request bodies for audit, but never a password, token, API
key or signing secret (masked) and never message content (omitted). Queue records
shown by ``GET /messages`` lose attachment credentials, and in a listing their
content too: an 8 MB attachment listed 100 times would make a 800 MB answer, so a
listing shows what each attachment is (name, size, SHA-256, fetch mode) and a
bounded part of the body. Stored text passes :func:`storable` on the way out, so
no stored value (a lone surrogate, a NUL) can make an answer fail to encode.
"""

from __future__ import annotations

import binascii
import hashlib
from base64 import b64decode
from typing import Any

from mail_proxy.domain.attachment_spec import infer_fetch_mode
from mail_proxy.domain.text import storable, storable_json
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
    if lowered.endswith("_url") and isinstance(item, str):
        return without_userinfo(item)
    return mask_secrets(item)


def without_userinfo(url: str) -> str:
    """A URL with any ``user:password@`` masked (such URLs are refused, but the
    refused request is still recorded)."""
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    if not sep or "@" not in authority:
        return url
    return f"{scheme}://{MASK}@{authority.rpartition('@')[2]}{slash}{path}"


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


def listing_payload(payload: dict[str, Any], body_chars: int) -> tuple[dict[str, Any], bool]:
    """A queued message summarised for a listing, and whether its body was cut."""
    shown = storable_json({k: v for k, v in payload.items() if k not in CONTENT_KEYS}, limit=None)
    truncated = False
    body = payload.get("body")
    if isinstance(body, str):
        truncated = len(body) > body_chars
        shown["body"] = storable(body[:body_chars], limit=body_chars)
    elif "body" in payload:
        shown["body"] = storable_json(body, limit=None)
    attachments = payload.get("attachments")
    if isinstance(attachments, list):
        shown["attachments"] = [attachment_summary(spec) for spec in attachments]
    return shown, truncated


def attachment_summary(spec: Any) -> dict[str, Any]:
    """What an attachment is, without its content or its ``auth``."""
    if not isinstance(spec, dict):
        return {}
    source = spec.get("storage_path")
    source = source if isinstance(source, str) else ""
    mode = spec.get("fetch_mode") or infer_fetch_mode(source)
    summary: dict[str, Any] = {
        "filename": storable_json(spec.get("filename"), limit=None),
        "fetch_mode": mode,
    }
    for key in ("mime_type", "content_md5"):
        if spec.get(key) is not None:
            summary[key] = storable_json(spec[key], limit=None)
    if mode == "base64":
        summary.update(_inline_facts(source.removeprefix("base64:")))
    else:
        summary["storage_path"] = storable(source)
    return summary


def _inline_facts(data: str) -> dict[str, Any]:
    """Size and SHA-256 of inline base64 content (unknown when it does not decode)."""
    try:
        content = b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return {"size": None, "sha256": None}
    return {"size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
