"""Bounces and the suppression list over HTTP: scoping, add-messages rejection, export,
bad input answered with clear 4xx JSON."""

from __future__ import annotations

import json
import time

import httpx
from tests.integration.api.conftest import MakeAccount, MakeTenant, TenantClient, message

from mail_proxy.domain.bounces import BounceType, FailedRecipient
from mail_proxy.domain.returned_mail import Bounce
from mail_proxy.runtime import Runtime
from mail_proxy.workers.mailbox_pollers import bounce_rules


async def test_suppression_list_scoped_and_enforced(
    client: httpx.AsyncClient,
    tenant_client: TenantClient,
    make_tenant: MakeTenant,
    make_account: MakeAccount,
) -> None:
    """A tenant adds an address, add-messages refuses it with the reason, the
    admin sees every tenant's list, export is JSON lines, delete mails it again."""
    key = await make_tenant("acme")
    await make_tenant("beta")
    await make_account("acme")
    acme = tenant_client(key)
    added = await acme.post("/suppressions", json={"address": "Ann@Example.com", "reason": "quit"})
    assert added.json() == {"ok": True, "created": True}
    again = await acme.post("/suppressions", json={"address": "ann@example.com"})
    assert again.json()["created"] is False
    refused = await acme.post("/commands/add-messages", json={"messages": [message("m1")]})
    [rejection] = refused.json()["rejected"]
    assert "ann@example.com is on the suppression list (quit)" in rejection["reason"]
    listed = (await acme.get("/suppressions")).json()["suppressions"]
    assert [(e["tenant_id"], e["address"], e["bounce_id"]) for e in listed] == [
        ("acme", "ann@example.com", None)
    ]
    await client.post("/suppressions", json={"tenant_id": "beta", "address": "b@example.com"})
    everything = (await client.get("/suppressions")).json()["suppressions"]
    assert {e["tenant_id"] for e in everything} == {"acme", "beta"}
    exported = (await acme.get("/suppressions/export")).text.splitlines()
    assert [json.loads(line)["address"] for line in exported] == ["ann@example.com"]
    other = await acme.get("/suppressions", params={"tenant_id": "beta"})
    assert other.status_code == 401 and other.json()["ok"] is False
    removed = await acme.delete("/suppressions", params={"address": "ann@example.com"})
    assert removed.json() == {"ok": True}
    queued = await acme.post("/commands/add-messages", json={"messages": [message("m1")]})
    assert queued.json()["queued"] == 1


async def test_bad_suppression_input_is_a_clear_4xx(
    client: httpx.AsyncClient, make_tenant: MakeTenant
) -> None:
    """Bad addresses, unknown tenants, missing tenant for the admin, unknown entries."""
    await make_tenant("acme")
    cases = [
        ({"tenant_id": "acme", "address": "not an address"}, 400, "invalid address"),
        ({"tenant_id": "ghost", "address": "a@example.com"}, 404, "ghost"),
        ({"address": "a@example.com"}, 400, "tenant_id is required"),
        ({"tenant_id": "acme", "address": "a" * 300}, 422, ""),
    ]
    for body, status, said in cases:
        answer = await client.post("/suppressions", json=body)
        assert answer.status_code == status, answer.text
        assert answer.json()["ok"] is False and said in json.dumps(answer.json())
    gone = await client.delete("/suppressions", params={"tenant_id": "acme", "address": "x@y.z"})
    assert gone.status_code == 404 and gone.json()["ok"] is False


async def test_bounces_listed_per_tenant_and_unmatched_for_the_admin(
    runtime: Runtime,
    client: httpx.AsyncClient,
    tenant_client: TenantClient,
    make_tenant: MakeTenant,
) -> None:
    """A tenant reads its bounces; unmatched ones are the admin's only."""
    key = await make_tenant("acme")
    failed = FailedRecipient("x@nowhere.example", BounceType.HARD, "5.1.1", "gone")
    bounce = Bounce((failed,), "nope", None, standard=True)
    rules = bounce_rules(runtime.settings)
    await runtime.store.mailboxes.record(
        "bounce", [("1:1", bounce)], tenant_id=None, rules=rules, now=time.time()
    )
    [unmatched] = (await client.get("/bounces", params={"unmatched": True})).json()["bounces"]
    assert unmatched["tenant_id"] is None and unmatched["bounce_code"] == "5.1.1"
    acme = tenant_client(key)
    assert (await acme.get("/bounces")).json()["bounces"] == []
    refused = await acme.get("/bounces", params={"unmatched": True})
    assert refused.status_code == 403 and refused.json()["ok"] is False
