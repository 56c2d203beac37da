"""health, status, metrics and the OpenAPI documents."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from tests.integration.api.conftest import ADMIN_TOKEN, MakeAccount, MakeTenant, message

from mail_proxy import __version__
from mail_proxy.api import create_app
from mail_proxy.runtime import Runtime
from mail_proxy.settings import Settings


async def test_health_needs_no_token(anonymous: httpx.AsyncClient) -> None:
    """Liveness answers without a token."""
    response = await anonymous.get("/health")
    assert response.status_code == 200 and response.json() == {"ok": True}


async def test_status_reports_scheduler_and_queue(
    client: httpx.AsyncClient, make_tenant: MakeTenant, make_account: MakeAccount
) -> None:
    """status: ok, active, pending count, uptime, version."""
    await make_tenant("acme")
    await make_account("acme")
    await client.post("/commands/add-messages", json={"messages": [message("1", tenant_id="acme")]})
    body = (await client.get("/status")).json()
    assert body == {"ok": True, "active": True, "pending": 1,
                    "scheduler_active": True, "pending_messages": 1,
                    "uptime_seconds": body["uptime_seconds"], "version": __version__,
                    "mailboxes": []}  # fmt: skip
    assert body["uptime_seconds"] >= 0


async def test_metrics_are_prometheus_text_with_fresh_gauges(
    anonymous: httpx.AsyncClient,
    client: httpx.AsyncClient,
    make_tenant: MakeTenant,
    make_account: MakeAccount,
) -> None:
    """/metrics needs no token by default and reflects the queue at scrape time."""
    await make_tenant("acme")
    await make_account("acme")
    batch = [message(str(i), tenant_id="acme") for i in range(3)]
    await client.post("/commands/add-messages", json={"messages": batch})
    response = await anonymous.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "gmp_pending_messages 3.0" in response.text
    assert "gmp_oldest_due_message_age_seconds" in response.text


async def test_metrics_can_require_the_admin_token(
    settings_factory: Callable[..., Settings], make_tenant: MakeTenant
) -> None:
    """With GMP_METRICS_REQUIRE_TOKEN only the admin token may scrape."""
    settings = settings_factory(api_token=ADMIN_TOKEN, test_mode=True, metrics_require_token=True)
    runtime = await Runtime.open(settings)
    try:
        transport = httpx.ASGITransport(create_app(settings, runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            assert (await http.get("/metrics")).status_code == 401
            admin = await http.get("/metrics", headers={"X-API-Token": ADMIN_TOKEN})
            assert admin.status_code == 200
            made = await http.post(
                "/tenant", json={"id": "acme"}, headers={"X-API-Token": ADMIN_TOKEN}
            )
            tenant_key = made.json()["api_key"]
            assert (
                await http.get("/metrics", headers={"X-API-Token": tenant_key})
            ).status_code == 403
    finally:
        await runtime.close()


async def test_openapi_documents_every_model_with_examples(anonymous: httpx.AsyncClient) -> None:
    """The OpenAPI document describes the message model and carries examples; docs render."""
    spec = (await anonymous.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    assert "from" in schemas["MessageIn"]["properties"]
    assert schemas["AddMessagesRequest"]["examples"]
    assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Token"
    paths = spec["paths"]
    for path in ("/commands/add-messages", "/messages", "/tenant", "/tenants/sync-status",
                 "/command-log/export", "/instance/reload-bounce", "/metrics"):  # fmt: skip
        assert path in paths
    error_refs = paths["/messages"]["get"]["responses"]["401"]["content"]["application/json"]
    assert error_refs["schema"]["$ref"].endswith("/ErrorResponse")
    assert (await anonymous.get("/docs")).status_code == 200
    assert (await anonymous.get("/redoc")).status_code == 200
