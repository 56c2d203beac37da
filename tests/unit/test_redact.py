"""What the API shows of stored messages and records of requests: table-driven."""

from __future__ import annotations

import hashlib
from base64 import b64encode
from typing import Any

import pytest

from mail_proxy.api.redact import attachment_summary, listing_payload, mask_secrets
from mail_proxy.domain.text import storable_json
from mail_proxy.schemas import MASK

CONTENT = b"%PDF-1.4 hello"
INLINE = "base64:" + b64encode(CONTENT).decode()


@pytest.mark.parametrize(
    ("body", "limit", "shown", "cut"),
    [
        ("short", 10, "short", False),
        ("exactly10!", 10, "exactly10!", False),
        ("a" * 11, 10, "a" * 10, True),
        ("bad\x00byte\udcff", 100, "badbyte\ufffd", False),
        ("anything", 0, "", True),
    ],
)
def test_listing_body_is_cut_and_made_storable(
    body: str, limit: int, shown: str, cut: bool
) -> None:
    payload, truncated = listing_payload({"id": "m", "body": body}, limit)
    assert payload["body"] == shown and truncated is cut
    assert payload["id"] == "m"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"filename": "a.pdf", "storage_path": INLINE, "auth": {"token": "t"}},
            {"filename": "a.pdf", "fetch_mode": "base64", "size": len(CONTENT),
             "sha256": hashlib.sha256(CONTENT).hexdigest()},
        ),
        (
            {"filename": "b.txt", "storage_path": "base64:!!not base64", "fetch_mode": "base64"},
            {"filename": "b.txt", "fetch_mode": "base64", "size": None, "sha256": None},
        ),
        (
            {"filename": "c", "storage_path": "https://files.example/c", "content_md5": "0" * 32,
             "auth": {"method": "bearer", "token": "secret"}},
            {"filename": "c", "fetch_mode": "http_url", "content_md5": "0" * 32,
             "storage_path": "https://files.example/c"},
        ),
        (
            {"filename": "d", "storage_path": "doc_id=7", "mime_type": "text/plain"},
            {"filename": "d", "fetch_mode": "endpoint", "mime_type": "text/plain",
             "storage_path": "doc_id=7"},
        ),
        ("not a spec", {}),
    ],
)  # fmt: skip
def test_attachment_summary_never_shows_content_or_auth(
    spec: Any, expected: dict[str, Any]
) -> None:
    assert attachment_summary(spec) == expected


def test_listing_payload_keeps_fields_and_describes_attachments() -> None:
    payload, truncated = listing_payload(
        {"id": "m", "subject": "Hi\x00", "to": ["a@b.c"], "headers": {"X-A": "\udcff"},
         "attachments": [{"filename": "a.pdf", "storage_path": INLINE}]},
        50,
    )  # fmt: skip
    assert truncated is False and "body" not in payload
    assert payload["subject"] == "Hi" and payload["to"] == ["a@b.c"]
    assert payload["headers"] == {"X-A": "\ufffd"}
    assert payload["attachments"][0]["size"] == len(CONTENT)
    assert INLINE not in str(payload)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ok", "ok"),
        ("\udcff", "\ufffd"),
        ({"k\x00": ["v\x01", 3, None]}, {"k": ["v", 3, None]}),
    ],
)
def test_shown_text_makes_every_string_storable(value: Any, expected: Any) -> None:
    assert storable_json(value, limit=None) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://u:p@app.example/x", f"https://{MASK}@app.example/x"),
        ("https://u@app.example", f"https://{MASK}@app.example"),
        ("https://app.example/a@b", "https://app.example/a@b"),
        ("not a url", "not a url"),
    ],
)
def test_recorded_urls_lose_their_credentials(url: str, expected: str) -> None:
    assert mask_secrets({"client_base_url": url}) == {"client_base_url": expected}
