"""End to end: a real ``mail-proxy serve``, a real SMTP sink and the example client.

The proxy runs as a subprocess exactly as an operator starts it; the example client
runs in this process under uvicorn on a real port, so the proxy's signed sync calls
reach it over HTTP. The tenant's signing secret is given to the client, so every
report also proves the signature scheme end to end.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import uvicorn

from mail_proxy.testing import RecordingSink, ServedProxy

pytestmark = pytest.mark.slow
SYNC = "/email/mailproxy/mp_endpoint/proxy_sync"


async def eventually(check: Any, timeout: float = 15.0) -> None:
    """Await ``check()`` (sync or async) until truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.fixture
def sink() -> Iterator[RecordingSink]:
    """A real SMTP server that records arrivals."""
    with RecordingSink() as recording:
        yield recording


@pytest.fixture
async def served_proxy(tmp_path: Path) -> AsyncIterator[ServedProxy]:
    """``mail-proxy serve`` in a subprocess (started off the event loop)."""
    proxy = ServedProxy(tmp_path / "proxy.db", log_path=tmp_path / "proxy.log")
    await asyncio.to_thread(proxy.start)
    yield proxy
    await asyncio.to_thread(proxy.stop)


@pytest.fixture
async def example_client(
    ec: ModuleType, make_config: Any, served_proxy: ServedProxy, sink: RecordingSink
) -> AsyncIterator[httpx.AsyncClient]:
    """The example client on a real port, registered as the tenant's sync endpoint."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    client_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    async with httpx.AsyncClient(
        base_url=served_proxy.url, headers={"X-API-Token": served_proxy.token}
    ) as admin:
        created = await admin.post(
            "/tenant",
            json={
                "id": "example",
                "client_base_url": client_url,
                "client_sync_path": SYNC,
            },
        )
        assert created.status_code == 200, created.text
        answer = created.json()
        account = await admin.post(
            "/account",
            json={
                "id": "sink",
                "tenant_id": "example",
                "host": "127.0.0.1",
                "port": sink.port,
                "use_tls": False,
            },
        )
        assert account.status_code == 200, account.text
    config = replace(
        make_config(served_proxy.url),
        api_token=answer["api_key"],
        account_id="sink",
        signing_secret=answer["tenant"]["signing_secret"],
        poll_interval=0.2,
    )
    server = uvicorn.Server(uvicorn.Config(ec.create_app(config), log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await eventually(lambda: server.started)
    async with httpx.AsyncClient(base_url=client_url) as http:
        yield http
    server.should_exit = True
    await task


async def stats(http: httpx.AsyncClient) -> dict[str, int]:
    result: dict[str, int] = (await http.get("/stats")).json()["statistics"]
    return result


async def test_five_messages_are_delivered_and_reported(
    example_client: httpx.AsyncClient, sink: RecordingSink
) -> None:
    """send-test-email?count=5 → five mails at the sink → /stats shows delivered: 5."""
    response = await example_client.post("/send-test-email", params={"count": 5})
    assert response.json()["status"] == "success"
    ids = set(response.json()["messages"])
    await eventually(lambda: sink.count() >= 5)
    assert {arrival.mail_id for arrival in sink.arrivals} == ids
    await eventually(lambda: _delivered(example_client, 5))
    assert (await stats(example_client))["pending"] == 0


async def _delivered(http: httpx.AsyncClient, n: int) -> bool:
    return (await stats(http))["delivered"] == n


async def test_message_written_while_proxy_is_down_is_delivered_after_restart(
    example_client: httpx.AsyncClient, served_proxy: ServedProxy, sink: RecordingSink
) -> None:
    """Proxy stopped: the message waits as pending; proxy started: it arrives, delivered."""
    await asyncio.to_thread(served_proxy.stop)
    response = await example_client.post("/send-test-email")
    assert response.json()["status"] == "queued_locally"
    [message_id] = response.json()["messages"]
    listing = (await example_client.get("/messages")).json()["messages"]
    assert [(m["id"], m["status"]) for m in listing] == [(message_id, "pending")]
    await asyncio.to_thread(served_proxy.start)
    await eventually(lambda: sink.count() >= 1)
    assert sink.arrivals[0].mail_id == message_id
    await eventually(lambda: _delivered(example_client, 1))
