"""Every route of the API (as its OpenAPI document lists them) is reached by an SDK method.

The SDK's methods are called once each, through the sync client, and the requests
they make are recorded; a route the API gains without a method fails this test.
"""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from mail_proxy.client import MailProxyClient, NotFound
from mail_proxy.testing import RecordingSink, ServedProxy

pytestmark = pytest.mark.slow

# Routes for e-mail recipients, not for applications: a download link in a message
# is opened by the recipient's browser, never called through the SDK.
RECIPIENT_ROUTES = {("GET", "/files/{token}")}


def _routes(served: ServedProxy) -> set[tuple[str, str]]:
    paths = httpx.get(f"{served.url}/openapi.json").json()["paths"]
    return {(method.upper(), path) for path, item in paths.items() for method in item}


def _route_of(method: str, path: str, routes: set[tuple[str, str]]) -> tuple[str, str] | None:
    for route_method, template in routes:
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if route_method == method and re.match(pattern, path):
            return route_method, template
    return None


def _call_everything(proxy: MailProxyClient, smtp_port: int) -> None:
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    proxy.health(), proxy.status(), proxy.metrics(), proxy.stats()
    proxy.tenants.add(id=tenant), proxy.tenants.list(), proxy.tenants.get(tenant)
    proxy.tenants.update(tenant, name="N"), proxy.tenants.sync_status()
    proxy.tenants.rotate_api_key(tenant), proxy.tenants.revoke_api_key(tenant)
    proxy.tenants.rotate_signing_secret(tenant)
    account = {"host": "127.0.0.1", "port": smtp_port, "is_default": True, "default_from": "a@b.c"}
    proxy.accounts.add(id="a", tenant_id=tenant, **account)
    proxy.messages.add([{"id": "m", "to": "a@example.com", "subject": "S"}], tenant)
    proxy.messages.list(tenant), proxy.messages.events("m", tenant)
    proxy.messages.get("m", tenant), proxy.messages.delete(["m"], tenant)
    proxy.messages.cleanup(tenant)
    proxy.accounts.list(tenant), proxy.accounts.delete("a", tenant)
    proxy.run_now(), proxy.suspend(tenant), proxy.activate(tenant)
    proxy.instance.get(), proxy.instance.update(name="x"), proxy.instance.reload_bounce()
    proxy.command_log.list(), proxy.command_log.export()
    proxy.bounces.list(tenant), proxy.bounces.suppress("gone@example.com", tenant)
    proxy.bounces.suppressions(tenant), proxy.bounces.export_suppressions(tenant)
    proxy.bounces.unsuppress("gone@example.com", tenant)
    proxy.tenants.delete(tenant)
    with pytest.raises(NotFound):
        proxy.tenants.get(tenant)


def test_every_route_has_an_sdk_method(served: ServedProxy, sink: RecordingSink) -> None:
    routes = _routes(served)
    reached: set[tuple[str, str] | None] = set()
    with MailProxyClient(served.url, served.token) as proxy:
        # httpx's own request hook, on the client's private httpx client: test-only access
        proxy._http.event_hooks["request"].append(
            lambda request: reached.add(_route_of(request.method, request.url.path, routes))
        )
        _call_everything(proxy, sink.port)
    assert None not in reached, "the SDK called a path the API does not have"
    assert routes - RECIPIENT_ROUTES - reached == set()
