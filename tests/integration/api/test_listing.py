"""GET /messages: bounded answers, paging, failure fields, history, unstorable text."""

from __future__ import annotations

import hashlib
import time
from base64 import b64encode
from collections.abc import Callable

import httpx
import pytest
from tests.integration.api.conftest import ADMIN_TOKEN, MakeAccount, MakeTenant, message

from mail_proxy.domain.models import Deferred, Failed, NewMessage, Sent
from mail_proxy.runtime import Runtime
from mail_proxy.settings import Settings

BODY_CHARS = 300


@pytest.fixture
def api_settings(settings_factory: Callable[..., Settings]) -> Settings:
    """Small enough bounds to see them work: 300 body characters, 16 KiB answers."""
    return settings_factory(
        api_token=ADMIN_TOKEN,
        test_mode=True,
        allow_private_targets=True,
        list_body_chars=BODY_CHARS,
        list_max_bytes=16 * 1024,
    )


async def _add(client: httpx.AsyncClient, *messages: dict[str, object]) -> None:
    answer = await client.post("/commands/add-messages", json={"messages": list(messages)})
    assert answer.json()["queued"] == len(messages), answer.text


async def test_large_messages_are_listed_small_and_shown_whole_one_at_a_time(
    client: httpx.AsyncClient, make_tenant: MakeTenant, make_account: MakeAccount
) -> None:
    """20 messages of 1 MiB attachment and 100 kB body list in a few kB each: the
    attachment as name, size, hash and mode; the body cut and flagged."""
    await make_tenant("acme")
    await make_account("acme")
    content = bytes(range(256)) * 4096
    inline = "base64:" + b64encode(content).decode()
    attachment = {"filename": "big.bin", "storage_path": inline,
                  "auth": {"method": "bearer", "token": "fetch-secret"}}  # fmt: skip
    for index in range(20):
        await _add(client, message(f"m{index}", tenant_id="acme", body="x" * 100_000,
                                   attachments=[attachment]))  # fmt: skip
    listed = await client.get("/messages", params={"limit": 100})
    body = listed.json()
    assert len(listed.content) < 20 * (BODY_CHARS * 2 + 2048)
    assert inline[:1000] not in listed.text and "fetch-secret" not in listed.text
    shown = [m for page in await _all_pages(client) for m in page]
    assert len(shown) == 20 == body["total"]
    record = shown[0]
    assert record["body_truncated"] is True and record["payload"]["body"] == "x" * BODY_CHARS
    assert record["message"] == record["payload"]
    assert record["payload"]["attachments"] == [
        {"filename": "big.bin", "fetch_mode": "base64", "size": len(content),
         "sha256": hashlib.sha256(content).hexdigest()}
    ]  # fmt: skip
    whole = await client.get("/messages/m3", params={"tenant_id": "acme"})
    assert whole.status_code == 200
    full = whole.json()
    assert full["ok"] is True and full["payload"]["body"] == "x" * 100_000
    assert full["payload"]["attachments"][0]["storage_path"] == inline
    assert "fetch-secret" not in whole.text and full["body_truncated"] is False
    missing = await client.get("/messages/nope", params={"tenant_id": "acme"})
    assert missing.status_code == 404


async def _all_pages(client: httpx.AsyncClient, **params: object) -> list[list[dict[str, object]]]:
    """Every page of a listing, following next_offset until it is null."""
    pages: list[list[dict[str, object]]] = []
    offset: int | None = 0
    while offset is not None:
        answer = await client.get("/messages", params={"limit": 100, "offset": offset, **params})
        body = answer.json()
        assert body["messages"], "a page that cannot move on"
        pages.append(body["messages"])
        offset = body["next_offset"]
    return pages


async def test_size_cap_pages_through_every_record_once(
    client: httpx.AsyncClient, make_tenant: MakeTenant, make_account: MakeAccount
) -> None:
    """A page stops growing at GMP_LIST_MAX_BYTES; next_offset walks all records, in
    order, each once, and the last page says null."""
    await make_tenant("acme")
    await make_account("acme")
    ids = [f"m{index:02d}" for index in range(40)]
    await _add(client, *(message(i, tenant_id="acme", body="y" * 1000) for i in ids))
    pages = await _all_pages(client)
    assert len(pages) > 1
    assert [m["id"] for page in pages for m in page] == ids
    for page in pages:
        size = len(httpx.Response(200, json={"messages": page}).content)
        assert size <= 16 * 1024 + 100 or len(page) == 1
    small = (await client.get("/messages", params={"limit": 5, "offset": 35})).json()
    assert [m["id"] for m in small["messages"]] == ids[35:] and small["next_offset"] is None
    middle = (await client.get("/messages", params={"limit": 5, "offset": 10})).json()
    assert middle["next_offset"] == 15


async def test_error_only_once_failed_for_good_and_history_on_request(
    client: httpx.AsyncClient, make_tenant: MakeTenant, make_account: MakeAccount, runtime: Runtime
) -> None:
    """A deferred message shows its reason as last_error, error stays null; a failed
    one shows error and error_ts; include_history adds each record's events."""
    await make_tenant("acme")
    await make_account("acme")
    await _add(client, message("soft", tenant_id="acme"), message("hard", tenant_id="acme"),
               message("fine", tenant_id="acme"))  # fmt: skip
    now = time.time()
    claimed = await runtime.store.queue.claim(now=now, lease_seconds=60, limit=3, per_account=3)
    outcomes = {
        "soft": Deferred(until=now + 600, reason="451 try later", ts=now),
        "hard": Failed(ts=now, error="550 no such user"),
        "fine": Sent(ts=now),
    }
    for lease in claimed:
        outcome = outcomes[lease.record.id]
        assert await runtime.store.queue.finish(lease.record.pk, lease.lease_token, outcome)
    plain = (await client.get("/messages")).json()["messages"]
    records = {m["id"]: m for m in plain}
    assert records["soft"]["error"] is None and records["soft"]["error_ts"] is None
    assert records["soft"]["last_error"] == "451 try later"
    assert records["soft"]["last_error_ts"] is not None
    assert records["hard"]["error"] == "550 no such user" and records["hard"]["error_ts"]
    assert records["hard"]["last_error"] == "550 no such user"
    assert records["fine"]["error"] is None and records["fine"]["last_error"] is None
    assert all(m["history"] is None for m in plain)
    full = (await client.get("/messages", params={"include_history": "true"})).json()
    history = {m["id"]: [e["type"] for e in m["history"]] for m in full["messages"]}
    assert history == {"soft": ["deferred"], "hard": ["error"], "fine": ["sent"]}
    event = full["messages"][0]["history"][0]
    assert event["event_type"] == event["type"] and event["event_ts"] == event["ts"]


async def test_nothing_stored_makes_a_listing_fail(
    client: httpx.AsyncClient, make_tenant: MakeTenant, make_account: MakeAccount, runtime: Runtime
) -> None:
    """Text that could not be submitted today (a lone surrogate, NUL) but sits in the
    queue (an older version, a migrated database) is shown made storable."""
    await make_tenant("acme")
    await make_account("acme")
    payload = {"id": "odd", "subject": "bad \udcff byte\x00", "to": ["a@b.c"],
               "body": "nul\x00 and \udcfe", "headers": {"X-\udcff": "v"}}  # fmt: skip
    await runtime.store.intake.enqueue(
        [NewMessage(tenant_id="acme", id="odd", account_id="main", priority=2, payload=payload)],
        time.time(),
    )
    listed = await client.get("/messages")
    assert listed.status_code == 200
    shown = listed.json()["messages"][0]["payload"]
    assert shown["subject"] == "bad \ufffd byte" and shown["body"] == "nul and \ufffd"
    whole = await client.get("/messages/odd", params={"tenant_id": "acme"})
    assert whole.status_code == 200 and whole.json()["payload"]["headers"] == {"X-\ufffd": "v"}
