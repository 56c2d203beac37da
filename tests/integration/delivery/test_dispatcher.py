"""The dispatcher end to end: a real store, real SMTP servers, real outcomes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import structlog.testing

from mail_proxy.domain.models import LeaseRequest, NewMessage
from mail_proxy.settings import Settings
from mail_proxy.storage import open_store
from mail_proxy.testing import ManualClock

from .conftest import Queue, Running, Script, ServerFactory, account_for, claimable, payload

Start = Callable[..., Awaitable[Running]]
SettingsFactory = Callable[..., Settings]


def fast(settings_factory: SettingsFactory, **overrides: Any) -> Settings:
    """Settings for tests: short timers, short retries."""
    values: dict[str, Any] = {
        "send_loop_interval": 0.05,
        "retry_delays": [1, 1],
        "smtp_timeout": 1.0,
        "shutdown_grace_seconds": 0.5,
    }
    values.update(overrides)
    return settings_factory(**values)


async def test_message_is_delivered_and_recorded(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """Sent: the server got the message as built from the payload, the row and the
    event say sent, metrics count it and the sync loop is nudged."""
    server = await smtp_server()
    await queue.setup(account_for(server))
    await queue.add(
        "m1",
        to=["Ann <ann@example.com>"],
        cc=["cc@example.com"],
        bcc=["hidden@example.com"],
        return_path="bounces@example.org",
        subject="Grüße",
        headers={"X-Campaign": "c1"},
    )
    run = await start_dispatcher(queue.store, fast(settings_factory))
    run.dispatcher.wake()
    record = await queue.wait_status("m1", "sent")
    received = server.received[0]
    assert received.mail_from == "bounces@example.org"
    assert sorted(received.rcpt_tos) == ["ann@example.com", "cc@example.com", "hidden@example.com"]
    msg = received.message
    assert msg["Subject"] == "Grüße"
    assert msg["X-Genro-Mail-ID"] == "m1"
    assert msg["X-Campaign"] == "c1"
    assert msg["Bcc"] is None and b"hidden@example.com" not in received.raw
    assert record.smtp_ts is not None and record.attempts == 1
    events = await queue.store.messages.events("t1", "m1")
    assert [str(e.type) for e in events] == ["sent"]
    assert run.metrics.sent.labels(account_id="acc")._value.get() == 1
    assert run.outcomes, "on_outcome was not called"


async def test_enqueue_at_idle_leaves_without_waiting_for_the_timer(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """With a 60 s timer, wake() after enqueue sends at once (the API's path)."""
    server = await smtp_server()
    await queue.setup(account_for(server))
    run = await start_dispatcher(queue.store, fast(settings_factory, send_loop_interval=60))
    await asyncio.sleep(0.05)  # the dispatcher is idle, waiting for its timer
    await queue.add("m1")
    run.dispatcher.wake()
    await server.wait_for(1, timeout=5)


async def test_test_mode_waits_for_run_now(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """In test mode nothing leaves until run_now() (POST /commands/run-now): not on
    the timer, not on wake() (what add-messages calls)."""
    server = await smtp_server()
    await queue.setup(account_for(server))
    await queue.add("m1")
    run = await start_dispatcher(
        queue.store, fast(settings_factory, test_mode=True, send_loop_interval=0.01)
    )
    run.dispatcher.wake()
    await asyncio.sleep(0.3)  # a slow machine only makes this check weaker, never fail
    assert server.received == []
    assert (await queue.store.messages.get("t1", "m1")).attempts == 0  # type: ignore[union-attr]
    run.dispatcher.run_now()
    await server.wait_for(1)


async def test_one_run_now_drains_more_than_a_batch(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """Claims stop at an account's batch, but one run-now keeps claiming until empty."""
    server = await smtp_server()
    await queue.setup(account_for(server))
    for i in range(7):
        await queue.add(f"m{i}")
    settings = fast(settings_factory, test_mode=True, batch_size_per_account=2)
    run = await start_dispatcher(queue.store, settings)
    run.dispatcher.run_now()
    received = await server.wait_for(7)
    assert sorted(r.mail_id for r in received) == [f"m{i}" for i in range(7)]


async def test_priority_order(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """Priority 0 first, then 1, 2, 3; FIFO within one priority."""
    server = await smtp_server()
    await queue.setup(account_for(server))
    for message_id, priority in [("p3", 3), ("p2a", 2), ("p1", 1), ("p2b", 2), ("p0", 0)]:
        await queue.add(message_id, priority=priority)
    settings = fast(
        settings_factory, test_mode=True, max_concurrent_sends=1, max_concurrent_per_account=1
    )
    run = await start_dispatcher(queue.store, settings)
    run.dispatcher.run_now()
    received = await server.wait_for(5)
    assert [r.mail_id for r in received] == ["p0", "p1", "p2a", "p2b", "p3"]


async def test_immediate_message_overtakes_a_backlog(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """Priority 0 enqueued while an account works through a backlog goes next."""
    server = await smtp_server(Script(delay=0.05))
    await queue.setup(account_for(server))
    for i in range(10):
        await queue.add(f"bulk{i}")
    settings = fast(settings_factory, batch_size_per_account=4, max_concurrent_per_account=1)
    run = await start_dispatcher(queue.store, settings)
    await server.wait_for(1)
    await queue.add("urgent", priority=0)
    run.dispatcher.wake()
    received = await server.wait_for(11)
    order = [r.mail_id for r in received]
    assert order.index("urgent") <= 3, order


def record_claims(queue: Queue, delay: float = 0.0) -> list[dict[str, Any]]:
    """The arguments of every claim the store gets from now on, in order; ``delay``
    slows each claim down, as a busy database would."""
    claims: list[dict[str, Any]] = []
    claim = queue.store.queue.claim

    async def recorded(**kwargs: Any) -> Any:
        claims.append(kwargs)
        await asyncio.sleep(delay)
        return await claim(**kwargs)

    queue.store.queue.claim = recorded  # type: ignore[method-assign]
    return claims


async def test_busy_dispatcher_looks_for_priority_0_once_per_interval(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """Under a backlog and with no wake-up, the priority-0 pass is made about once
    per loop interval rather than in every round, and a priority-0 retry that falls
    due meanwhile still overtakes the backlog (without that interval it would wait
    for the backlog to end)."""
    server = await smtp_server(Script(delay=0.02))
    await queue.setup(account_for(server))
    for i in range(150):  # at least 3 s of sends on one connection
        await queue.add(f"bulk{i}")
    await queue.add("retry", priority=0, deferred_ts=int(time.time()) + 2)
    claims = record_claims(queue)
    settings = fast(
        settings_factory,
        send_loop_interval=0.5,
        batch_size_per_account=4,
        max_concurrent_per_account=1,
    )
    await start_dispatcher(queue.store, settings)
    received = await server.wait_for(151, timeout=30)
    order = [r.mail_id for r in received]
    assert order.index("retry") < len(order) - 10, order
    passes = [(claim["min_priority"], claim["max_priority"]) for claim in claims]
    urgent = passes.count((0, 0))
    assert urgent < (len(passes) - urgent) / 2, passes


async def test_a_full_claim_is_not_topped_up_at_once(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """A claim that came back full and left the lane above its refill mark is not
    followed at once by one for the few messages sent meanwhile: the lane asks when
    it runs low, so every claim under load is for at least half the lane. Claims are
    slowed (as a busy database would) so that sends complete while one is out."""
    server = await smtp_server(Script(delay=0.02))
    await queue.setup(account_for(server))
    for i in range(60):
        await queue.add(f"bulk{i}")
    claims = record_claims(queue, delay=0.05)
    settings = fast(
        settings_factory,
        send_loop_interval=5.0,
        batch_size_per_account=10,
        max_concurrent_per_account=1,
    )
    await start_dispatcher(queue.store, settings)
    await server.wait_for(60, timeout=30)
    limits = [claim["limit"] for claim in claims if claim["min_priority"] == 1]
    assert limits and min(limits) >= 5, limits


async def test_deferred_ts_is_honoured(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """A message scheduled for later waits for its time, then goes by the timer: an
    hour on the dispatcher's clock, moved by the test rather than waited for."""
    clock = ManualClock()
    server = await smtp_server()
    await queue.setup(account_for(server))
    await queue.add("later", deferred_ts=int(clock.now()) + 3600)
    await queue.add("now")
    await start_dispatcher(queue.store, fast(settings_factory), clock)
    await server.wait_for(1)
    assert [r.mail_id for r in server.received] == ["now"]
    assert await queue.status("later") == "pending"
    # The outcome of "now" is committed by the group commit after the sink has it:
    # moving the clock an hour before that would expire its lease and send it again.
    await queue.wait_status("now", "sent")
    await clock.advance(3600)
    await server.wait_for(2)
    assert [r.mail_id for r in server.received] == ["now", "later"]


async def test_suspensions(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """Suspended batch, suspended tenant and suspended instance all hold messages."""
    server = await smtp_server()
    await queue.setup(account_for(server))
    await queue.store.control.suspend("t1", "held")
    await queue.add("in-batch", batch_code="held")
    await queue.add("free", batch_code="other")
    run = await start_dispatcher(queue.store, fast(settings_factory))
    await server.wait_for(1)
    await asyncio.sleep(0.2)
    assert [r.mail_id for r in server.received] == ["free"]

    await queue.store.control.suspend("t1", "*")
    await queue.store.control.activate("t1", "held")
    await queue.add("while-tenant-suspended")
    await asyncio.sleep(0.2)
    assert len(server.received) == 1

    await queue.store.control.set_instance_active(False)
    await _instance_seen(run, active=False)
    await queue.store.control.activate("t1", None)
    await asyncio.sleep(0.2)
    assert len(server.received) == 1
    await queue.store.control.set_instance_active(True)
    received = await server.wait_for(3)
    assert {r.mail_id for r in received} == {"free", "in-batch", "while-tenant-suspended"}


async def test_permanent_failure_is_an_error_at_once(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """5xx: error immediately, with the server's reply text, no retry."""
    server = await smtp_server(Script(refuse={"to@example.com": "550 5.1.1 no such user"}))
    await queue.setup(account_for(server))
    await queue.add("m1")
    run = await start_dispatcher(queue.store, fast(settings_factory))
    record = await queue.wait_status("m1", "error")
    assert record.error == "all recipients refused: to@example.com: 550 5.1.1 no such user"
    assert record.attempts == 1
    assert run.metrics.errors.labels(account_id="acc")._value.get() == 1


async def test_transient_failures_retry_then_give_up(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """4xx: deferred by the configured delays (1 s, 1 s here), then error."""
    server = await smtp_server(Script(data_reply="451 4.3.0 try again later"))
    await queue.setup(account_for(server))
    await queue.add("m1")
    run = await start_dispatcher(queue.store, fast(settings_factory))
    first = await queue.wait_status("m1", "deferred")
    assert first.error == "451 4.3.0 try again later"
    assert first.deferred_ts is not None and first.deferred_ts - first.updated_at in (0, 1, 2)
    final = await queue.wait_status("m1", "error", timeout=8)
    assert final.attempts == 3
    assert "451 4.3.0 try again later" in (final.error or "")
    events = await queue.store.messages.events("t1", "m1")
    assert [str(e.type) for e in events] == ["deferred", "deferred", "error"]
    assert run.metrics.deferred.labels(account_id="acc")._value.get() == 2


async def test_retry_succeeds_when_the_server_recovers(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """A dropped connection mid-DATA defers; the next attempt is delivered."""
    server = await smtp_server(Script(drop_in_data=True))
    await queue.setup(account_for(server))
    await queue.add("m1")
    await start_dispatcher(queue.store, fast(settings_factory))
    deferred = await queue.wait_status("m1", "deferred")
    assert deferred.error and deferred.error.startswith("disconnected")
    server.script.drop_in_data = False
    record = await queue.wait_status("m1", "sent", timeout=5)
    assert record.attempts == 2


async def test_stalled_server_times_out_and_defers(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """No answer within the timeout: deferred with a timeout reason."""
    server = await smtp_server(Script(stall=True))
    await queue.setup(account_for(server))
    await queue.add("m1")
    await start_dispatcher(queue.store, fast(settings_factory, smtp_timeout=0.3))
    record = await queue.wait_status("m1", "deferred")
    assert (record.error or "").startswith("timeout")


async def test_partial_refusal_counts_as_sent(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """One recipient accepted is enough: sent, with the refusals in the event."""
    server = await smtp_server(Script(refuse={"bad@example.com": "550 5.1.1 unknown"}))
    await queue.setup(account_for(server))
    await queue.add("m1", to=["to@example.com", "bad@example.com"])
    await start_dispatcher(queue.store, fast(settings_factory))
    await queue.wait_status("m1", "sent")
    (event,) = await queue.store.messages.events("t1", "m1")
    assert event.details == {"refused": {"bad@example.com": "550 5.1.1 unknown"}}


async def test_unsendable_payloads_fail(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """Broken attachment data or a vanished account: error, and the loop goes on."""
    server = await smtp_server()
    await queue.setup(account_for(server))
    await queue.add("bad", attachments=[{"filename": "a", "storage_path": "base64:@@"}])
    await queue.add("orphan", account_id="gone")
    await queue.add("good")
    await start_dispatcher(queue.store, fast(settings_factory))
    assert "not valid base64" in ((await queue.wait_status("bad", "error")).error or "")
    assert "unknown account" in ((await queue.wait_status("orphan", "error")).error or "")
    await queue.wait_status("good", "sent")


async def test_rate_limit_defers_without_spending_attempts(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """Over limit_per_minute: held until the window reopens, attempts untouched;
    another account keeps sending meanwhile."""
    server = await smtp_server()
    await queue.setup(
        account_for(server, "limited", limit_per_minute=2), account_for(server, "free")
    )
    for i in range(4):
        await queue.add(f"l{i}", account_id="limited")
    await queue.add("f0", account_id="free")
    started = time.time()
    run = await start_dispatcher(queue.store, fast(settings_factory))
    received = await server.wait_for(3)
    sent = {r.mail_id for r in received} - {"f0"}
    assert len(sent) == 2 and "f0" in {r.mail_id for r in received}
    for message_id in {"l0", "l1", "l2", "l3"} - sent:
        record = await queue.wait_status(message_id, "deferred")
        assert record.attempts == 0
        assert record.error == "rate limited"
        assert started + 59 <= (record.deferred_ts or 0) <= time.time() + 61
    await asyncio.sleep(0.2)
    assert len(server.received) == 3
    assert run.metrics.rate_limited.labels(account_id="limited")._value.get() == 2
    assert run.metrics.deferred.labels(account_id="limited")._value.get() == 0


async def test_rate_limit_reject(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """limit_behavior reject: the message over the limit fails (the two are sent
    side by side, so either may be the one that finds the window full)."""
    server = await smtp_server()
    await queue.setup(account_for(server, limit_per_minute=1, limit_behavior="reject"))
    await queue.add("m0")
    await queue.add("m1")
    await start_dispatcher(queue.store, fast(settings_factory))
    finished = [await queue.wait_status(m, "sent", "error") for m in ("m0", "m1")]
    assert sorted(str(r.status) for r in finished) == ["error", "sent"]
    assert [r.error for r in finished if r.error] == ["rate limit exceeded"]


async def test_graceful_stop_releases_stalled_sends(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """Stop during a hung send: after the grace period the lease is given back,
    the message untouched and pending for another process."""
    server = await smtp_server(Script(stall=True))
    await queue.setup(account_for(server))
    await queue.add("m1")
    settings = fast(settings_factory, smtp_timeout=30, shutdown_grace_seconds=0.3)
    run = await start_dispatcher(queue.store, settings)
    async with asyncio.timeout(5):
        while server.connections == 0 or not server._sessions[0].envelope.rcpt_tos:
            await asyncio.sleep(0.02)
    started = time.monotonic()
    await run.halt()
    assert time.monotonic() - started < 3
    record = await queue.store.messages.get("t1", "m1")
    assert record is not None
    assert (record.status, record.attempts) == ("pending", 0)
    assert await claimable(queue.store) == {"m1"}


async def test_graceful_stop_lets_quick_sends_finish(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """Everything claimed before the stop ends sent or back in the queue, never leased."""
    server = await smtp_server()
    await queue.setup(account_for(server))
    for i in range(30):
        await queue.add(f"m{i}")
    run = await start_dispatcher(queue.store, fast(settings_factory))
    await server.wait_for(1)
    await run.halt()
    arrived = {r.mail_id for r in server.received}
    pending = await claimable(queue.store)
    assert arrived | pending == {f"m{i}" for i in range(30)}
    for message_id in arrived:
        assert await queue.status(message_id) == "sent"


@pytest.mark.postgres
async def test_two_dispatchers_on_postgres_share_one_limit(
    pg_dsn: str,
    smtp_server: ServerFactory,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """Two dispatchers (as two processes would) on one database: together they stay
    within limit_per_minute, and no message is sent twice.

    Messages keep coming until both dispatchers have handled some: on a loaded
    machine one dispatcher may drain a fixed batch before the other's first claim,
    and then the test would not be about sharing at all."""
    server = await smtp_server()
    settings = fast(settings_factory, db_path=pg_dsn, batch_size_per_account=3)
    stores = [await open_store(settings), await open_store(settings)]
    try:
        queue = Queue(stores[0])
        await queue.setup(account_for(server, limit_per_minute=5))
        runs = [await start_dispatcher(store, settings) for store in stores]

        def handled() -> list[float]:
            return [_count(run.metrics.rate_limited) + _count(run.metrics.sent) for run in runs]

        added = 0
        async with asyncio.timeout(20):
            while added < 20 or not all(handled()):
                await queue.add(f"m{added}")
                added += 1
                await asyncio.sleep(0.02)
            while sum(handled()) < added:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        ids = [r.mail_id for r in server.received]
        assert len(ids) == 5 and len(set(ids)) == 5
        assert sum(_count(run.metrics.rate_limited) for run in runs) == added - 5
        assert all(handled()), f"one dispatcher did all the work: {handled()}"
        for run in runs:
            await run.halt()
    finally:
        for store in stores:
            await store.close()


def _count(counter: Any) -> float:
    return sum(
        sample.value
        for metric in counter.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


async def test_short_leases_still_deliver(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """A lease shorter than the usual commit margin shrinks the margin instead of
    handing every message back unsent."""
    server = await smtp_server()
    await queue.setup(account_for(server))
    await queue.add("short")
    run = await start_dispatcher(queue.store, fast(settings_factory, lease_seconds=2))
    run.dispatcher.wake()
    await queue.wait_status("short", "sent")
    assert len(server.received) == 1


async def test_delivery_activity_is_logged_when_asked(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """GMP_LOG_DELIVERY_ACTIVITY: one line per attempt with ids, never the body."""
    server = await smtp_server()
    await queue.setup(account_for(server))
    await queue.add("logged")
    with structlog.testing.capture_logs() as logs:
        run = await start_dispatcher(
            queue.store, fast(settings_factory, log_delivery_activity=True)
        )
        run.dispatcher.wake()
        await queue.wait_status("logged", "sent")
    [line] = [entry for entry in logs if entry["event"] == "message_sent"]
    assert line["message_id"] == "logged" and line["account_id"] == "acc"
    assert "body" not in line


async def _instance_seen(run: Running, *, active: bool) -> None:
    """Wait until the dispatcher has read the stored instance state."""
    async with asyncio.timeout(5):
        while run.dispatcher.active is not active:
            await asyncio.sleep(0.01)


async def _idle(run: Running) -> None:
    """Wait until the dispatcher runs with nothing in hand."""
    async with asyncio.timeout(5):
        while run.dispatcher.lease_for(1) is None:
            await asyncio.sleep(0.01)


async def test_messages_handed_over_at_enqueue_go_out_without_a_claim(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    """An idle dispatcher leases messages in the enqueue's transaction and sends them
    at once: its poll is a minute away and nothing wakes it, yet they arrive."""
    server = await smtp_server()
    await queue.setup(account_for(server))
    run = await start_dispatcher(queue.store, fast(settings_factory, send_loop_interval=60))
    await _idle(run)
    lease = run.dispatcher.lease_for(2)
    assert lease is not None
    batch = [NewMessage("t1", mid, "acc", 2, payload(mid)) for mid in ("h1", "h2")]
    _, claimed = await queue.store.intake.enqueue_leased(batch, time.time(), lease)
    run.dispatcher.take(claimed)
    await queue.wait_status("h1", "sent")
    await queue.wait_status("h2", "sent")
    assert sorted(r.mail_id for r in await server.wait_for(2)) == ["h1", "h2"]


async def test_a_busy_stopped_or_test_mode_dispatcher_takes_nothing_over(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Start,
    settings_factory: SettingsFactory,
) -> None:
    server = await smtp_server(Script(delay=0.5))
    await queue.setup(account_for(server))
    settings = fast(settings_factory, send_loop_interval=60, max_concurrent_per_account=2)
    run = await start_dispatcher(queue.store, settings)
    await _idle(run)
    assert run.dispatcher.lease_for(3) is None  # more than one account sends at once
    await queue.add("slow")
    run.dispatcher.wake()
    async with asyncio.timeout(5):
        while run.dispatcher.lease_for(1) is not None:  # busy with "slow"
            await asyncio.sleep(0.01)
    await queue.wait_status("slow", "sent")
    await run.halt()
    assert run.dispatcher.lease_for(1) is None
    late = LeaseRequest("late", time.time() + 60)
    _, claimed = await queue.store.intake.enqueue_leased(
        [NewMessage("t1", "late", "acc", 2, payload("late"))], time.time(), late
    )
    run.dispatcher.take(claimed)  # stopped: given back
    async with asyncio.timeout(5):
        while "late" not in await claimable(queue.store):
            await run.dispatcher._finished.flush()
            await asyncio.sleep(0.02)
    test_mode = await start_dispatcher(queue.store, fast(settings_factory, test_mode=True))
    await asyncio.sleep(0.05)
    assert test_mode.dispatcher.lease_for(1) is None
