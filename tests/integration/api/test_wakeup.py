"""The API wakes the workers: add-messages, run-now and activate lead to delivery.

The dispatcher sleeps until woken: in test mode only run-now (and activate) start
a pass; outside it the loop interval is set to an hour. Either way a message
reaching the SMTP sink proves that the call woke it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from tests.integration.api.conftest import ADMIN_TOKEN, message

from mail_proxy.api import create_app
from mail_proxy.domain.models import NewMessage
from mail_proxy.runtime import Runtime
from mail_proxy.settings import Settings
from mail_proxy.testing import RecordingSink


@pytest.fixture
def sink() -> Iterator[RecordingSink]:
    with RecordingSink() as running:
        yield running


@pytest.fixture(params=[True], ids=["test_mode"])
async def live(
    request: pytest.FixtureRequest, settings_factory: Callable[..., Settings], sink: RecordingSink
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    """An admin client of a runtime whose workers run, with acme's account on the sink."""
    settings = settings_factory(
        api_token=ADMIN_TOKEN,
        test_mode=request.param,
        send_loop_interval=3600,
        shutdown_grace_seconds=1,
    )
    runtime = await Runtime.open(settings)
    runtime.start_workers()
    transport = httpx.ASGITransport(create_app(settings, runtime))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers={"X-API-Token": ADMIN_TOKEN}
    ) as http:
        await http.post("/tenant", json={"id": "acme"})
        account = {"id": "sink", "tenant_id": "acme", "host": "127.0.0.1", "port": sink.port}
        await http.post("/account", json=account | {"use_tls": False, "default_from": "a@b.com"})
        yield http, runtime
    await runtime.close()


async def _arrived(sink: RecordingSink, count: int) -> bool:
    # Generous: a passing test returns as soon as the mail arrives.
    return await asyncio.to_thread(sink.wait_for, count, 20.0)


@pytest.mark.parametrize("live", [False], ids=["serving"], indirect=True)
async def test_add_messages_wakes_the_dispatcher(
    live: tuple[httpx.AsyncClient, Runtime], sink: RecordingSink
) -> None:
    """Outside test mode, a message handed over while the dispatcher sleeps (for an
    hour) is sent without run-now."""
    http, _ = live
    await http.post("/commands/add-messages", json={"messages": [message("1", tenant_id="acme")]})
    assert await _arrived(sink, 1)
    assert sink.arrivals[0].mail_id == "1"


async def test_run_now_wakes_the_dispatcher(
    live: tuple[httpx.AsyncClient, Runtime], sink: RecordingSink
) -> None:
    """A message queued behind the API's back is sent when run-now is called."""
    http, runtime = live
    queued = NewMessage("acme", "2", "sink", 2, {"id": "2", "from": "a@b.com",
                        "to": ["x@example.com"], "subject": "s", "body": "b"})  # fmt: skip
    await runtime.store.intake.enqueue([queued], time.time())
    assert (await http.post("/commands/run-now")).status_code == 200
    assert await _arrived(sink, 1)


@pytest.mark.parametrize("live", [False], ids=["serving"], indirect=True)
async def test_instance_suspend_holds_and_activate_releases(
    live: tuple[httpx.AsyncClient, Runtime], sink: RecordingSink
) -> None:
    """With the instance suspended nothing is claimed; activating sends the backlog
    at once (the loop interval is an hour: only the activation can have woken it)."""
    http, _ = live
    await http.post("/commands/suspend")
    await http.post("/commands/add-messages", json={"messages": [message("3", tenant_id="acme")]})
    await http.post("/commands/run-now")
    assert not await asyncio.to_thread(sink.wait_for, 1, 0.3)
    pending = (await http.get("/messages", params={"status": "pending"})).json()
    assert [m["id"] for m in pending["messages"]] == ["3"]
    await http.post("/commands/activate")
    assert await _arrived(sink, 1)


async def test_add_messages_in_test_mode_waits_for_run_now(
    live: tuple[httpx.AsyncClient, Runtime], sink: RecordingSink
) -> None:
    """Test mode (the seed's "requires manual run-now"): add-messages queues, and only
    run-now sends."""
    http, _ = live
    answer = await http.post(
        "/commands/add-messages", json={"messages": [message("4", tenant_id="acme")]}
    )
    assert answer.json()["queued"] == 1
    pending = (await http.get("/messages", params={"status": "pending"})).json()
    assert [m["id"] for m in pending["messages"]] == ["4"]
    assert sink.count() == 0
    await http.post("/commands/run-now")
    assert await _arrived(sink, 1)


async def test_activate_in_test_mode_waits_for_run_now(
    live: tuple[httpx.AsyncClient, Runtime], sink: RecordingSink
) -> None:
    """Test mode: activating the instance releases the hold, run-now sends."""
    http, runtime = live
    await http.post("/commands/suspend")
    await http.post("/commands/add-messages", json={"messages": [message("5", tenant_id="acme")]})
    await http.post("/commands/activate")
    assert runtime.dispatcher.active is True
    assert sink.count() == 0
    await http.post("/commands/run-now")
    assert await _arrived(sink, 1)
