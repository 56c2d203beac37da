"""The command log: every state-changing call, secrets masked, bodies omitted."""

from __future__ import annotations

import csv
import io
import json

import httpx
from tests.integration.api.conftest import MakeAccount, MakeTenant, TenantClient, message

from mail_proxy.schemas import MASK


async def test_state_changes_are_recorded_with_secrets_masked(
    client: httpx.AsyncClient,
    make_tenant: MakeTenant,
    make_account: MakeAccount,
    tenant_client: TenantClient,
) -> None:
    """Each POST/PUT/DELETE is logged with actor, tenant and status; secrets never stored."""
    key = await make_tenant("acme", client_auth={"method": "bearer", "token": "cb-token"})
    await make_account("acme", password="smtp-secret")
    own = tenant_client(key)
    await own.post(
        "/commands/add-messages",
        json={"messages": [message("m1", body="very private text")]},
    )
    await own.get("/messages")
    await tenant_client("wrong-key").post("/commands/run-now")

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
        ("POST", "/commands/run-now", "anonymous", None, 401),
    ]
    assert entries[0]["body"]["client_auth"]["token"] == MASK
    assert entries[1]["body"]["password"] == MASK
    assert entries[2]["body"]["messages"] == {"count": 1, "ids": ["m1"]}


async def test_filters_and_exports(client: httpx.AsyncClient, make_tenant: MakeTenant) -> None:
    """tenant_id filters the log; export gives the same entries as CSV and JSON lines."""
    await make_tenant("acme")
    await make_tenant("other")
    await client.post("/commands/suspend", params={"tenant_id": "acme", "batch_code": "b"})
    only_acme = (await client.get("/command-log", params={"tenant_id": "acme"})).json()
    assert [e["path"] for e in only_acme["entries"]] == [
        "/tenant", "/commands/suspend?tenant_id=acme&batch_code=b"
    ]  # fmt: skip
    jsonl = await client.get("/command-log/export", params={"format": "jsonl"})
    rows = [json.loads(line) for line in jsonl.text.splitlines()]
    assert [r["tenant_id"] for r in rows] == ["acme", "other", "acme"]
    exported = await client.get(
        "/command-log/export", params={"format": "csv", "tenant_id": "acme"}
    )
    assert exported.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["method"] for r in table] == ["POST", "POST"]
    assert json.loads(table[0]["body"])["id"] == "acme"
    assert (await client.get("/command-log", params={"since": 4e9})).json()["entries"] == []
