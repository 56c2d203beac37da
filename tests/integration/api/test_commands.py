"""run-now, suspend and activate, for a tenant, a batch and the whole instance."""

from __future__ import annotations

import httpx
from tests.integration.api.conftest import MakeTenant, TenantClient

from mail_proxy.runtime import Runtime


async def test_suspend_and_activate_batches(
    make_tenant: MakeTenant, tenant_client: TenantClient
) -> None:
    """Batches suspend one by one; one cannot be activated while '*' is set."""
    own = tenant_client(await make_tenant("acme"))
    first = await own.post("/commands/suspend", params={"batch_code": "spring"})
    assert first.json() == {"ok": True, "tenant_id": "acme", "suspended_batches": ["spring"],
                            "active": None}  # fmt: skip
    whole = await own.post("/commands/suspend")
    assert whole.json()["suspended_batches"] == ["*", "spring"]
    refused = await own.post("/commands/activate", params={"batch_code": "spring"})
    assert refused.status_code == 409
    assert "'*'" in refused.json()["error"]
    cleared = await own.post("/commands/activate")
    assert cleared.json()["suspended_batches"] == []
    await own.post("/commands/suspend", params={"batch_code": "b"})
    one = await own.post("/commands/activate", params={"batch_code": "b"})
    assert one.json()["suspended_batches"] == []


async def test_admin_suspends_whole_instance(client: httpx.AsyncClient, runtime: Runtime) -> None:
    """Admin without tenant_id stops and restarts the dispatcher; /status shows it."""
    stopped = await client.post("/commands/suspend")
    assert stopped.json()["active"] is False
    assert runtime.dispatcher.active is False
    assert (await client.get("/status")).json()["active"] is False
    started = await client.post("/commands/activate")
    assert started.json()["active"] is True and runtime.dispatcher.active is True


async def test_run_now_scopes(
    client: httpx.AsyncClient, make_tenant: MakeTenant, tenant_client: TenantClient
) -> None:
    """run-now answers which tenant it woke; unknown tenants are 404."""
    own = tenant_client(await make_tenant("acme"))
    assert (await own.post("/commands/run-now")).json() == {"ok": True, "tenant_id": "acme"}
    assert (await client.post("/commands/run-now")).json() == {"ok": True, "tenant_id": None}
    ghost = await client.post("/commands/run-now", params={"tenant_id": "ghost"})
    assert ghost.status_code == 404
    assert (
        await client.post("/commands/suspend", params={"tenant_id": "ghost"})
    ).status_code == 404
