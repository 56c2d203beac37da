"""add-messages, the queue listing, events, delete and cleanup over HTTP."""

from __future__ import annotations

import time

import httpx
from tests.integration.api.conftest import MakeAccount, MakeTenant, TenantClient, message

from mail_proxy.domain.models import Sent
from mail_proxy.runtime import Runtime


async def _setup(make_tenant: MakeTenant, make_account: MakeAccount, tenant: str = "acme") -> str:
    key = await make_tenant(tenant)
    await make_account(tenant)
    return key


async def test_batch_queues_good_messages_and_lists_rejections(
    client: httpx.AsyncClient, make_tenant: MakeTenant, make_account: MakeAccount
) -> None:
    """One bad message never rejects its neighbours; each rejection names id and reason."""
    await _setup(make_tenant, make_account)
    batch = [
        message("m1", tenant_id="acme"),
        message("m2", tenant_id="acme", to="not an address"),
        message("m3", tenant_id="acme", subject="x\r\nBcc: evil@example.com"),
        "not an object",
        message("m5", tenant_id="acme", account_id="ghost"),
        message("m6", tenant_id="ghost"),
        message("m7", tenant_id="acme", priority="low", cc=["c@example.com"]),
    ]
    response = await client.post("/commands/add-messages", json={"messages": batch})
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True and body["queued"] == 2
    reasons = {(r["index"], r["id"]): r["reason"] for r in body["rejected"]}
    assert set(reasons) == {(1, "m2"), (2, "m3"), (3, None), (4, "m5"), (5, "m6")}
    assert reasons[(1, "m2")].startswith("invalid address in to")
    assert "header injection" in reasons[(2, "m3")]
    assert reasons[(4, "m5")] == "unknown account: ghost"
    assert reasons[(5, "m6")] == "unknown tenant: ghost"


async def test_tenant_token_fills_tenant_account_and_sender(
    client: httpx.AsyncClient,
    make_tenant: MakeTenant,
    make_account: MakeAccount,
    tenant_client: TenantClient,
) -> None:
    """With a tenant token, tenant_id, account_id and from are all optional."""
    key = await _setup(make_tenant, make_account)
    own = tenant_client(key)
    sent = await own.post(
        "/commands/add-messages",
        json={"messages": [message("m1", from_name="ACME", html=True)], "default_priority": 1},
    )
    assert sent.json() == {"ok": True, "queued": 1, "rejected": []}
    listed = (await own.get("/messages")).json()
    record = listed["messages"][0]
    assert (record["tenant_id"], record["account_id"], record["priority"]) == ("acme", "main", 1)
    assert record["payload"]["from"] == "ACME <acme@example.com>"
    assert record["payload"]["content_type"] == "html"
    assert record["message"] == record["payload"]
    assert record["status"] == "pending"


async def test_listing_fields_filters_and_secret_removal(
    client: httpx.AsyncClient, make_tenant: MakeTenant, make_account: MakeAccount, runtime: Runtime
) -> None:
    """Records carry smtp_ts and sent_ts, payload and message; attachment auth is hidden."""
    await _setup(make_tenant, make_account)
    attachment = {
        "filename": "doc.pdf",
        "storage_path": "doc-1",
        "auth": {"method": "bearer", "token": "attachment-secret"},
    }
    batch = [
        message("a", tenant_id="acme", attachments=[attachment], batch_code="b1"),
        message("b", tenant_id="acme"),
        message("c", tenant_id="acme", batch_code="b1"),
    ]
    await client.post("/commands/add-messages", json={"messages": batch})
    claimed = await runtime.store.queue.claim(
        now=time.time(), lease_seconds=60, limit=1, per_account=1
    )
    await runtime.store.queue.finish(
        claimed[0].record.pk, claimed[0].lease_token, Sent(ts=time.time())
    )

    everything = await client.get("/messages")
    assert everything.json()["total"] == 3
    assert "attachment-secret" not in everything.text
    sent = (await client.get("/messages", params={"status": "sent"})).json()["messages"]
    assert [m["id"] for m in sent] == ["a"]
    assert sent[0]["smtp_ts"] is not None and sent[0]["sent_ts"] == sent[0]["smtp_ts"]
    active = await client.get("/messages", params={"active_only": "true", "tenant_id": "acme"})
    assert [m["id"] for m in active.json()["messages"]] == ["b", "c"]
    batch_b1 = await client.get("/messages", params={"batch_code": "b1", "limit": 1, "offset": 1})
    assert batch_b1.json()["total"] == 2
    assert [m["id"] for m in batch_b1.json()["messages"]] == ["c"]

    events = await client.get("/messages/a/events", params={"tenant_id": "acme"})
    assert [e["type"] for e in events.json()["events"]] == ["sent"]
    missing = await client.get("/messages/zzz/events", params={"tenant_id": "acme"})
    assert missing.status_code == 404 and missing.json()["ok"] is False


async def test_resubmitting_replaces_unsent_and_refuses_sent(
    client: httpx.AsyncClient, make_tenant: MakeTenant, make_account: MakeAccount, runtime: Runtime
) -> None:
    """An unsent id is replaced; an id already sent is rejected with a reason."""
    await _setup(make_tenant, make_account)
    await client.post("/commands/add-messages", json={"messages": [message("m", tenant_id="acme")]})
    again = await client.post(
        "/commands/add-messages",
        json={"messages": [message("m", tenant_id="acme", subject="Second")]},
    )
    assert again.json()["queued"] == 1
    records = (await client.get("/messages")).json()["messages"]
    assert [r["payload"]["subject"] for r in records] == ["Second"]
    claimed = await runtime.store.queue.claim(
        now=time.time(), lease_seconds=60, limit=1, per_account=1
    )
    await runtime.store.queue.finish(
        claimed[0].record.pk, claimed[0].lease_token, Sent(ts=time.time())
    )
    third = await client.post(
        "/commands/add-messages", json={"messages": [message("m", tenant_id="acme")]}
    )
    assert third.json()["queued"] == 0
    assert third.json()["rejected"][0]["id"] == "m"


async def test_invalid_default_priority_is_a_field_error(client: httpx.AsyncClient) -> None:
    """A bad batch-level default_priority refuses the request and names the field."""
    response = await client.post(
        "/commands/add-messages", json={"messages": [], "default_priority": "urgent"}
    )
    assert response.status_code in (400, 422)
    assert "default_priority" in str(response.json()["fields"])


async def test_too_many_messages_is_413(
    app_limits: httpx.AsyncClient,
) -> None:
    """A batch above GMP_MAX_BATCH_MESSAGES is refused as a whole with a clear error."""
    response = await app_limits.post(
        "/commands/add-messages", json={"messages": [message(str(i)) for i in range(6)]}
    )
    assert response.status_code == 413
    error = "Too many messages in one request: 6 > 5"
    assert response.json() == {"ok": False, "error": error, "detail": error}


async def test_body_over_limit_is_413_by_length_and_by_stream(
    app_limits: httpx.AsyncClient,
) -> None:
    """Bodies above GMP_MAX_BODY_BYTES get 413, declared or streamed without a length."""
    big = b'{"messages": [], "pad": "' + b"x" * 5000 + b'"}'
    declared = await app_limits.post(
        "/commands/add-messages", content=big, headers={"Content-Type": "application/json"}
    )
    assert declared.status_code == 413 and declared.json()["ok"] is False

    async def chunks():  # type: ignore[no-untyped-def]
        for start in range(0, len(big), 1000):
            yield big[start : start + 1000]

    streamed = await app_limits.post(
        "/commands/add-messages", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    small = await app_limits.post("/commands/add-messages", json={"messages": []})
    assert small.status_code == 200


async def test_delete_messages_reports_each_id(
    client: httpx.AsyncClient,
    make_tenant: MakeTenant,
    make_account: MakeAccount,
    tenant_client: TenantClient,
) -> None:
    """delete-messages answers how many were removed (and which), not_found and ids
    owned by another tenant."""
    await _setup(make_tenant, make_account, "acme")
    other_key = await _setup(make_tenant, make_account, "other")
    await client.post(
        "/commands/add-messages",
        json={"messages": [message("a", tenant_id="acme"), message("o", tenant_id="other")]},
    )
    response = await tenant_client(other_key).post(
        "/commands/delete-messages", json={"ids": ["o", "a", "nope"]}
    )
    assert response.json() == {
        "ok": True, "removed": 1, "removed_ids": ["o"], "not_found": ["nope"],
        "unauthorized": ["a"],
    }  # fmt: skip
    assert (await client.get("/messages")).json()["total"] == 1
    admin_without_tenant = await client.post("/commands/delete-messages", json={"ids": ["a"]})
    assert admin_without_tenant.status_code == 400
    assert admin_without_tenant.json()["fields"][0]["field"] == "tenant_id"


async def test_cleanup_removes_only_reported_finished_messages(
    client: httpx.AsyncClient, make_tenant: MakeTenant, make_account: MakeAccount, runtime: Runtime
) -> None:
    """cleanup-messages removes finished, acknowledged messages older than the cut-off."""
    await _setup(make_tenant, make_account)
    await client.post(
        "/commands/add-messages",
        json={"messages": [message("done", tenant_id="acme"), message("wait", tenant_id="acme")]},
    )
    claimed = await runtime.store.queue.claim(
        now=time.time(), lease_seconds=60, limit=1, per_account=1
    )
    await runtime.store.queue.finish(
        claimed[0].record.pk, claimed[0].lease_token, Sent(ts=time.time() - 100)
    )
    events = await runtime.store.outbox.unreported("acme", 10)
    await runtime.store.outbox.ack([e.event_id for e in events], time.time())
    kept = await client.post("/commands/cleanup-messages", params={"tenant_id": "acme"})
    assert kept.json() == {"ok": True, "removed": 0}
    removed = await client.post(
        "/commands/cleanup-messages",
        params={"tenant_id": "acme"},
        json={"older_than_seconds": 10},
    )
    assert removed.json() == {"ok": True, "removed": 1}
    assert [m["id"] for m in (await client.get("/messages")).json()["messages"]] == ["wait"]
