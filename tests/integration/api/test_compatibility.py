"""An application written against the reference (genro-mail-proxy 0.6.5) works here.

Two replays against the real app and store:

- every endpoint of the reference's API reference (and the ones its usage,
  multi-tenancy and monitoring pages name), called with the documented request;
  the documented response fields must be there (our extra fields are allowed);
- every call of the reference's Python client (``MailProxyClient`` with
  ``messages``, ``accounts`` and ``tenants``) as the HTTP request it makes, and the
  answer read the way that client reads it.

Deliberate differences are in docs/compatibility.md; where one changes a documented
answer, the test says so next to the check.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from tests.integration.api.conftest import TenantClient

from mail_proxy.domain.models import Deferred, Failed, Outcome, Sent
from mail_proxy.runtime import Runtime

Json = dict[str, Any]

DOCUMENTED_TENANT = {
    "id": "tenant-acme",
    "name": "ACME Corporation",
    "client_base_url": "https://api.acme.com",
    "client_sync_path": "/mail-proxy/sync",
    "client_attachment_path": "/mail-proxy/attachments",
    "client_auth": {"method": "bearer", "token": "secret-token"},
    "rate_limits": {"hourly": 1000, "daily": 10000},
    "large_file_config": {
        "enabled": True,
        "max_size_mb": 10,
        "storage_url": "s3://bucket/mail-attachments",
        "file_ttl_days": 30,
        "action": "rewrite",
    },
    "active": True,
}
DOCUMENTED_ACCOUNT = {
    "id": "gmail", "host": "smtp.gmail.com", "port": 587, "user": "you@gmail.com",
    "password": "***", "use_tls": False,
    "limit_per_minute": 30, "limit_per_hour": 500, "limit_per_day": 1000,
}  # fmt: skip
DOCUMENTED_MESSAGE = {
    "id": "MSG-001",
    "from": "sender@example.com",
    "to": ["dest@example.com"],
    "subject": "Hi",
    "body": "Hello world",
}


def has_fields(answer: httpx.Response, *fields: str) -> Json:
    """The answer is 200 JSON with ``ok`` true and every documented field."""
    assert answer.status_code == 200, answer.text
    body: Json = answer.json()
    assert body.get("ok") is True, body
    missing = [name for name in fields if name not in body]
    assert not missing, f"documented fields missing: {missing}"
    return body


@pytest.fixture
async def acme(client: httpx.AsyncClient, tenant_client: TenantClient) -> httpx.AsyncClient:
    """The documented tenant and account, created as documented; acme's own client."""
    created = await client.post("/tenant", json=DOCUMENTED_TENANT)
    has_fields(created)
    account = DOCUMENTED_ACCOUNT | {"tenant_id": "tenant-acme"}
    has_fields(await client.post("/account", json=account))
    return tenant_client(created.json()["api_key"])


async def test_core_endpoints_as_documented(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, acme: httpx.AsyncClient
) -> None:
    has_fields(await anonymous.get("/health"))
    status = has_fields(
        await client.get("/status"), "scheduler_active", "pending_messages", "uptime_seconds"
    )
    assert status["scheduler_active"] is True
    has_fields(await client.post("/commands/run-now"))
    has_fields(await acme.post("/commands/run-now"))
    added = has_fields(
        await acme.post("/commands/add-messages", json={"messages": [DOCUMENTED_MESSAGE]}),
        "queued",
        "rejected",
    )
    assert added["queued"] == 1 and added["rejected"] == []
    mixed = {"messages": [DOCUMENTED_MESSAGE | {"id": "MSG-002"}, {"id": "MSG-003"}]}
    rejected = has_fields(await acme.post("/commands/add-messages", json=mixed), "rejected")
    assert rejected["rejected"][0]["id"] == "MSG-003" and rejected["rejected"][0]["reason"]
    records = has_fields(await client.get("/messages"), "messages")["messages"]
    for field in ("pk", "id", "tenant_id", "tenant_name", "account_id", "priority", "payload",
                  "deferred_ts", "smtp_ts", "error_ts", "error"):  # fmt: skip
        assert field in records[0], field
    assert records[0]["tenant_name"] == "ACME Corporation"
    assert records[0]["payload"]["subject"] == "Hi"
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    for name in ("gmp_sent_total", "gmp_errors_total", "gmp_deferred_total",
                 "gmp_rate_limited_total", "gmp_pending_messages"):  # fmt: skip
        assert name in metrics.text, name


async def test_scheduler_toggle_as_documented(client: httpx.AsyncClient) -> None:
    """suspend/activate without a tenant toggle the scheduler; status shows it."""
    suspended = has_fields(await client.post("/commands/suspend"), "active")
    assert suspended["active"] is False
    assert (await client.get("/status")).json()["scheduler_active"] is False
    assert has_fields(await client.post("/commands/activate"), "active")["active"] is True


async def test_tenant_suspend_answer_as_documented(acme: httpx.AsyncClient) -> None:
    """The reference's suspend answer: tenant_id, batch_code, suspended_batches,
    pending_messages."""
    await acme.post("/commands/add-messages", json={"messages": [DOCUMENTED_MESSAGE]})
    fields = ("tenant_id", "batch_code", "suspended_batches", "pending_messages")
    held = has_fields(await acme.post("/commands/suspend", params={"batch_code": "b1"}), *fields)
    assert held["batch_code"] == "b1" and held["pending_messages"] == 0
    whole = has_fields(await acme.post("/commands/suspend"), *fields)
    assert whole["pending_messages"] == 1 and whole["suspended_batches"] == ["*", "b1"]
    has_fields(await acme.post("/commands/activate"), *fields)


async def test_account_endpoints_as_documented(
    client: httpx.AsyncClient, acme: httpx.AsyncClient
) -> None:
    accounts = has_fields(await client.get("/accounts"), "accounts")["accounts"]
    assert [a["id"] for a in accounts] == ["gmail"]
    for field in ("id", "tenant_id", "host", "port", "user", "ttl", "limit_per_minute",
                  "limit_per_hour", "limit_per_day", "limit_behavior", "use_tls",
                  "batch_size"):  # fmt: skip
        assert field in accounts[0], field
    assert "password" not in accounts[0]
    has_fields(await acme.delete("/account/gmail"))


async def test_tenant_endpoints_as_documented(
    client: httpx.AsyncClient, acme: httpx.AsyncClient
) -> None:
    listed = has_fields(await client.get("/tenants", params={"active_only": True}), "tenants")
    for field in ("id", "name", "client_base_url", "active", "created_at"):
        assert field in listed["tenants"][0], field
    sync = has_fields(await client.get("/tenants/sync-status"), "sync_interval_seconds", "tenants")
    entry = sync["tenants"][0]
    for field in ("id", "name", "active", "client_base_url", "last_sync_ts", "next_sync_due",
                  "in_dnd"):  # fmt: skip
        assert field in entry, field
    assert isinstance(entry["next_sync_due"], bool) and isinstance(entry["in_dnd"], bool)
    one = has_fields(await acme.get("/tenant/tenant-acme"), "id", "name", "client_base_url")
    assert one["name"] == "ACME Corporation" and one["rate_limits"] == {
        "per_hour": 1000, "per_day": 10000}  # fmt: skip
    assert "secret-token" not in str(one)
    has_fields(await client.put("/tenant/tenant-acme", json={"name": "ACME"}))
    assert (await client.get("/tenant/nobody")).status_code == 404
    has_fields(await client.post("/tenant/tenant-acme/api-key"), "api_key")
    has_fields(await client.delete("/tenant/tenant-acme/api-key"))
    has_fields(await client.delete("/tenant/tenant-acme"))


async def test_additional_commands_as_documented(
    client: httpx.AsyncClient, acme: httpx.AsyncClient
) -> None:
    messages = [DOCUMENTED_MESSAGE | {"id": i} for i in ("MSG-001", "MSG-002")]
    await acme.post("/commands/add-messages", json={"messages": messages})
    params = {"tenant_id": "tenant-acme"}
    removed = has_fields(
        await client.post("/commands/delete-messages", params=params,
                          json={"ids": ["MSG-001", "MSG-002"]}),
        "removed", "not_found", "unauthorized",
    )  # fmt: skip
    assert removed["removed"] == 2 and removed["not_found"] == removed["unauthorized"] == []
    for body in ({"older_than_seconds": 86400}, {}):
        cleaned = await client.post("/commands/cleanup-messages", params=params, json=body)
        assert has_fields(cleaned, "removed")["removed"] == 0


async def test_instance_and_audit_endpoints_as_documented(
    client: httpx.AsyncClient, acme: httpx.AsyncClient
) -> None:
    has_fields(await client.put("/instance", json={"name": "eu-1", "bounce_enabled": False}))
    instance = has_fields(
        await client.get("/instance"), "name", "bounce_enabled", "bounce_imap_host",
        "bounce_imap_port", "bounce_imap_user", "bounce_imap_folder", "bounce_imap_ssl",
        "bounce_poll_interval",
    )  # fmt: skip
    assert instance["name"] == "eu-1"
    has_fields(await client.post("/instance/reload-bounce"))
    has_fields(await client.get("/command-log"))
    assert (await client.get("/command-log/export")).status_code == 200
    await acme.post("/commands/add-messages", json={"messages": [DOCUMENTED_MESSAGE]})
    history = has_fields(
        await acme.get("/messages/MSG-001/events"), "events"
    )  # protocol.md: the message's event history
    assert history["events"] == []


# -- the reference Python client, call by call ---------------------------------------


class ReplayedClient:
    """The HTTP requests ``MailProxyClient`` makes, and how it reads the answers."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def get(self, path: str, params: Json | None = None) -> Any:
        answer = await self.http.get(path, params=params)
        answer.raise_for_status()
        return answer.json()

    async def post(self, path: str, body: Json | None = None) -> Any:
        answer = await self.http.post(path, json=body or {})
        answer.raise_for_status()
        return answer.json()

    async def delete(self, path: str) -> Any:
        answer = await self.http.delete(path)
        answer.raise_for_status()
        return answer.json()

    async def messages_list(self, limit: int = 100, active_only: bool = False) -> list[Json]:
        params: Json = {"limit": limit} | ({"active_only": "true"} if active_only else {})
        data = await self.get("/messages", params)
        return [self.as_message(m) for m in data.get("messages", [])]

    @staticmethod
    def as_message(data: Json) -> Json:
        """The reference derives the state from the timestamps, in this order."""
        status = "pending"
        if data.get("sent_ts"):
            status = "sent"
        elif data.get("error_ts"):
            status = "error"
        elif data.get("deferred_ts"):
            status = "deferred"
        payload = data.get("message", {})
        return {"id": data["id"], "status": status, "subject": payload.get("subject", ""),
                "to": payload.get("to", []), "account_id": data.get("account_id")}  # fmt: skip

    async def messages_with(self, status: str) -> list[Json]:
        return [m for m in await self.messages_list() if m["status"] == status]


async def test_reference_client_surface(
    client: httpx.AsyncClient, tenant_client: TenantClient, runtime: Runtime
) -> None:
    """Each documented client call, replayed: status, health, run_now, suspend,
    activate, stats, messages.*, accounts.*, tenants.*."""
    admin = ReplayedClient(client)
    created = await admin.post("/tenant", {"id": "acme", "name": "ACME"})  # tenants.add
    assert created["ok"] is True
    tenant = ReplayedClient(tenant_client(created["api_key"]))
    added = await tenant.post("/account", {"id": "main", "host": "127.0.0.1", "port": 2525,
                                           "use_tls": False, "is_default": True,
                                           "default_from": "a@acme.example"})  # fmt: skip
    assert added["ok"] is True  # accounts.add
    assert [t["id"] for t in (await admin.get("/tenants"))["tenants"]] == ["acme"]  # tenants.list
    got = await admin.get("/tenant/acme")  # tenants.get reads the fields at top level
    assert got["id"] == "acme" and got["name"] == "ACME" and got["active"] is True
    accounts = (await tenant.get("/accounts"))["accounts"]  # accounts.list / accounts.get
    assert [(a["id"], a["host"], a["port"], a["use_tls"]) for a in accounts] == [
        ("main", "127.0.0.1", 2525, False)]  # fmt: skip

    batch = [{"id": f"m{i}", "to": ["x@y.example"], "subject": f"s{i}"} for i in range(4)]
    assert (await tenant.post("/commands/add-messages", {"messages": batch}))["queued"] == 4
    await _finish(runtime, {"m0": "sent", "m1": "error", "m2": "deferred"})
    states = {m["id"]: m["status"] for m in await tenant.messages_list()}  # messages.list
    assert states == {"m0": "sent", "m1": "error", "m2": "deferred", "m3": "pending"}
    assert [m["id"] for m in await tenant.messages_with("pending")] == ["m3"]  # .pending
    assert [m["id"] for m in await tenant.messages_with("sent")] == ["m0"]  # .sent
    assert [m["id"] for m in await tenant.messages_with("error")] == ["m1"]  # .errors
    found = [m for m in await tenant.messages_list() if m["id"] == "m3"]  # messages.get
    assert found[0]["subject"] == "s3" and found[0]["to"] == ["x@y.example"]
    active = await tenant.messages_list(active_only=True)
    assert {m["id"] for m in active} == {"m2", "m3"}

    assert (await tenant.post("/commands/delete-messages", {"ids": ["m3"]}))["removed"] == 1
    cleanup = await admin.http.post(  # messages.cleanup(tenant_id, older_than_seconds)
        "/commands/cleanup-messages", params={"tenant_id": "acme"}, json={"older_than_seconds": 0}
    )
    assert cleanup.json()["ok"] is True

    status = await admin.get("/status")  # status / health
    assert status["ok"] is True and status["active"] is True
    assert (await admin.post("/commands/run-now"))["ok"] is True  # run_now
    assert (await admin.post("/commands/suspend"))["ok"] is True  # suspend
    assert (await admin.get("/status"))["active"] is False
    assert (await admin.post("/commands/activate"))["ok"] is True  # activate
    listed = await admin.messages_list()  # stats: counts derived from the listing
    stats = {"total": len(listed), "accounts": len((await admin.get("/accounts"))["accounts"])}
    assert stats == {"total": 3, "accounts": 1}

    assert (await tenant.delete("/account/main"))["ok"] is True  # accounts.delete
    assert (await admin.delete("/tenant/acme"))["ok"] is True  # tenants.delete


async def _finish(runtime: Runtime, wanted: dict[str, str]) -> None:
    """Record outcomes for some queued messages, as the dispatcher would."""
    now = time.time()
    claimed = await runtime.store.queue.claim(now=now, lease_seconds=60, limit=10, per_account=10)
    for lease in claimed:
        kind = wanted.get(lease.record.id)
        outcome: Outcome | None = {
            "sent": Sent(ts=now),
            "error": Failed(ts=now, error="550 no"),
            "deferred": Deferred(until=now + 3600, reason="451 later", ts=now),
        }.get(kind or "")
        if outcome is None:
            await runtime.store.queue.release([(lease.record.pk, lease.lease_token)])
        else:
            await runtime.store.queue.finish(lease.record.pk, lease.lease_token, outcome)
