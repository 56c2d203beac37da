"""Two-tier auth: admin token, tenant tokens, and no way across tenants."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from tests.integration.api.conftest import MakeAccount, MakeTenant, TenantClient, message

WRONG_TENANT = {
    "ok": False,
    "error": "Token not authorized for this tenant",
    "detail": "Token not authorized for this tenant",
}

CROSS_TENANT_CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/commands/add-messages", {"json": {"messages": [message("x", tenant_id="other")]}}),
    ("POST", "/commands/run-now", {"params": {"tenant_id": "other"}}),
    ("POST", "/commands/suspend", {"params": {"tenant_id": "other"}}),
    ("POST", "/commands/activate", {"params": {"tenant_id": "other"}}),
    (
        "POST",
        "/commands/delete-messages",
        {"params": {"tenant_id": "other"}, "json": {"ids": ["o"]}},
    ),
    ("POST", "/commands/cleanup-messages", {"params": {"tenant_id": "other"}}),
    ("GET", "/messages", {"params": {"tenant_id": "other"}}),
    ("GET", "/messages/o/events", {"params": {"tenant_id": "other"}}),
    ("POST", "/account", {"json": {"id": "main", "tenant_id": "other", "host": "evil.example"}}),
    ("GET", "/accounts", {"params": {"tenant_id": "other"}}),
    ("DELETE", "/account/main", {"params": {"tenant_id": "other"}}),
    ("GET", "/tenant/other", {}),
    ("PUT", "/tenant/other", {"json": {"client_base_url": "https://evil.example"}}),
    ("POST", "/tenant/other/signing-secret", {}),
]

ADMIN_ONLY_CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/tenant", {"json": {"id": "third"}}),
    ("GET", "/tenants", {}),
    ("GET", "/tenants/sync-status", {}),
    ("DELETE", "/tenant/acme", {}),
    ("POST", "/tenant/acme/api-key", {}),
    ("DELETE", "/tenant/acme/api-key", {}),
    ("GET", "/instance", {}),
    ("PUT", "/instance", {"json": {"name": "x"}}),
    ("POST", "/instance/reload-bounce", {}),
    ("GET", "/command-log", {}),
    ("GET", "/command-log/export", {}),
]


@pytest.fixture
async def two_tenants(
    client: httpx.AsyncClient, make_tenant: MakeTenant, make_account: MakeAccount
) -> dict[str, str]:
    """Tenants acme and other, each with an account and one queued message."""
    keys = {name: await make_tenant(name) for name in ("acme", "other")}
    for name in keys:
        await make_account(name, password="smtp-pass")
    batch = [message("a", tenant_id="acme"), message("o", tenant_id="other")]
    assert (await client.post("/commands/add-messages", json={"messages": batch})).json()[
        "queued"
    ] == 2
    return keys


@pytest.mark.parametrize(("method", "path", "options"), CROSS_TENANT_CALLS)
async def test_tenant_token_cannot_touch_another_tenant(
    client: httpx.AsyncClient,
    tenant_client: TenantClient,
    two_tenants: dict[str, str],
    method: str,
    path: str,
    options: dict[str, Any],
) -> None:
    """Naming another tenant anywhere is 401 and leaves that tenant exactly as it was."""
    before = await _snapshot(client, "other")
    response = await tenant_client(two_tenants["acme"]).request(method, path, **options)
    assert response.status_code == 401
    assert response.json() == WRONG_TENANT
    assert await _snapshot(client, "other") == before


async def _snapshot(client: httpx.AsyncClient, tenant_id: str) -> dict[str, Any]:
    tenant = (await client.get(f"/tenant/{tenant_id}")).json()
    accounts = (await client.get("/accounts", params={"tenant_id": tenant_id})).json()
    messages = (await client.get("/messages", params={"tenant_id": tenant_id})).json()
    return {"tenant": tenant, "accounts": accounts, "messages": messages}


@pytest.mark.parametrize(("method", "path", "options"), ADMIN_ONLY_CALLS)
async def test_tenant_token_on_admin_endpoint_is_403(
    tenant_client: TenantClient,
    two_tenants: dict[str, str],
    method: str,
    path: str,
    options: dict[str, Any],
) -> None:
    """Admin-only endpoints refuse a valid tenant token with 403."""
    response = await tenant_client(two_tenants["acme"]).request(method, path, **options)
    assert response.status_code == 403
    error = "This endpoint needs the admin token"
    assert response.json() == {"ok": False, "error": error, "detail": error}


async def test_tenant_token_sees_only_its_own_data(
    tenant_client: TenantClient, two_tenants: dict[str, str]
) -> None:
    """Without tenant_id a tenant token lists its own messages and accounts only."""
    own = tenant_client(two_tenants["acme"])
    assert [m["id"] for m in (await own.get("/messages")).json()["messages"]] == ["a"]
    assert [a["tenant_id"] for a in (await own.get("/accounts")).json()["accounts"]] == ["acme"]
    assert (await own.get("/messages", params={"tenant_id": "acme"})).status_code == 200
    assert (await own.get("/tenant/acme")).json()["id"] == "acme"
    status = (await own.get("/status")).json()
    assert status["pending"] == 1


async def test_admin_lists_every_tenant(
    client: httpx.AsyncClient, two_tenants: dict[str, str]
) -> None:
    """The admin token without tenant_id sees every tenant's messages and accounts."""
    assert (await client.get("/messages")).json()["total"] == 2
    assert len((await client.get("/accounts")).json()["accounts"]) == 2


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({}, "Missing X-API-Token header"),
        ({"X-API-Token": "nonsense"}, "Invalid API token"),
        ({"X-API-Token": "admin-token-for-tests-"}, "Invalid API token"),
    ],
)
async def test_missing_or_unknown_token_is_401(
    anonymous: httpx.AsyncClient, headers: dict[str, str], error: str
) -> None:
    """No token or an unknown one: 401 with a sentence saying which."""
    response = await anonymous.get("/messages", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"ok": False, "error": error, "detail": error}


async def test_expired_tenant_token_is_refused(
    client: httpx.AsyncClient, make_tenant: MakeTenant, tenant_client: TenantClient
) -> None:
    """api_key_expires_at is honoured: after it the key no longer works."""
    key = await make_tenant("acme")
    own = tenant_client(key)
    assert (await own.get("/messages")).status_code == 200
    await client.put("/tenant/acme", json={"api_key_expires_at": int(time.time()) - 1})
    expired = await own.get("/messages")
    assert expired.status_code == 401
    assert expired.json()["error"] == "API token expired"


INACTIVE_CHANGES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/commands/add-messages", {"json": {"messages": [message("n")]}}),
    ("POST", "/commands/delete-messages", {"json": {"ids": ["a"]}}),
    ("POST", "/commands/run-now", {}),
    ("PUT", "/tenant/acme", {"json": {"name": "Renamed"}}),
    ("DELETE", "/account/main", {}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), INACTIVE_CHANGES)
async def test_inactive_tenant_key_reads_but_changes_nothing(
    client: httpx.AsyncClient,
    tenant_client: TenantClient,
    two_tenants: dict[str, str],
    method: str,
    path: str,
    kwargs: dict[str, Any],
) -> None:
    """A tenant the admin switched off (active: false) may look but not act: 403."""
    assert (await client.put("/tenant/acme", json={"active": False})).status_code == 200
    own = tenant_client(two_tenants["acme"])
    before = await _snapshot(client, "acme")
    response = await own.request(method, path, **kwargs)
    assert response.status_code == 403
    error = "Tenant 'acme' is inactive: its token may read but not change"
    assert response.json() == {"ok": False, "error": error, "detail": error}
    assert await _snapshot(client, "acme") == before
    assert [m["id"] for m in (await own.get("/messages")).json()["messages"]] == ["a"]
    assert (await own.get("/accounts")).status_code == 200


async def test_tenant_cannot_change_admin_fields_of_itself(
    tenant_client: TenantClient, two_tenants: dict[str, str]
) -> None:
    """A tenant token may edit its own record but not reactivate itself or its key's expiry."""
    own = tenant_client(two_tenants["acme"])
    renamed = await own.put("/tenant/acme", json={"name": "ACME"})
    assert renamed.json()["name"] == "ACME"
    refused = await own.put("/tenant/acme", json={"active": True})
    assert refused.status_code == 403


async def test_admin_token_without_configuration_is_never_accepted(
    settings_factory: Any,
) -> None:
    """With no GMP_API_TOKEN set, an empty or any token is not admin."""
    from mail_proxy.api import create_app
    from mail_proxy.runtime import Runtime

    settings = settings_factory(api_token=None, test_mode=True)
    runtime = await Runtime.open(settings)
    try:
        transport = httpx.ASGITransport(create_app(settings, runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as anon:
            for token in ("", "None", "null"):
                response = await anon.get("/tenants", headers={"X-API-Token": token})
                assert response.status_code == 401
    finally:
        await runtime.close()
