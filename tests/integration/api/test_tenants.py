"""Tenants: the API key shown once, masked callback secrets, keys and signing secrets."""

from __future__ import annotations

import httpx
from tests.integration.api.conftest import MakeTenant, TenantClient

from mail_proxy.runtime import Runtime
from mail_proxy.schemas import MASK


async def test_create_returns_key_once_and_secrets_are_masked(
    client: httpx.AsyncClient, tenant_client: TenantClient
) -> None:
    """Creation answers a 43-character key; reads never show it or the callback token."""
    created = await client.post(
        "/tenant",
        json={
            "id": "acme",
            "name": "ACME",
            "client_base_url": "https://app.acme.example",
            "client_auth": {"method": "bearer", "token": "callback-secret"},
        },
    )
    body = created.json()
    assert body["created"] is True and len(body["api_key"]) == 43
    assert "callback-secret" not in created.text
    tenant = body["tenant"]
    assert tenant["client_auth"] == {"method": "bearer", "token": MASK, "user": None,
                                     "password": None}  # fmt: skip
    assert tenant["has_api_key"] is True and len(tenant["signing_secret"]) == 43
    read = await tenant_client(body["api_key"]).get("/tenant/acme")
    assert read.json()["signing_secret"] == tenant["signing_secret"]
    assert body["api_key"] not in read.text and "callback-secret" not in read.text
    listed = await client.get("/tenants")
    assert "callback-secret" not in listed.text and "signing_secret" not in listed.text


async def test_post_existing_tenant_updates_only_fields_sent(
    client: httpx.AsyncClient, make_tenant: MakeTenant, runtime: Runtime
) -> None:
    """POST /tenant on an existing id is a partial update and issues no new key."""
    await make_tenant("acme", name="ACME", client_auth={"method": "bearer", "token": "t1"})
    again = await client.post(
        "/tenant", json={"id": "acme", "client_base_url": "https://a.example"}
    )
    body = again.json()
    assert body["created"] is False and body.get("api_key") is None
    assert body["tenant"]["name"] == "ACME"
    assert body["tenant"]["client_base_url"] == "https://a.example"
    stored = await runtime.store.tenants.get("acme")
    assert stored is not None and stored.client_auth.token == "t1"


async def test_put_with_mask_keeps_secret_and_new_value_replaces_it(
    client: httpx.AsyncClient, make_tenant: MakeTenant, runtime: Runtime
) -> None:
    """Sending back what GET showed (the mask) keeps the stored callback secret."""
    await make_tenant("acme", client_auth={"method": "basic", "user": "u", "password": "p1"})
    shown = (await client.get("/tenant/acme")).json()["client_auth"]
    await client.put("/tenant/acme", json={"client_auth": shown, "name": "n"})
    stored = await runtime.store.tenants.get("acme")
    assert stored is not None and stored.client_auth.password == "p1"
    await client.put(
        "/tenant/acme", json={"client_auth": {"method": "basic", "user": "u", "password": "p2"}}
    )
    stored = await runtime.store.tenants.get("acme")
    assert stored is not None and stored.client_auth.password == "p2"


async def test_api_key_rotation_and_revocation(
    client: httpx.AsyncClient, make_tenant: MakeTenant, tenant_client: TenantClient
) -> None:
    """Rotating makes the old key fail and the new one work; revoking ends access."""
    old_key = await make_tenant("acme")
    rotated = (await client.post("/tenant/acme/api-key", json={"expires_at": None})).json()
    assert len(rotated["api_key"]) == 43
    assert (await tenant_client(old_key).get("/messages")).status_code == 401
    assert (await tenant_client(rotated["api_key"]).get("/messages")).status_code == 200
    revoked = await client.delete("/tenant/acme/api-key")
    assert revoked.json()["has_api_key"] is False
    assert (await tenant_client(rotated["api_key"]).get("/messages")).status_code == 401
    missing = await client.post("/tenant/ghost/api-key")
    assert missing.status_code == 404


async def test_signing_secret_rotation_by_tenant(
    client: httpx.AsyncClient, make_tenant: MakeTenant, tenant_client: TenantClient
) -> None:
    """A tenant may rotate its own signing secret; the new one is what reads show."""
    key = await make_tenant("acme")
    before = (await client.get("/tenant/acme")).json()["signing_secret"]
    rotated = (await tenant_client(key).post("/tenant/acme/signing-secret")).json()
    assert rotated["signing_secret"] != before
    after = (await client.get("/tenant/acme")).json()["signing_secret"]
    assert after == rotated["signing_secret"]


async def test_delete_tenant_and_listing(
    client: httpx.AsyncClient, make_tenant: MakeTenant
) -> None:
    """Deleting removes the tenant; active_only filters inactive ones; unknown is 404."""
    await make_tenant("acme")
    await make_tenant("sleepy", active=False)
    all_ids = [t["id"] for t in (await client.get("/tenants")).json()["tenants"]]
    active = await client.get("/tenants", params={"active_only": True})
    assert all_ids == ["acme", "sleepy"]
    assert [t["id"] for t in active.json()["tenants"]] == ["acme"]
    assert (await client.delete("/tenant/acme")).json() == {"ok": True, "removed": "acme"}
    assert (await client.get("/tenant/acme")).status_code == 404
    assert (await client.delete("/tenant/acme")).status_code == 404


async def test_sync_status_lists_active_tenants(
    client: httpx.AsyncClient, make_tenant: MakeTenant
) -> None:
    """sync-status gives each active tenant's documented fields: next_sync_due is a
    boolean (a never-called tenant is due now), the time is next_sync_ts."""
    await make_tenant("acme", name="ACME", client_base_url="https://app.acme.example")
    await make_tenant("quiet")
    await make_tenant("sleepy", active=False)
    body = (await client.get("/tenants/sync-status")).json()
    assert body["sync_interval_seconds"] == 300
    rows = {row["id"]: row for row in body["tenants"]}
    assert set(rows) == {"acme", "quiet"}
    acme = rows["acme"]
    assert set(acme) == {"id", "name", "active", "client_base_url", "last_sync_ts",
                         "next_sync_due", "next_sync_ts", "in_dnd"}  # fmt: skip
    assert acme["name"] == "ACME" and acme["active"] is True
    assert acme["client_base_url"] == "https://app.acme.example"
    assert acme["next_sync_due"] is True and isinstance(acme["next_sync_ts"], int)
    assert acme["in_dnd"] is False and acme["last_sync_ts"] is None
    assert rows["quiet"]["next_sync_due"] is False and rows["quiet"]["next_sync_ts"] is None


async def test_get_tenant_fields_are_at_top_level(
    client: httpx.AsyncClient, make_tenant: MakeTenant
) -> None:
    """GET and PUT /tenant/{id} answer the tenant's fields beside ok, not wrapped."""
    await make_tenant("acme", name="ACME")
    read = (await client.get("/tenant/acme")).json()
    assert read["ok"] is True and read["id"] == "acme" and read["name"] == "ACME"
    assert "tenant" not in read
    changed = (await client.put("/tenant/acme", json={"name": "Acme"})).json()
    assert changed["ok"] is True and changed["name"] == "Acme"


async def test_rate_limits_documented_keys_are_stored_canonically(
    client: httpx.AsyncClient, make_tenant: MakeTenant, runtime: Runtime
) -> None:
    """hourly/daily (the reference's keys) and limit_per_* are stored as per_*;
    an unknown key, a bad value or two different values for one window are 400."""
    await make_tenant("acme", rate_limits={"hourly": 1000, "daily": 10000})
    stored = await runtime.store.tenants.get("acme")
    assert stored is not None and stored.rate_limits == {"per_hour": 1000, "per_day": 10000}
    answer = await client.put("/tenant/acme", json={"rate_limits": {"limit_per_minute": 5}})
    assert answer.json()["rate_limits"] == {"per_minute": 5}
    for limits in ({"weekly": 5}, {"hourly": 0}, {"hourly": 5, "per_hour": 6}):
        refused = await client.put("/tenant/acme", json={"rate_limits": limits})
        assert refused.status_code == 400, limits
        assert refused.json()["fields"][0]["field"] == "rate_limits"
    same = await client.put("/tenant/acme", json={"rate_limits": {"hourly": 7, "per_hour": 7}})
    assert same.json()["rate_limits"] == {"per_hour": 7}
    for limits in ({"hourly": True}, {"daily": 2.0}, {"hourly": "5"}):
        refused = await client.put("/tenant/acme", json={"rate_limits": limits})
        assert refused.status_code == 422, limits  # not coerced to 1, 2 or 5
        [key] = limits
        assert refused.json()["fields"][0]["field"] == f"body.rate_limits.{key}"
    stored = await runtime.store.tenants.get("acme")
    assert stored is not None and stored.rate_limits == {"per_hour": 7}


async def test_invalid_tenant_input_names_the_fields(client: httpx.AsyncClient) -> None:
    """Bad ids, URLs and incomplete auth are 422 with the failing fields listed."""
    response = await client.post(
        "/tenant",
        json={"id": "bad id!", "client_base_url": "ftp://x", "client_auth": {"method": "bearer"}},
    )
    assert response.status_code == 422
    fields = {f["field"] for f in response.json()["fields"]}
    assert fields == {"body.id", "body.client_base_url", "body.client_auth"}
