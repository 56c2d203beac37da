"""Credentials inside a queued message are sealed at rest like every other secret."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mail_proxy.domain.models import NewMessage

if TYPE_CHECKING:
    from conftest import Queue

NOW = 1_700_000_000.0


def _with_attachment_auth(id_: str, token: str) -> NewMessage:
    attachments = [
        {"filename": "a.pdf", "storage_path": "https://files.test/a", "fetch_mode": "http_url",
         "auth": {"method": "bearer", "token": token}},
        {"filename": "b.txt", "storage_path": "base64:aGk=", "fetch_mode": "base64"},
    ]  # fmt: skip
    return NewMessage("acme", id_, "smtp1", 2, {"subject": "s", "attachments": attachments})


async def test_attachment_auth_is_sealed_in_the_row_and_open_when_read(q: Queue) -> None:
    """The token is not in the stored payload, on insert or on replace; the store hands
    it back in clear to whoever reads or claims the message."""
    await q.store.intake.enqueue([_with_attachment_auth("m", "FIRST-TOKEN")], NOW)
    await q.store.intake.enqueue([_with_attachment_auth("m", "SECOND-TOKEN")], NOW)
    [(payload,)] = await q.raw_rows("SELECT payload FROM messages")
    assert "TOKEN" not in payload and "bearer" not in payload
    record = await q.store.messages.get("acme", "m")
    assert record is not None
    assert record.payload["attachments"][0]["auth"] == {"method": "bearer", "token": "SECOND-TOKEN"}
    assert "auth" not in record.payload["attachments"][1]
    [claimed] = await q.claim()
    assert claimed.record.payload == record.payload
