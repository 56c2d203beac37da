"""The command log: authenticated state-changing calls, secrets masked, bodies capped,
old entries pruned; filters and exports named as genro-mail-proxy names them."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import Callable

import httpx
import pytest
from tests.integration.api.conftest import (
    ADMIN_TOKEN,
    MakeAccount,
    MakeTenant,
    TenantClient,
    message,
)

from mail_proxy.api import create_app
from mail_proxy.api.middleware import logged_body
from mail_proxy.api.routes.command_log import safe_cell
from mail_proxy.runtime import Runtime
from mail_proxy.schemas import MASK
from mail_proxy.settings import Settings


async def test_state_changes_are_recorded_with_secrets_masked(
    client: httpx.AsyncClient,
    make_tenant: MakeTenant,
    make_account: MakeAccount,
    tenant_client: TenantClient,
) -> None:
    """Each authenticated POST/PUT/DELETE is logged with actor, tenant and status;
    secrets never stored."""
    key = await make_tenant("acme", client_auth={"method": "bearer", "token": "cb-token"})
    await make_account("acme", password="smtp-secret")
    own = tenant_client(key)
    await own.post(
        "/commands/add-messages",
        json={"messages": [message("m1", body="very private text")]},
    )
    await own.get("/messages")

    response = await client.get("/command-log")
    text = response.text
    for secret in ("cb-token", "smtp-secret", "very private text", key):
        assert secret not in text
    entries = response.json()["entries"]
    summary = [(e["method"], e["path"], e["actor"], e["tenant_id"], e["status_code"])
               for e in entries]  # fmt: skip
    assert summary == [
        ("POST", "/tenant", "admin", "acme", 200),
        ("POST", "/account", "admin", "acme", 200),
        ("POST", "/commands/add-messages", "tenant:acme", "acme", 200),
    ]
    assert entries[0]["body"]["client_auth"]["token"] == MASK
    assert entries[1]["body"]["password"] == MASK
    assert entries[2]["body"]["messages"] == {"count": 1, "ids": ["m1"]}
    assert entries[2]["endpoint"] == "POST /commands/add-messages"
    assert entries[2]["payload"] == entries[2]["body"]
    assert entries[2]["command_ts"] == entries[2]["ts"]
    assert entries[2]["response_status"] == 200


async def test_calls_without_a_valid_token_are_not_recorded(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, tenant_client: TenantClient
) -> None:
    """Nobody without a token can grow the table: 401 bodies are not stored."""
    filler = {"messages": [{"id": "x" * 200, "padding": "y" * 500_000}]}
    assert (await anonymous.post("/commands/add-messages", json=filler)).status_code == 401
    wrong = tenant_client("wrong-key")
    assert (await wrong.post("/commands/run-now", json=filler)).status_code == 401
    assert (await client.get("/command-log")).json()["entries"] == []


async def test_long_bodies_are_cut_and_marked(client: httpx.AsyncClient) -> None:
    """A body longer than GMP_COMMAND_LOG_MAX_BODY_BYTES (16 KiB) keeps only its head."""
    batch = {"messages": [message(f"{index:03d}" + "i" * 200) for index in range(200)]}
    sent = await client.post("/commands/add-messages", json=batch)
    entry = (await client.get("/command-log")).json()["entries"][-1]
    assert entry["body"]["truncated"] is True
    assert entry["body"]["bytes"] == len(sent.request.content)
    head = entry["body"]["head"]
    assert head.startswith('{"messages":{"count":200,"ids":["000')
    assert len(head.encode()) <= 16 * 1024


async def test_entries_past_retention_are_pruned_by_the_cleanup_loop(
    settings_factory: Callable[..., Settings],
) -> None:
    """The runtime's clean-up loop removes entries older than the retention period."""
    settings = settings_factory(
        api_token=ADMIN_TOKEN,
        test_mode=True,
        cleanup_interval=0.05,
        command_log_retention_seconds=3600,
    )
    runtime = await Runtime.open(settings)
    try:
        now = time.time()
        for ts, path in ((now - 7200, "/old"), (now, "/recent")):
            await runtime.store.audit.record(
                ts=ts, method="POST", path=path, actor="admin", tenant_id=None,
                status_code=200, body=None,
            )  # fmt: skip
        runtime.start_workers()
        async with asyncio.timeout(30):
            while len(await runtime.store.audit.entries()) > 1:
                await asyncio.sleep(0.02)
        assert [e.path for e in await runtime.store.audit.entries()] == ["/recent"]
    finally:
        await runtime.close()


async def test_filters_match_the_reference_names(
    client: httpx.AsyncClient, make_tenant: MakeTenant
) -> None:
    """since_ts, until_ts, tenant_id and endpoint_filter (part of METHOD /path, any case)."""
    await make_tenant("acme")
    await make_tenant("other")
    await client.post("/commands/suspend", params={"tenant_id": "acme", "batch_code": "b"})

    async def paths(**params: object) -> list[str]:
        answer = await client.get("/command-log", params=params)
        assert answer.status_code == 200, answer.text
        return [e["path"] for e in answer.json()["entries"]]

    assert await paths(tenant_id="acme") == [
        "/tenant",
        "/commands/suspend?tenant_id=acme&batch_code=b",
    ]
    assert await paths(endpoint_filter="SUSPEND") == [
        "/commands/suspend?tenant_id=acme&batch_code=b"
    ]
    assert await paths(endpoint_filter="post /ten") == ["/tenant", "/tenant"]
    assert await paths(endpoint_filter="%") == []
    assert await paths(since_ts=4e9) == []
    assert await paths(since=4e9) == []
    assert await paths(until_ts=1) == []
    assert len(await paths(since_ts=1, until_ts=4e9)) == 3


async def test_exports_replay_list_lines_and_csv(
    client: httpx.AsyncClient, make_tenant: MakeTenant
) -> None:
    """json is the replay list (endpoint, tenant_id, payload, command_ts) in call order;
    jsonl and csv carry whole entries."""
    await make_tenant("acme", name="ACME")
    await make_tenant("other")
    replay = await client.get("/command-log/export")
    assert replay.headers["content-type"].startswith("application/json")
    items = replay.json()
    assert [(i["endpoint"], i["tenant_id"]) for i in items] == [
        ("POST /tenant", "acme"), ("POST /tenant", "other")
    ]  # fmt: skip
    assert items[0]["payload"] == {"id": "acme", "name": "ACME"}
    assert set(items[0]) == {"endpoint", "tenant_id", "payload", "command_ts"}
    empty = await client.get("/command-log/export", params={"since_ts": 4e9})
    assert empty.json() == []

    jsonl = await client.get("/command-log/export", params={"format": "jsonl"})
    rows = [json.loads(line) for line in jsonl.text.splitlines()]
    assert [r["tenant_id"] for r in rows] == ["acme", "other"]
    exported = await client.get(
        "/command-log/export", params={"format": "csv", "tenant_id": "acme"}
    )
    assert exported.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["method"] for r in table] == ["POST"]
    assert json.loads(table[0]["body"])["id"] == "acme"


async def test_csv_cells_never_start_a_formula(client: httpx.AsyncClient) -> None:
    """A tenant id named in a call ("=1+1") is exported as text a spreadsheet won't run."""
    await client.post("/commands/run-now", params={"tenant_id": "=1+1"})
    exported = await client.get("/command-log/export", params={"format": "csv"})
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["tenant_id"] for r in table] == ["'=1+1"]


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("acme", "acme"),
        ("a=b", "a=b"),
        (None, ""),
        (200, "200"),
    ],
)
def test_safe_cell(value: object, cell: str) -> None:
    assert safe_cell(value) == cell


async def test_lone_surrogates_are_refused_and_never_logged_raw(
    client: httpx.AsyncClient, make_tenant: MakeTenant
) -> None:
    """A "\\ud800" escape is a 400 naming the field before anything is logged; in a
    batch it rejects its message, and the log keeps the id readable (U+FFFD)."""
    await make_tenant("acme")
    refused = await client.post(
        "/tenant",
        content=b'{"id": "acme", "name": "bad \\ud800 name"}',
        headers={"Content-Type": "application/json"},
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == "Invalid text in name: not valid Unicode (lone surrogate)"
    batch = b'{"messages": [{"id": "m\\ud800", "tenant_id": "acme", "to": "a@b.example"}]}'
    await client.post(
        "/commands/add-messages", content=batch, headers={"Content-Type": "application/json"}
    )
    log = await client.get("/command-log")
    assert log.status_code == 200
    entries = log.json()["entries"]
    assert [e["path"] for e in entries] == ["/tenant", "/commands/add-messages"]
    assert entries[-1]["body"]["messages"]["ids"] == ["m\ufffd"]
    exported = await client.get("/command-log/export", params={"format": "csv"})
    assert exported.status_code == 200 and "m\ufffd" in exported.text


async def test_the_app_uses_the_configured_body_cap(
    settings_factory: Callable[..., Settings],
) -> None:
    """GMP_COMMAND_LOG_MAX_BODY_BYTES decides where bodies are cut."""
    settings = settings_factory(
        api_token=ADMIN_TOKEN, test_mode=True, command_log_max_body_bytes=256
    )
    runtime = await Runtime.open(settings)
    try:
        transport = httpx.ASGITransport(create_app(settings, runtime))
        headers = {"X-API-Token": ADMIN_TOKEN}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers=headers
        ) as admin:
            await admin.post("/tenant", json={"id": "acme", "name": "n" * 300})
            await admin.post("/tenant", json={"id": "beta", "name": "short"})
        first, second = await runtime.store.audit.entries()
        assert first.body is not None and first.body["truncated"] is True
        assert len(first.body["head"].encode()) == 256
        assert second.body == {"id": "beta", "name": "short"}
    finally:
        await runtime.close()


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        (b"", None),
        (b"not json", {"omitted": "8 bytes, not JSON"}),
        (b'["a", 1]', {"value": ["a", 1]}),
        (b'{"password": "pw", "n": 1}', {"password": MASK, "n": 1}),
        (b'{"name": "bad \\ud800"}', {"name": "bad \ufffd"}),
        (b'{"\\udfff": 1}', {"\ufffd": 1}),
    ],
)
def test_logged_body(raw: bytes, kept: object) -> None:
    """Masked, storable, and never more than the cap."""
    assert logged_body(raw, 16 * 1024) == kept


def test_logged_body_is_cut_on_a_character_boundary() -> None:
    raw = json.dumps({"name": "é" * 1000}, ensure_ascii=False).encode()
    cut = logged_body(raw, 256)
    assert cut is not None and cut["truncated"] is True and cut["bytes"] == len(raw)
    assert cut["head"].startswith('{"name":"éé') and len(cut["head"].encode()) <= 256
