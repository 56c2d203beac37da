"""run-now, suspend and activate, for a tenant, a batch and the whole instance."""

from __future__ import annotations

import httpx
from tests.integration.api.conftest import MakeAccount, MakeTenant, TenantClient, message

from mail_proxy.runtime import Runtime
from mail_proxy.settings import Settings


async def _queue(client: httpx.AsyncClient, *batches: str | None) -> None:
    """One pending message of acme per batch code given (None: no batch)."""
    messages = [
        message(f"m{index}", tenant_id="acme", **({"batch_code": code} if code else {}))
        for index, code in enumerate(batches)
    ]
    answer = await client.post("/commands/add-messages", json={"messages": messages})
    assert answer.json()["queued"] == len(batches), answer.text


async def test_suspend_and_activate_batches(
    client: httpx.AsyncClient,
    make_tenant: MakeTenant,
    make_account: MakeAccount,
    tenant_client: TenantClient,
) -> None:
    """Batches suspend one by one; answers name the batch and count what it holds;
    one batch cannot be activated while '*' is set."""
    own = tenant_client(await make_tenant("acme"))
    await make_account("acme")
    await _queue(client, "spring", "spring", "autumn", None)
    first = await own.post("/commands/suspend", params={"batch_code": "spring"})
    assert first.json() == {"ok": True, "tenant_id": "acme", "batch_code": "spring",
                            "suspended_batches": ["spring"], "pending_messages": 2,
                            "active": False}  # fmt: skip
    whole = await own.post("/commands/suspend")
    assert whole.json()["suspended_batches"] == ["*", "spring"]
    assert whole.json()["batch_code"] is None and whole.json()["pending_messages"] == 4
    refused = await own.post("/commands/activate", params={"batch_code": "spring"})
    assert refused.status_code == 409
    assert "'*'" in refused.json()["error"]
    cleared = await own.post("/commands/activate")
    assert cleared.json() == {"ok": True, "tenant_id": "acme", "batch_code": None,
                              "suspended_batches": [], "pending_messages": 4,
                              "active": True}  # fmt: skip
    await own.post("/commands/suspend", params={"batch_code": "autumn"})
    one = await own.post("/commands/activate", params={"batch_code": "autumn"})
    assert one.json()["suspended_batches"] == []
    assert one.json()["pending_messages"] == 1 and one.json()["active"] is True


async def test_admin_suspends_whole_instance(
    client: httpx.AsyncClient, runtime: Runtime, api_settings: Settings
) -> None:
    """Admin without tenant_id stores the instance flag, which another process on the
    same database reads too; /status and /instance show it."""
    stopped = await client.post("/commands/suspend")
    assert stopped.json() == {"ok": True, "tenant_id": None, "batch_code": None,
                              "suspended_batches": [], "pending_messages": 0,
                              "active": False}  # fmt: skip
    assert runtime.dispatcher.active is False
    other = await Runtime.open(api_settings)
    try:
        assert await other.store.control.instance_active() is False
        assert (await client.get("/status")).json()["active"] is False
        assert (await client.get("/instance")).json()["active"] is False
        started = await client.post("/commands/activate")
        assert started.json()["active"] is True and runtime.dispatcher.active is True
        assert await other.store.control.instance_active() is True
    finally:
        await other.close()


async def test_run_now_scopes(
    client: httpx.AsyncClient, make_tenant: MakeTenant, tenant_client: TenantClient
) -> None:
    """run-now answers which tenant it woke; unknown tenants are 404."""
    own = tenant_client(await make_tenant("acme"))
    woken = (await own.post("/commands/run-now")).json()
    assert woken == {"ok": True, "triggered": True, "tenant_id": "acme"}
    everyone = (await client.post("/commands/run-now")).json()
    assert everyone == {"ok": True, "triggered": True, "tenant_id": None}
    ghost = await client.post("/commands/run-now", params={"tenant_id": "ghost"})
    assert ghost.status_code == 404
    assert (
        await client.post("/commands/suspend", params={"tenant_id": "ghost"})
    ).status_code == 404
