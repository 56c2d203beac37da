"""Fixtures for the dashboard's page tests: an app over a runtime (workers not
started) on SQLite and on PostgreSQL, and browsers-by-httpx that log in.

``ui(token)`` is a client holding a session opened with ``token``; ``csrf(html)``
reads a page's CSRF token; ``tenant_key(id)`` creates a tenant through the API and
returns its key.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI

from mail_proxy.api import create_app
from mail_proxy.runtime import Runtime
from mail_proxy.settings import Settings

ADMIN = "admin-token-for-ui-tests"
BASE = "http://proxy.test"
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')

UiClient = Callable[[str], Awaitable[httpx.AsyncClient]]
TenantKey = Callable[[str], Awaitable[str]]


@pytest.fixture
async def runtime(db_settings: Settings) -> AsyncIterator[Runtime]:
    settings = db_settings.model_copy(
        update={"api_token": ADMIN, "test_mode": True, "allow_private_targets": True}
    )
    opened = await Runtime.open(settings)
    yield opened
    await opened.close()


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    return create_app(runtime.settings, runtime)


def client_of(app: FastAPI, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=BASE, headers=headers)


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The JSON API with the admin token (to set data up as an application would)."""
    async with client_of(app, **{"X-API-Token": ADMIN}) as admin:
        yield admin


@pytest.fixture
async def ui(app: FastAPI) -> AsyncIterator[UiClient]:
    made: list[httpx.AsyncClient] = []

    async def login(token: str) -> httpx.AsyncClient:
        browser = client_of(app, Accept="text/html")
        made.append(browser)
        answer = await browser.post("/ui/login", data={"token": token, "next": "/ui"})
        assert answer.status_code == 303, answer.text
        return browser

    yield login
    for browser in made:
        await browser.aclose()


@pytest.fixture
def tenant_key(api: httpx.AsyncClient) -> TenantKey:
    async def make(tenant_id: str) -> str:
        answer = await api.post("/tenant", json={"id": tenant_id, "name": f"{tenant_id} Ltd"})
        assert answer.status_code == 200, answer.text
        key: str = answer.json()["api_key"]
        return key

    return make


def csrf(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)
