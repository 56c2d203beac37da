"""Fixtures for API tests: a runtime with workers not started, and clients over ASGI.

``client`` carries the admin token; ``tenant_client(api_key)`` builds one acting
as a tenant. ``make_tenant`` / ``make_account`` create data through the API itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mail_proxy.api import create_app
from mail_proxy.runtime import Runtime
from mail_proxy.settings import Settings

ADMIN_TOKEN = "admin-token-for-tests"

MakeTenant = Callable[..., Awaitable[str]]
MakeAccount = Callable[..., Awaitable[dict[str, Any]]]
TenantClient = Callable[[str], httpx.AsyncClient]


@pytest.fixture
def api_settings(settings_factory: Callable[..., Settings]) -> Settings:
    """Tenant keys may point at loopback here (test servers live there); the
    target policy itself is tested with its own settings in test_targets.py."""
    return settings_factory(api_token=ADMIN_TOKEN, test_mode=True, allow_private_targets=True)


@pytest.fixture
async def runtime(api_settings: Settings) -> AsyncIterator[Runtime]:
    opened = await Runtime.open(api_settings)
    yield opened
    await opened.close()


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    return create_app(runtime.settings, runtime)


def _client(app: FastAPI, token: str | None) -> httpx.AsyncClient:
    headers = {"X-API-Token": token} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://proxy.test", headers=headers
    )


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client holding the admin token."""
    async with _client(app, ADMIN_TOKEN) as admin:
        yield admin


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client without any token."""
    async with _client(app, None) as plain:
        yield plain


@pytest.fixture
async def tenant_client(app: FastAPI) -> AsyncIterator[TenantClient]:
    """Factory of clients holding a tenant's API key (closed after the test)."""
    made: list[httpx.AsyncClient] = []

    def make(api_key: str) -> httpx.AsyncClient:
        made.append(_client(app, api_key))
        return made[-1]

    yield make
    for opened in made:
        await opened.aclose()


@pytest.fixture
def make_tenant(client: httpx.AsyncClient) -> MakeTenant:
    """Create a tenant through the API; returns its API key."""

    async def make(tenant_id: str, **fields: Any) -> str:
        response = await client.post("/tenant", json={"id": tenant_id, **fields})
        assert response.status_code == 200, response.text
        key: str = response.json()["api_key"]
        return key

    return make


@pytest.fixture
def make_account(client: httpx.AsyncClient) -> MakeAccount:
    """Create an SMTP account through the API; returns the account as answered."""

    async def make(tenant_id: str, account_id: str = "main", **fields: Any) -> dict[str, Any]:
        body = {
            "id": account_id,
            "tenant_id": tenant_id,
            "host": "smtp.example.com",
            "default_from": f"{tenant_id}@example.com",
            **fields,
        }
        response = await client.post("/account", json=body)
        assert response.status_code == 200, response.text
        account: dict[str, Any] = response.json()["account"]
        return account

    return make


def message(message_id: str, **fields: Any) -> dict[str, Any]:
    """A valid message for a tenant with a default account."""
    return {"id": message_id, "to": "ann@example.com", "subject": "Hi", "body": "Hello"} | fields


@asynccontextmanager
async def admin_client_of(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client of an app of its own (workers not started) with ``settings``."""
    opened = await Runtime.open(settings)
    try:
        async with _client(create_app(settings, opened), ADMIN_TOKEN) as admin:
            yield admin
    finally:
        await opened.close()


@pytest.fixture
async def app_limits(settings_factory: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client of an app with tiny limits: 4 KiB bodies, 5 messages a batch."""
    settings = settings_factory(
        api_token=ADMIN_TOKEN, test_mode=True, max_body_bytes=4096, max_batch_messages=5
    )
    async with admin_client_of(settings) as limited:
        yield limited
