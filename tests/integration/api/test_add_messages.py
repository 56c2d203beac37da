"""add-messages answers: 400 when nothing was queued, per-message refusal of text no
store can hold, the recipient bound, attachment file names."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from tests.integration.api.conftest import (
    ADMIN_TOKEN,
    MakeAccount,
    MakeTenant,
    admin_client_of,
    message,
)

from mail_proxy.settings import Settings

JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def acme(make_tenant: MakeTenant, make_account: MakeAccount) -> str:
    key = await make_tenant("acme")
    await make_account("acme")
    return key


async def test_nothing_queued_is_400_with_the_rejections(
    client: httpx.AsyncClient, acme: str
) -> None:
    """Every message rejected: 400, ok false, error = detail, and the rejection list;
    one queued: 200 with the others listed."""
    bad = [message("m1", tenant_id="acme", to="nobody"), message("m2", tenant_id="ghost")]
    refused = await client.post("/commands/add-messages", json={"messages": bad})
    assert refused.status_code == 400
    body = refused.json()
    assert body["ok"] is False and body["queued"] == 0
    assert body["error"] == body["detail"] == "No message queued: all 2 rejected"
    assert [(r["index"], r["id"]) for r in body["rejected"]] == [(0, "m1"), (1, "m2")]
    assert body["rejected"][1]["reason"] == "unknown tenant: ghost"

    mixed = await client.post(
        "/commands/add-messages", json={"messages": [*bad, message("m3", tenant_id="acme")]}
    )
    assert mixed.status_code == 200
    assert mixed.json()["queued"] == 1 and len(mixed.json()["rejected"]) == 2
    empty = await client.post("/commands/add-messages", json={"messages": []})
    assert empty.status_code == 200 and empty.json() == {"ok": True, "queued": 0, "rejected": []}


async def test_lone_surrogates_reject_only_their_message(
    client: httpx.AsyncClient, acme: str
) -> None:
    """A "\\ud800" escape rejects its message naming the field; the neighbour is queued,
    and the listing and the command log stay readable."""
    batch = (
        b'{"messages": ['
        b'{"id": "good", "tenant_id": "acme", "to": "a@example.com", "subject": "Hi"},'
        b'{"id": "bad", "tenant_id": "acme", "to": "a@example.com", "subject": "Hi \\ud800"},'
        b'{"id": "worse\\udfff", "tenant_id": "acme\\ud800", "to": "a@example.com"}'
        b"]}"
    )
    response = await client.post("/commands/add-messages", content=batch, headers=JSON)
    assert response.status_code == 200, response.text
    assert response.json()["queued"] == 1
    assert response.json()["rejected"] == [
        {"id": "bad", "index": 1,
         "reason": "invalid text in subject: not valid Unicode (lone surrogate)"},
        {"id": None, "index": 2,
         "reason": "invalid text in id: not valid Unicode (lone surrogate)"},
    ]  # fmt: skip
    listed = await client.get("/messages", params={"tenant_id": "acme"})
    assert listed.status_code == 200
    assert [m["id"] for m in listed.json()["messages"]] == ["good"]
    assert (await client.get("/command-log")).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/account", b'{"id": "a", "tenant_id": "acme", "host": "smtp\\ud800.example"}', "host"),
        ("/account", b'{"id": "a", "tenant_id": "acme", "host": "h", "user": "\\udc00"}', "user"),
        ("/tenant", b'{"id": "t\\ud800"}', "id"),
        ("/tenant", b'{"id": "t", "client_auth": {"user": "\\ud800"}}', "client_auth.user"),
        ("/commands/delete-messages", b'{"ids": ["a", "\\ud800"]}', "ids[1]"),
    ],
)
async def test_lone_surrogates_elsewhere_are_400_naming_the_field(
    client: httpx.AsyncClient, acme: str, path: str, body: bytes, field: str
) -> None:
    response = await client.post(path, content=body, headers=JSON)
    assert response.status_code == 400
    assert response.json()["error"] == (
        f"Invalid text in {field}: not valid Unicode (lone surrogate)"
    )


async def test_paired_surrogate_escapes_are_ordinary_text(
    client: httpx.AsyncClient, acme: str
) -> None:
    """Clients that escape every non-ASCII character send emoji as a surrogate pair."""
    batch = b'{"messages": [{"id": "e", "tenant_id": "acme", "to": "a@example.com", '
    batch += b'"subject": "Hi \\ud83d\\ude00"}]}'
    response = await client.post("/commands/add-messages", content=batch, headers=JSON)
    assert response.status_code == 200 and response.json()["queued"] == 1
    listed = await client.get("/messages", params={"tenant_id": "acme"})
    assert listed.json()["messages"][0]["payload"]["subject"] == "Hi \U0001f600"


async def test_attachment_file_name_over_255_is_refused(
    client: httpx.AsyncClient, acme: str
) -> None:
    long_name = "n" * 256
    attachment = {"filename": long_name, "storage_path": "base64:aGk="}
    response = await client.post(
        "/commands/add-messages",
        json={"messages": [message("m1", tenant_id="acme", attachments=[attachment])]},
    )
    assert response.status_code == 400
    reason = response.json()["rejected"][0]["reason"]
    assert reason.startswith("attachment spec invalid: attachment 0 filename 'nnnn")
    assert reason.endswith("is longer than 255 characters")


@pytest.fixture
async def few_recipients(
    settings_factory: Callable[..., Settings],
) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client of an app allowing 10 recipients a request."""
    settings = settings_factory(api_token=ADMIN_TOKEN, test_mode=True, max_batch_recipients=10)
    async with admin_client_of(settings) as admin:
        yield admin


async def test_too_many_recipients_is_413(few_recipients: httpx.AsyncClient) -> None:
    """to + cc + bcc of all messages together are bounded (GMP_MAX_BATCH_RECIPIENTS)."""
    over = [
        message("m1", to=[f"r{i}@example.com" for i in range(6)]),
        message("m2", to="a@example.com, b@example.com", cc="c@example.com", bcc=["d@x.com"]),
    ]
    at_limit = await few_recipients.post("/commands/add-messages", json={"messages": over})
    assert at_limit.status_code == 400  # judged (no tenant named), not refused as too large
    over[1]["bcc"] = ["d@x.com", "e@x.com"]
    response = await few_recipients.post("/commands/add-messages", json={"messages": over})
    assert response.status_code == 413
    assert response.json()["error"] == "Too many recipients (to, cc, bcc) in one request: 11 > 10"
