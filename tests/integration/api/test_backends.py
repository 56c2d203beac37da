"""The API's main path on both stores (SQLite and PostgreSQL), and inputs that only
one database would choke on (NUL characters, integers beyond 64 bits)."""

from __future__ import annotations

import httpx
import pytest
from tests.integration.api.conftest import ADMIN_TOKEN, admin_client_of, message

from mail_proxy.settings import Settings


@pytest.fixture
async def backend_client(db_settings: Settings) -> httpx.AsyncClient:
    settings = db_settings.model_copy(update={"api_token": ADMIN_TOKEN, "test_mode": True})
    async with admin_client_of(settings) as http:
        yield http


async def test_main_path_and_hostile_input(backend_client: httpx.AsyncClient) -> None:
    """Tenant, account, batch, listing and audit work; NUL and huge numbers are 4xx."""
    http = backend_client
    key = (await http.post("/tenant", json={"id": "acme"})).json()["api_key"]
    account = {"id": "main", "tenant_id": "acme", "host": "smtp.example.com", "password": "pw"}
    await http.post("/account", json=account | {"default_from": "a@example.com"})
    batch = {"messages": [message("1", tenant_id="acme"), message("2", tenant_id="acme", to="x")]}
    added = (await http.post("/commands/add-messages", json=batch)).json()
    assert added["queued"] == 1 and [r["id"] for r in added["rejected"]] == ["2"]
    own = await http.get("/messages", headers={"X-API-Token": key})
    assert [m["id"] for m in own.json()["messages"]] == ["1"]
    assert len((await http.get("/command-log")).json()["entries"]) == 3

    nul_query = await http.get("/messages", params={"tenant_id": "a\x00b"})
    assert nul_query.status_code == 400
    assert nul_query.json()["error"] == "NUL characters are not allowed in requests"
    nul_body = await http.post("/tenant", json={"id": "acme", "name": "x\x00y"})
    assert nul_body.status_code == 400
    escaped = await http.post("/tenant", json={"id": "acme", "name": "back\\u0000slash"})
    assert escaped.status_code == 200
    huge = await http.get("/messages", params={"offset": 2**64})
    assert huge.status_code == 422
    late = message("3", tenant_id="acme", deferred_ts=2**70)
    far = await http.post("/commands/add-messages", json={"messages": [late]})
    assert far.json()["rejected"][0]["reason"].startswith("invalid deferred_ts")
