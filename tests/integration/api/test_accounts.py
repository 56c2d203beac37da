"""SMTP accounts: create or replace, passwords never returned, removal."""

from __future__ import annotations

import httpx
from tests.integration.api.conftest import MakeAccount, MakeTenant, TenantClient

from mail_proxy.runtime import Runtime
from mail_proxy.schemas import MASK


async def test_passwords_go_in_and_never_come_out(
    client: httpx.AsyncClient, make_tenant: MakeTenant, runtime: Runtime
) -> None:
    """Answers say has_password; the stored account has the password for the dispatcher."""
    await make_tenant("acme")
    created = await client.post(
        "/account",
        json={"id": "main", "tenant_id": "acme", "host": "smtp.example.com", "user": "u",
              "password": "smtp-secret", "imap_password": "imap-secret"},
    )  # fmt: skip
    assert created.json()["created"] is True
    listed = await client.get("/accounts", params={"tenant_id": "acme"})
    for text in (created.text, listed.text):
        assert "smtp-secret" not in text and "imap-secret" not in text
    account = listed.json()["accounts"][0]
    assert account["has_password"] is True and account["has_imap_password"] is True
    stored = await runtime.store.accounts.get("acme", "main")
    assert stored is not None and stored.password == "smtp-secret"


async def test_replace_keeps_password_when_omitted_or_masked(
    client: httpx.AsyncClient, make_tenant: MakeTenant, runtime: Runtime
) -> None:
    """Replacing without a password (or with the mask) keeps the stored one."""
    await make_tenant("acme")
    base = {"id": "main", "tenant_id": "acme", "host": "smtp.example.com"}
    await client.post("/account", json=base | {"password": "first"})
    replaced = await client.post("/account", json=base | {"port": 465})
    assert replaced.json()["created"] is False and replaced.json()["account"]["port"] == 465
    await client.post("/account", json=base | {"password": MASK})
    stored = await runtime.store.accounts.get("acme", "main")
    assert stored is not None and stored.password == "first"
    await client.post("/account", json=base | {"password": "second"})
    stored = await runtime.store.accounts.get("acme", "main")
    assert stored is not None and stored.password == "second"


async def test_tenant_token_manages_own_accounts(
    make_tenant: MakeTenant, tenant_client: TenantClient
) -> None:
    """A tenant token creates, lists and deletes its accounts without naming itself."""
    own = tenant_client(await make_tenant("acme"))
    made = await own.post("/account", json={"id": "main", "host": "127.0.0.1"})
    assert made.json()["account"]["tenant_id"] == "acme"
    assert [a["id"] for a in (await own.get("/accounts")).json()["accounts"]] == ["main"]
    assert (await own.delete("/account/main")).json() == {"ok": True, "removed": "main"}
    assert (await own.delete("/account/main")).status_code == 404


async def test_account_input_errors(
    client: httpx.AsyncClient, make_tenant: MakeTenant, make_account: MakeAccount
) -> None:
    """Unknown tenant is 404, a bad sender 400, bad fields 422, admin must name the tenant."""
    await make_tenant("acme")
    body = {"id": "main", "host": "smtp.example.com"}
    ghost = await client.post("/account", json=body | {"tenant_id": "ghost"})
    assert ghost.status_code == 404
    no_tenant = await client.post("/account", json=body)
    assert no_tenant.status_code == 400
    bad_from = await client.post(
        "/account", json=body | {"tenant_id": "acme", "default_from": "a@x.com, b@y.com"}
    )
    assert bad_from.status_code == 400
    assert bad_from.json()["fields"][0]["field"] == "default_from"
    bad_port = await client.post("/account", json=body | {"tenant_id": "acme", "port": 0})
    assert bad_port.status_code == 422
    assert bad_port.json()["fields"][0]["field"] == "body.port"
