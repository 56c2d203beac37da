"""Save-time target policy: a tenant key may not point the proxy into private networks.

These tests run with the policy on (the other API tests allow private targets,
since their servers live on loopback). Literal addresses keep them off DNS, except
the one name that must not resolve.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from tests.integration.api.conftest import ADMIN_TOKEN

from mail_proxy.api import create_app
from mail_proxy.runtime import Runtime
from mail_proxy.settings import Settings

PUBLIC = "8.8.8.8"


@pytest.fixture
async def guarded(
    settings_factory: Callable[..., Settings],
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, Runtime]]:
    """(admin client, acme's client, runtime) with private targets refused, except
    10.9.0.0/16 which the operator allowlisted."""
    settings = settings_factory(
        api_token=ADMIN_TOKEN, test_mode=True, private_targets_allowlist=["10.9.0.0/16"]
    )
    runtime = await Runtime.open(settings)
    transport = httpx.ASGITransport(create_app(settings, runtime))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers={"X-API-Token": ADMIN_TOKEN}
    ) as admin:
        key = (await admin.post("/tenant", json={"id": "acme"})).json()["api_key"]
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers={"X-API-Token": key}
        ) as tenant:
            yield admin, tenant, runtime
    await runtime.close()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"host": "127.0.0.1"}, "host"),
        ({"host": "10.0.0.5"}, "host"),
        ({"host": "169.254.169.254"}, "host"),
        ({"host": "[::1]"}, "host"),
        ({"host": "no-such-host.invalid"}, "host"),
        ({"host": PUBLIC, "imap_host": "192.168.1.1"}, "imap_host"),
    ],
)
async def test_tenant_account_with_private_host_is_400_naming_the_field(
    guarded: tuple[httpx.AsyncClient, httpx.AsyncClient, Runtime],
    fields: dict[str, str],
    field: str,
) -> None:
    _, tenant, runtime = guarded
    answer = await tenant.post("/account", json={"id": "main", **fields})
    assert answer.status_code == 400
    body = answer.json()
    assert body["fields"][0]["field"] == field and body["error"].startswith(field)
    assert await runtime.store.accounts.get("acme", "main") is None


async def test_admin_saves_any_host_trusted_and_a_tenant_save_clears_trust(
    guarded: tuple[httpx.AsyncClient, httpx.AsyncClient, Runtime],
) -> None:
    admin, tenant, runtime = guarded
    saved = await admin.post(
        "/account", json={"id": "main", "tenant_id": "acme", "host": "10.0.0.5"}
    )
    assert saved.status_code == 200
    account = await runtime.store.accounts.get("acme", "main")
    assert account is not None and account.target_trusted is True
    allowed = await tenant.post("/account", json={"id": "main", "host": "10.9.1.2"})
    assert allowed.status_code == 200, allowed.text
    account = await runtime.store.accounts.get("acme", "main")
    assert account is not None and account.target_trusted is False
    public = await tenant.post("/account", json={"id": "other", "host": PUBLIC})
    assert public.status_code == 200


async def test_tenant_callback_url_is_checked_and_admin_trusted(
    guarded: tuple[httpx.AsyncClient, httpx.AsyncClient, Runtime],
) -> None:
    admin, tenant, runtime = guarded
    refused = await tenant.put("/tenant/acme", json={"client_base_url": "http://127.0.0.1:9/"})
    assert refused.status_code == 400
    assert refused.json()["fields"][0]["field"] == "client_base_url"
    assert await admin.put("/tenant/acme", json={"client_base_url": "http://127.0.0.1:9/"})
    stored = await runtime.store.tenants.get("acme")
    assert stored is not None and stored.target_trusted is True
    assert stored.client_base_url == "http://127.0.0.1:9/"
    renamed = await tenant.put("/tenant/acme", json={"name": "ACME"})
    assert renamed.status_code == 200
    stored = await runtime.store.tenants.get("acme")
    assert stored is not None and stored.target_trusted is True
    moved = await tenant.put("/tenant/acme", json={"client_base_url": f"https://{PUBLIC}/"})
    assert moved.status_code == 200
    stored = await runtime.store.tenants.get("acme")
    assert stored is not None and stored.target_trusted is False
    # The admin renaming the tenant does not vouch for the URL the tenant chose.
    assert (await admin.put("/tenant/acme", json={"name": "Acme"})).status_code == 200
    stored = await runtime.store.tenants.get("acme")
    assert stored is not None and stored.target_trusted is False


@pytest.mark.parametrize("url", ["https://user:s3cret@app.example/", "https://s3cret@app.example/"])
async def test_callback_url_with_credentials_is_refused_for_everyone(
    guarded: tuple[httpx.AsyncClient, httpx.AsyncClient, Runtime], url: str
) -> None:
    admin, tenant, _ = guarded
    for caller in (admin, tenant):
        answer = await caller.put("/tenant/acme", json={"client_base_url": url})
        assert answer.status_code == 400
        assert "client_auth" in answer.json()["error"] and "s3cret" not in answer.text
    created = await admin.post("/tenant", json={"id": "beta", "client_base_url": url})
    assert created.status_code == 400


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("http://[::1/", "client_base_url"),
        ("https://app.example:99999999/", "client_base_url"),
    ],
)
async def test_malformed_callback_url_is_400(
    guarded: tuple[httpx.AsyncClient, httpx.AsyncClient, Runtime], url: str, field: str
) -> None:
    admin, tenant, _ = guarded
    for caller in (admin, tenant):
        answer = await caller.put("/tenant/acme", json={"client_base_url": url})
        assert answer.status_code == 400 and answer.json()["fields"][0]["field"] == field


async def test_host_the_resolver_cannot_take_is_400(
    guarded: tuple[httpx.AsyncClient, httpx.AsyncClient, Runtime],
) -> None:
    _, tenant, _ = guarded
    answer = await tenant.post("/account", json={"id": "main", "host": "a\x00b"})
    assert answer.status_code in (400, 422) and answer.json()["ok"] is False
