"""Dispatcher hardening against real SMTP servers and a real store: lanes hold a
message once, tenants share the global slots, poison replies do not stall
outcomes, instance suspension is shared state, tenant rate limits, retry delays
from the environment."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import structlog.testing

from mail_proxy.domain.text import is_storable
from mail_proxy.settings import Settings
from mail_proxy.storage import open_store

from .conftest import Queue, Running, Script, ServerFactory, account_for

Start = Callable[..., Awaitable[Running]]
SettingsFactory = Callable[..., Settings]


def fast(settings_factory: SettingsFactory, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "send_loop_interval": 0.05,
        "retry_delays": [60, 60],
        "smtp_timeout": 5.0,
        "shutdown_grace_seconds": 0.5,
    }
    return settings_factory(**(values | overrides))


async def _until(condition: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.02)


async def test_a_message_claimed_again_is_in_its_lane_once(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """The same message claimed twice (its lease ran out while it waited in the lane,
    and a later claim took it again) is kept in its lane once, under the newer
    lease: it goes out once and its outcome is committed, no claim round fails."""
    server = await smtp_server()
    await queue.setup(account_for(server))
    await queue.add("m1")
    await queue.add("m2")
    settings = fast(settings_factory, test_mode=True)
    now = time.time()
    claims = {"limit": 10, "per_account": 10, "lease_seconds": settings.lease_seconds}
    first = await queue.store.queue.claim(now=now, **claims)
    again = await queue.store.queue.claim(now=now + settings.lease_seconds + 1, **claims)
    assert [c.record.pk for c in first] == [c.record.pk for c in again]
    with structlog.testing.capture_logs() as logs:
        run = await start_dispatcher(queue.store, settings)
        # What the claim loop does with each claim it gets (the dispatcher's own step).
        assert run.dispatcher._accept(first + again) == 4
        for message_id in ("m1", "m2"):
            await queue.wait_status(message_id, "sent")
    assert sorted(r.mail_id for r in server.received) == ["m1", "m2"]
    assert not [e for e in logs if e["event"] in ("dispatch_round_failed", "delivery_crashed")]


async def test_a_tenant_at_a_slow_server_leaves_slots_for_the_others(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """Tenant ``slow`` has four accounts at a server that never answers DATA and more
    messages than there are global slots. Tenant ``t1``'s one message still goes out
    while the slow sends hang, and no more than the tenant bound of them hang."""
    stalled = await smtp_server(Script(stall=True))
    healthy = await smtp_server()
    slow_accounts = [account_for(stalled, f"s{i}", tenant_id="slow") for i in range(4)]
    await queue.setup(*slow_accounts, account_for(healthy))
    for account in slow_accounts:
        for i in range(6):
            await queue.add(f"{account.id}-{i}", account_id=account.id, tenant="slow")
    settings = fast(
        settings_factory,
        max_concurrent_sends=8,
        max_concurrent_per_tenant=4,
        smtp_timeout=30,
    )
    await start_dispatcher(queue.store, settings)

    async def slow_ones_hang() -> bool:
        return stalled.in_data >= 4

    await _until(slow_ones_hang)
    await queue.add("other-tenant")
    await healthy.wait_for(1, timeout=10)
    assert stalled.in_data == 4  # still hanging, and never more than the tenant bound
    assert healthy.received[0].mail_id == "other-tenant"


async def test_poison_replies_are_committed_and_other_tenants_are_served(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """A server answers ``451 4.7.1 try later`` plus raw 0xFF 0xFE to 50 messages:
    every outcome is committed as deferred with a readable reason, none is tried
    again before its retry time, and another tenant's message goes out."""
    poison = await smtp_server(Script(data_reply=b"451 4.7.1 try later \xff\xfe"))
    healthy = await smtp_server()
    await queue.setup(account_for(poison), account_for(healthy, "ok", tenant_id="t2"))
    ids = [f"p{i}" for i in range(50)]
    for message_id in ids:
        await queue.add(message_id)
    started = time.time()
    await start_dispatcher(queue.store, fast(settings_factory))
    records = [await queue.wait_status(m, "deferred", timeout=20) for m in ids]
    for record in records:
        assert record.error == "451 4.7.1 try later \ufffd\ufffd" and is_storable(record.error)
        assert record.attempts == 1 and record.deferred_ts >= int(started) + 60
    await queue.add("fine", account_id="ok", tenant="t2")
    await queue.wait_status("fine", "sent", tenant="t2")
    assert poison.data_commands == 50  # nothing went again before its retry time
    assert [r.mail_id for r in healthy.received] == ["fine"]


async def test_instance_suspension_is_shared_and_survives_a_restart(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """Two dispatchers, each with its own store, on one database: suspending through
    one store holds both; a restarted dispatcher stays suspended; activating
    through the other store releases the queue."""
    server = await smtp_server()
    await queue.setup(account_for(server))
    settings = fast(settings_factory)
    other_store = await open_store(settings)
    try:
        first = await start_dispatcher(queue.store, settings)
        second = await start_dispatcher(other_store, settings)
        await queue.store.control.set_instance_active(False)
        for run in (first, second):
            await _seen(run, active=False)
        await queue.add("held")
        await first.halt()
        restarted = await start_dispatcher(queue.store, settings)
        await _seen(restarted, active=False)
        await asyncio.sleep(0.3)  # a slow machine only makes this check weaker
        assert server.received == []
        assert (await queue.store.messages.get("t1", "held")).attempts == 0  # type: ignore[union-attr]
        await other_store.control.set_instance_active(True)
        await queue.wait_status("held", "sent")
    finally:
        await other_store.close()


async def _seen(run: Running, *, active: bool) -> None:
    async with asyncio.timeout(5):
        while run.dispatcher.active is not active:
            await asyncio.sleep(0.01)


async def test_tenant_rate_limit_counts_all_its_accounts(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """Tenant limit 2 per minute over two unlimited accounts: two messages go, the
    others are held (deferred without spending an attempt) until the window
    reopens."""
    server = await smtp_server()
    await queue.setup(
        account_for(server, "a"), account_for(server, "b"), rate_limits={"per_minute": 2}
    )
    ids = ["a1", "a2", "b1", "b2"]
    for message_id in ids:
        await queue.add(message_id, account_id=message_id[0])
    started = time.time()
    await start_dispatcher(queue.store, fast(settings_factory))
    records = [await queue.wait_status(m, "sent", "deferred") for m in ids]
    held = [r for r in records if str(r.status) == "deferred"]
    assert len(held) == 2 and len(server.received) == 2
    for record in held:
        assert record.error == "rate limited" and record.attempts == 0
        assert int(started) + 59 <= record.deferred_ts <= time.time() + 61


@pytest.mark.parametrize("raw", ["60,300,900", "[60, 300, 900]"])
async def test_retry_delays_from_the_environment_are_used(
    monkeypatch: pytest.MonkeyPatch,
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
    raw: str,
) -> None:
    """GMP_RETRY_DELAYS=60,300,900: a first transient failure waits 60 s."""
    monkeypatch.setenv("GMP_RETRY_DELAYS", raw)
    settings = settings_factory(send_loop_interval=0.05)
    assert settings.retry_delays == [60, 300, 900]
    server = await smtp_server(Script(data_reply="451 4.3.0 later"))
    await queue.setup(account_for(server))
    await queue.add("m1")
    before = time.time()
    await start_dispatcher(queue.store, settings)
    record = await queue.wait_status("m1", "deferred")
    assert int(before) + 60 <= record.deferred_ts <= time.time() + 60
