"""The sync loop against a real store and a real local application endpoint.

Events are produced the way the dispatcher produces them (enqueue, claim,
finish_many); the application records what arrives and answers as scripted.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from mail_proxy.client import verify_signature
from mail_proxy.domain.models import AuthMethod, ClientAuth
from mail_proxy.ports import Store
from mail_proxy.sync import loop as loop_module
from mail_proxy.testing import ManualClock

from .conftest import (
    Answer,
    Application,
    Call,
    Running,
    add_tenant,
    finish_messages,
    outcome_for,
)

StartSyncLoop = Callable[..., Running]


def _keys(entries: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["id"], e["event"]) for e in entries]


def _with_events(path: str, n: int = 1) -> Callable[[list[Call]], bool]:
    """Predicate: at least ``n`` calls to ``path`` carried entries."""
    return lambda calls: sum(1 for c in calls if c.path == path and c.entries) >= n


def _acked(app: Application, path: str, n: int) -> Callable[[list[Call]], bool]:
    """Predicate: the application acknowledged ``n`` entries on ``path``."""
    return lambda _calls: len(app.acknowledged(path)) >= n


async def _settled(store: Store, tenant_id: str) -> None:
    """Wait until the store shows every event of the tenant acknowledged."""
    async with asyncio.timeout(5):
        while await store.outbox.unreported(tenant_id, 1):
            await asyncio.sleep(0.01)


async def _until(condition: Callable[[], bool]) -> None:
    """Wait (at most 5 s) until ``condition`` holds."""
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0.01)


async def _synced_now(running: Running, clock: ManualClock, tenant_id: str) -> None:
    """Wait until the loop recorded the tenant's answer to a call made at the clock's
    present time: only then may the test move time on."""
    async with asyncio.timeout(5):
        while True:
            statuses = {s["tenant_id"]: s for s in await running.loop.sync_status(clock.now())}
            if statuses[tenant_id]["last_sync_ts"] == int(clock.now()):
                return
            await asyncio.sleep(0.01)


async def _settled_dnd(store: Store, tenant_id: str) -> None:
    """Wait until the tenant's DND (from the application's answer) is stored."""
    async with asyncio.timeout(5):
        while not any(
            s.tenant_id == tenant_id and s.dnd_until for s in await store.sync_state.all()
        ):
            await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    ("auth", "authorization"),
    [
        (ClientAuth(AuthMethod.BEARER, token="app-token"), "Bearer app-token"),
        (
            ClientAuth(AuthMethod.BASIC, user="proxy", password="pw"),
            "Basic " + base64.b64encode(b"proxy:pw").decode(),
        ),
        (ClientAuth(), None),
    ],
    ids=["bearer", "basic", "none"],
)
async def test_reports_arrive_signed_with_the_tenant_auth(
    sqlite_store: Store,
    application: Application,
    start_sync_loop: StartSyncLoop,
    auth: ClientAuth,
    authorization: str | None,
) -> None:
    """Sent, deferred and failed events arrive in one signed call with the tenant's auth."""
    await add_tenant(sqlite_store, "acme", application.base_url, auth=auth, secret="acme-key")
    before = int(time.time())
    sent, deferred, failed = await finish_messages(
        sqlite_store, "acme", ["sent", "deferred", "error"]
    )
    start_sync_loop(sqlite_store)
    await application.wait_for(_with_events("/sync/acme"))
    call = next(c for c in application.calls if c.entries)
    assert call.headers.get("authorization") == authorization
    assert verify_signature(call.body, call.headers["x-mail-proxy-signature"], "acme-key")
    by_id = {e["id"]: e for e in call.entries}
    assert by_id[sent]["event"] == "sent" and isinstance(by_id[sent]["sent_ts"], int)
    assert by_id[deferred]["deferred_reason"] == "451 4.7.1 try again later"
    assert before + 59 <= by_id[deferred]["deferred_ts"] <= time.time() + 60
    assert by_id[failed]["error"] == "550 5.1.1 no such user"
    assert {e["tenant_id"] for e in call.entries} == {"acme"}
    assert all(isinstance(e["pk"], int) for e in call.entries)
    await _settled(sqlite_store, "acme")


@pytest.mark.parametrize(
    "failure",
    [Answer(status=500), Answer(hang=True), Answer(body={"ok": False, "error": "busy"})],
    ids=["http-500", "timeout", "ok-false"],
)
async def test_failed_call_is_repeated_and_acknowledged_once(
    sqlite_store: Store,
    application: Application,
    start_sync_loop: StartSyncLoop,
    failure: Answer,
) -> None:
    """After a 500, a timeout or ok:false the same events come again, once the back-off
    passed on the loop's clock (30 s, moved by the test), and are acked once."""
    await add_tenant(sqlite_store, "acme", application.base_url)
    ids = await finish_messages(sqlite_store, "acme", ["sent", "error", "deferred"])
    application.script("/sync/acme", failure)
    clock = ManualClock()
    running = start_sync_loop(sqlite_store, clock, sync_timeout=0.3, sync_retry_base_delay=30.0)
    outcome = {500: "http_error"}.get(failure.status, "timeout" if failure.hang else "not_ok")
    await _until(lambda: running.sync_calls("acme", outcome) == 1)
    await clock.advance(29.0)
    assert len(application.calls_to("/sync/acme")) == 1  # the clock has not reached it
    await clock.advance(1.0)
    await application.wait_for(_acked(application, "/sync/acme", 3))
    first, second = application.calls_to("/sync/acme")[:2]
    assert _keys(first.entries) == _keys(second.entries)
    assert sorted(e["id"] for e in application.acknowledged("/sync/acme")) == sorted(ids)
    await _settled(sqlite_store, "acme")
    assert running.sync_calls("acme", outcome) == 1


async def test_queued_answer_brings_an_immediate_second_call(
    sqlite_store: Store, application: Application, start_sync_loop: StartSyncLoop
) -> None:
    """queued > 0: the tenant is called again at once (heartbeat is 60 s away) and the
    dispatcher is woken."""
    await add_tenant(sqlite_store, "acme", application.base_url)
    await finish_messages(sqlite_store, "acme", ["sent"])
    application.script("/sync/acme", Answer(body={"ok": True, "queued": 5}))
    running = start_sync_loop(sqlite_store)
    calls = await application.wait_for(lambda calls: len(calls) >= 2)
    assert len(calls[0].entries) == 1
    assert calls[1].entries == []
    assert running.queued_signals == 1


async def test_next_sync_after_holds_heartbeats_but_not_events(
    sqlite_store: Store, application: Application, start_sync_loop: StartSyncLoop
) -> None:
    """In DND no heartbeat comes for several intervals (a tenant without DND, the
    witness, gets one each interval meanwhile), yet new events are reported; once the
    DND is over the heartbeats resume. Time moves on the loop's clock, not by waiting."""
    clock = ManualClock()
    await add_tenant(sqlite_store, "acme", application.base_url)
    await add_tenant(sqlite_store, "witness", application.base_url)
    application.script(
        "/sync/acme", Answer(body={"ok": True, "next_sync_after": int(clock.now()) + 60})
    )
    running = start_sync_loop(sqlite_store, clock, sync_interval=10.0)
    await application.wait_for(lambda calls: len(calls) == 2)
    await _settled_dnd(sqlite_store, "acme")
    await _synced_now(running, clock, "witness")
    for heartbeats in (2, 3, 4):
        await clock.advance(10.0)
        await application.wait_for(
            lambda _c, n=heartbeats: len(application.calls_to("/sync/witness")) == n
        )
        await _synced_now(running, clock, "witness")
    assert len(application.calls_to("/sync/acme")) == 1
    statuses = {s["tenant_id"]: s for s in await running.loop.sync_status(clock.now())}
    assert statuses["acme"]["in_dnd"] is True
    ids = await finish_messages(sqlite_store, "acme", ["sent"])
    running.loop.wake_for_events()
    await application.wait_for(_with_events("/sync/acme"))
    assert [e["id"] for e in application.calls_to("/sync/acme")[-1].entries] == ids
    await _synced_now(running, clock, "acme")
    await clock.advance(31.0)  # past the DND (60 s after the start)
    await application.wait_for(lambda _c: len(application.calls_to("/sync/acme")) == 3)


async def test_heartbeat_every_interval_without_events(
    sqlite_store: Store, application: Application, start_sync_loop: StartSyncLoop
) -> None:
    """With nothing to report the tenant is still called each (shortened) interval."""
    await add_tenant(sqlite_store, "acme", application.base_url)
    start_sync_loop(sqlite_store, sync_interval=0.2)
    calls = await application.wait_for(lambda calls: len(calls) >= 3)
    assert all(c.entries == [] for c in calls)
    gaps = [b.at - a.at for a, b in itertools.pairwise(calls)]
    assert all(gap >= 0.18 for gap in gaps), gaps


async def test_hanging_tenant_does_not_delay_another(
    sqlite_store: Store, application: Application, start_sync_loop: StartSyncLoop
) -> None:
    """While the first tenant's endpoint hangs (timeout 5 s), two others are reported and
    acknowledged through the one remaining slot."""
    for tenant_id in ("a-slow", "fast1", "fast2"):
        await add_tenant(sqlite_store, tenant_id, application.base_url)
        await finish_messages(sqlite_store, tenant_id, ["sent"])
    application.always("/sync/a-slow", Answer(hang=True))
    start_sync_loop(sqlite_store, sync_timeout=5.0, sync_concurrency=2)
    await application.wait_for(
        lambda _c: bool(
            application.calls_to("/sync/a-slow")
            and application.acknowledged("/sync/fast1")
            and application.acknowledged("/sync/fast2")
        ),
        timeout=4.0,
    )
    assert application.calls[0].path == "/sync/a-slow"
    await _settled(sqlite_store, "fast1")
    await _settled(sqlite_store, "fast2")
    assert await sqlite_store.outbox.unreported("a-slow", 10)


async def test_concurrent_calls_are_bounded(
    sqlite_store: Store, application: Application, start_sync_loop: StartSyncLoop
) -> None:
    """With sync_concurrency=2 and three hanging endpoints only two calls are open: the
    third starts only once one of the first two has timed out."""
    tenants = ("a", "b", "c")
    for tenant_id in tenants:
        await add_tenant(sqlite_store, tenant_id, application.base_url)
        application.always(f"/sync/{tenant_id}", Answer(hang=True))
    running = start_sync_loop(sqlite_store, sync_timeout=1.0, sync_concurrency=2)
    await application.wait_for(lambda calls: len(calls) >= 3)
    timed_out_first = sum(running.sync_calls(t, "timeout") for t in tenants)
    assert timed_out_first >= 1


async def test_restart_between_call_and_ack_sends_again(
    store: Store, application: Application, start_sync_loop: StartSyncLoop
) -> None:
    """A proxy stopped after the application got a batch but before the ack re-sends it:
    seen twice, acknowledged once, never lost."""
    await add_tenant(store, "acme", application.base_url)
    ids = await finish_messages(store, "acme", ["sent", "error"])
    application.script("/sync/acme", Answer(hang=True))
    first = start_sync_loop(store, sync_timeout=5.0)
    await application.wait_for(_with_events("/sync/acme"))
    await first.stop()
    assert len(await store.outbox.unreported("acme", 10)) == 2
    start_sync_loop(store)
    await application.wait_for(_acked(application, "/sync/acme", 2))
    seen = Counter(e["id"] for c in application.calls for e in c.entries)
    assert seen == dict.fromkeys(ids, 2)
    await _settled(store, "acme")


async def test_two_thousand_events_in_batches_exactly_once(
    store: Store, application: Application, start_sync_loop: StartSyncLoop
) -> None:
    """2,000 events go in calls of at most 500; every one is acknowledged exactly once."""
    await add_tenant(store, "bulk", application.base_url)
    ids = await finish_messages(store, "bulk", ["sent"] * 2000)
    start_sync_loop(store)
    await application.wait_for(_acked(application, "/sync/bulk", 2000), timeout=20)
    calls = [c for c in application.calls_to("/sync/bulk") if c.entries]
    assert len(calls) == 4
    assert all(len(c.entries) <= 500 for c in calls)
    acked = Counter(e["id"] for e in application.acknowledged("/sync/bulk"))
    assert set(acked) == set(ids)
    assert max(acked.values()) == 1
    await _settled(store, "bulk")


async def test_events_of_a_message_keep_their_order_across_batches(
    sqlite_store: Store, application: Application, start_sync_loop: StartSyncLoop
) -> None:
    """deferred then sent for one message arrive in that order, even one per call."""
    await add_tenant(sqlite_store, "acme", application.base_url)
    [mid] = await finish_messages(sqlite_store, "acme", ["deferred"])
    record = await sqlite_store.messages.get("acme", mid)
    assert record is not None and record.deferred_ts is not None
    [claimed] = await sqlite_store.queue.claim(
        now=record.deferred_ts + 1, lease_seconds=60, limit=1, per_account=1
    )
    await sqlite_store.queue.finish(
        claimed.record.pk, claimed.lease_token, outcome_for("sent", record.deferred_ts + 1)
    )
    application.script("/sync/acme", Answer(status=503))
    start_sync_loop(sqlite_store, report_batch_size=1)
    await application.wait_for(_acked(application, "/sync/acme", 2))
    assert _keys(application.acknowledged("/sync/acme")) == [(mid, "deferred"), (mid, "sent")]


async def test_tenant_run_now_clears_dnd_and_calls_at_once(
    sqlite_store: Store, application: Application, start_sync_loop: StartSyncLoop
) -> None:
    """The tenant's own run-now ends its DND (persisted) and syncs it immediately."""
    await add_tenant(sqlite_store, "acme", application.base_url)
    application.script(
        "/sync/acme", Answer(body={"ok": True, "next_sync_after": int(time.time()) + 600})
    )
    running = start_sync_loop(sqlite_store)
    await application.wait_for(lambda calls: len(calls) == 1)
    await _settled_dnd(sqlite_store, "acme")
    running.loop.wake("acme")
    await application.wait_for(lambda calls: len(calls) == 2)
    [state] = await sqlite_store.sync_state.all()
    assert state.dnd_until is None


async def test_admin_run_now_respects_dnd(
    sqlite_store: Store, application: Application, start_sync_loop: StartSyncLoop
) -> None:
    """The admin's run-now calls every tenant except the one in DND."""
    await add_tenant(sqlite_store, "quiet", application.base_url)
    await add_tenant(sqlite_store, "open", application.base_url)
    application.script(
        "/sync/quiet", Answer(body={"ok": True, "next_sync_after": int(time.time()) + 600})
    )
    running = start_sync_loop(sqlite_store)
    await application.wait_for(lambda calls: len(calls) == 2)
    await _settled_dnd(sqlite_store, "quiet")
    running.loop.wake()
    await application.wait_for(lambda _c: len(application.calls_to("/sync/open")) == 2)
    # The pass that called "open" again had already decided about "quiet".
    assert len(application.calls_to("/sync/quiet")) == 1


async def test_sync_status_and_persisted_state(
    sqlite_store: Store, application: Application, start_sync_loop: StartSyncLoop
) -> None:
    """After a call: last_sync_ts stored, next heartbeat due one interval later."""
    await add_tenant(sqlite_store, "acme", application.base_url)
    before = time.time()
    running = start_sync_loop(sqlite_store, sync_interval=30.0)
    await application.wait_for(lambda calls: len(calls) == 1)
    status = await _status_after_first_sync(running)
    assert status["tenant_id"] == "acme" and status["in_dnd"] is False
    assert isinstance(status["last_sync_ts"], int) and status["last_sync_ts"] >= int(before)
    assert status["next_sync_due"] == status["last_sync_ts"] + 30


async def _status_after_first_sync(running: Running) -> dict[str, object]:
    """The single tenant's status once the answer to its first call was recorded."""
    async with asyncio.timeout(5):
        while True:
            [status] = await running.loop.sync_status(time.time())
            if status["last_sync_ts"] is not None:
                return status
            await asyncio.sleep(0.01)


async def test_tenant_without_endpoint_reports_to_global_url(
    sqlite_store: Store, application: Application, start_sync_loop: StartSyncLoop
) -> None:
    """No client_base_url: GMP_CLIENT_SYNC_URL with basic auth and the global secret."""
    await add_tenant(sqlite_store, "legacy", None)
    ids = await finish_messages(sqlite_store, "legacy", ["sent"])
    start_sync_loop(
        sqlite_store,
        client_sync_url=application.url("/global"),
        client_sync_user="u",
        client_sync_password="p",
        client_sync_signing_secret="global-key",
    )
    await application.wait_for(_acked(application, "/global", 1))
    call = application.calls_to("/global")[0]
    assert call.headers["authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
    assert verify_signature(call.body, call.headers["x-mail-proxy-signature"], "global-key")
    assert [e["id"] for e in call.entries] == ids


async def test_metrics_count_calls_and_pending_reports(
    sqlite_store: Store,
    application: Application,
    start_sync_loop: StartSyncLoop,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """sync calls are counted by outcome; pending reports are measured before the call.

    No empty call follows the acknowledged one however slow its acknowledgement is
    written (under load one used to, while the events still looked pending). The gauge
    is measured once here: a second measurement (after the acks) would read 0."""
    monkeypatch.setattr(loop_module, "STATS_REFRESH_SECONDS", 3600.0)
    await add_tenant(sqlite_store, "acme", application.base_url)
    await finish_messages(sqlite_store, "acme", ["sent", "sent", "error"])
    application.script("/sync/acme", Answer(status=500))
    running = start_sync_loop(sqlite_store)
    await application.wait_for(_acked(application, "/sync/acme", 3))
    await _settled(sqlite_store, "acme")
    assert running.sync_calls("acme", "http_error") == 1
    assert running.sync_calls("acme", "ok") == 1
    assert running.metrics.registry.get_sample_value("gmp_reports_pending") == 3


async def test_broken_tenant_endpoint_does_not_stop_the_others(
    sqlite_store: Store, application: Application, start_sync_loop: StartSyncLoop
) -> None:
    """A tenant with an unusable URL keeps its events and backs off; others are reported."""
    await add_tenant(sqlite_store, "a-broken", "http://[::1")
    await finish_messages(sqlite_store, "a-broken", ["sent"])
    await add_tenant(sqlite_store, "b-fine", application.base_url)
    await finish_messages(sqlite_store, "b-fine", ["sent"])
    running = start_sync_loop(sqlite_store)
    await application.wait_for(_acked(application, "/sync/b-fine", 1))
    ids = await finish_messages(sqlite_store, "b-fine", ["error"])
    running.loop.wake_for_events()
    await application.wait_for(_acked(application, "/sync/b-fine", 2))
    assert application.acknowledged("/sync/b-fine")[-1]["id"] == ids[0]
    assert running.sync_calls("a-broken", "invalid_url") >= 1
    assert await sqlite_store.outbox.unreported("a-broken", 10)


async def test_events_of_tenants_without_destination_start_no_pass(
    sqlite_store: Store, application: Application, start_sync_loop: StartSyncLoop
) -> None:
    """Outcome wake-ups naming only tenants with nowhere to report to are skipped
    while the last pass's finding is fresh; one naming a reportable tenant is not."""
    await add_tenant(sqlite_store, "silent", None)
    await add_tenant(sqlite_store, "acme", application.base_url)
    passes = 0
    looked_up = sqlite_store.outbox.tenants_with_unreported

    async def counting() -> list[str]:
        nonlocal passes
        passes += 1
        return await looked_up()

    sqlite_store.outbox.tenants_with_unreported = counting  # type: ignore[method-assign]
    running = start_sync_loop(sqlite_store)
    await application.wait_for(lambda calls: len(calls) >= 1)  # the first pass ran
    await _until(lambda: not running.loop._running)
    await asyncio.sleep(0.2)  # the pass that the end of acme's task started
    before = passes
    await finish_messages(sqlite_store, "silent", ["sent"])
    for _ in range(20):
        running.loop.wake_for_events({"silent"})
        await asyncio.sleep(0.005)
    assert passes == before
    ids = await finish_messages(sqlite_store, "acme", ["sent"])
    running.loop.wake_for_events({"silent", "acme"})
    await application.wait_for(_with_events("/sync/acme"))
    assert [e["id"] for e in application.calls_to("/sync/acme")[-1].entries] == ids
    assert passes > before
