"""The sync loop against applications that answer oddly, and the target policy.

Each test would hang (and fail on its timeout) or fail an assertion if the guard
it checks were missing: the waits are on conditions, never on the clock.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import pytest
import structlog

from mail_proxy.domain.sync_schedule import MAX_QUEUED_ROUNDS
from mail_proxy.ports import Store

from .conftest import Answer, Application, Running, add_tenant, finish_messages

StartSyncLoop = Callable[..., Running]


async def _lease_released(store: Store, tenant_id: str) -> None:
    """Until the tenant's reporting lease is given back: its sync task is over."""
    async with asyncio.timeout(5):
        while any(
            s.tenant_id == tenant_id and s.lease_holder for s in await store.sync_state.all()
        ):
            await asyncio.sleep(0.01)


async def _settled(store: Store, tenant_id: str) -> None:
    async with asyncio.timeout(5):
        while await store.outbox.unreported(tenant_id, 1):
            await asyncio.sleep(0.01)


async def test_queued_recalls_are_capped(
    sqlite_store: Store, application: Application, start_sync_loop: StartSyncLoop
) -> None:
    """An application that always answers queued > 0 gets MAX_QUEUED_ROUNDS immediate
    re-calls after the first, then waits for its normal schedule (heartbeat 60 s)."""
    await add_tenant(sqlite_store, "greedy", application.base_url)
    application.always("/sync/greedy", Answer(body={"ok": True, "queued": 3}))
    with structlog.testing.capture_logs() as logs:
        running = start_sync_loop(sqlite_store)
        await application.wait_for(lambda calls: len(calls) > MAX_QUEUED_ROUNDS)
        await _lease_released(sqlite_store, "greedy")
    assert len(application.calls) == 1 + MAX_QUEUED_ROUNDS
    assert running.queued_signals == 1 + MAX_QUEUED_ROUNDS
    assert [e["tenant_id"] for e in logs if e["event"] == "sync_queued_rounds_capped"] == ["greedy"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"ok": true, "next_sync_after": NaN}',
        b'{"ok": true, "next_sync_after": Infinity}',
        b'{"ok": true, "next_sync_after": -5}',
        b'{"ok": true, "next_sync_after": 1e300}',
        b'{"ok": true, "next_sync_after": 1' + b"0" * 400 + b"}",
        b'{"ok": true, "next_sync_after": %d}' % (int(time.time()) * 1000),
    ],
    ids=["nan", "infinity", "negative", "1e300", "400-digits", "milliseconds"],
)
async def test_absurd_next_sync_after_is_ignored_with_a_warning(
    sqlite_store: Store, application: Application, start_sync_loop: StartSyncLoop, raw: bytes
) -> None:
    """Such a value would silence the tenant's heartbeats for ever; it is ignored: the
    heartbeats go on (interval shortened) and no DND is stored."""
    await add_tenant(sqlite_store, "odd", application.base_url)
    application.script("/sync/odd", Answer(raw=raw))
    with structlog.testing.capture_logs() as logs:
        start_sync_loop(sqlite_store, sync_interval=0.2)
        await application.wait_for(lambda calls: len(calls) >= 3)
    [state] = await sqlite_store.sync_state.all()
    assert state.dnd_until is None
    warnings = [e for e in logs if e["event"] == "sync_next_sync_after_ignored"]
    assert len(warnings) == 1 and warnings[0]["tenant_id"] == "odd"


async def test_reference_style_answer_acknowledges_each_report_once(
    sqlite_store: Store, application: Application, start_sync_loop: StartSyncLoop
) -> None:
    """The seed's example client answers {"status": "ok", "processed": N} (no ok field):
    the reports count as acknowledged, are not sent again on the following calls, and a
    warning is logged once for the tenant."""
    await add_tenant(sqlite_store, "seed", application.base_url)
    ids = await finish_messages(sqlite_store, "seed", ["sent", "error", "deferred"])
    application.always("/sync/seed", Answer(body={"status": "ok", "processed": 3}))
    with structlog.testing.capture_logs() as logs:
        running = start_sync_loop(sqlite_store, sync_interval=0.2)
        await application.wait_for(lambda calls: len(calls) >= 1)
        await _settled(sqlite_store, "seed")
        await application.wait_for(lambda calls: len(calls) >= 3)
    seen = Counter(e["id"] for call in application.calls for e in call.entries)
    assert seen == dict.fromkeys(ids, 1)
    assert running.sync_calls("seed", "ok_implied") >= 2  # the last call's answer may be in flight
    assert running.sync_calls("seed", "ok") == 0
    assert [e["tenant_id"] for e in logs if e["event"] == "sync_answer_without_ok"] == ["seed"]


async def test_explicit_ok_false_is_still_sent_again(
    sqlite_store: Store, application: Application, start_sync_loop: StartSyncLoop
) -> None:
    """ok: false keeps meaning "not acknowledged": the same events come again."""
    await add_tenant(sqlite_store, "strict", application.base_url)
    [mid] = await finish_messages(sqlite_store, "strict", ["sent"])
    application.script("/sync/strict", Answer(body={"ok": False, "error": "busy"}))
    start_sync_loop(sqlite_store)
    await application.wait_for(lambda calls: len(calls) >= 2)
    assert [[e["id"] for e in c.entries] for c in application.calls[:2]] == [[mid], [mid]]
    await _settled(sqlite_store, "strict")


async def test_untrusted_tenant_on_loopback_gets_no_call(
    sqlite_store: Store, application: Application, start_sync_loop: StartSyncLoop
) -> None:
    """A tenant-saved callback on 127.0.0.1 is refused by the default policy: no call
    is made, the refusal is counted and logged with the policy's reason, the events
    stay unreported; a trusted tenant on the same server is called."""
    await add_tenant(sqlite_store, "a-tenant", application.base_url)
    await finish_messages(sqlite_store, "a-tenant", ["sent"])
    trusted = await add_tenant(sqlite_store, "b-admin", application.base_url)
    await sqlite_store.tenants.update(trusted.id, {"target_trusted": True}, 0.0)
    await finish_messages(sqlite_store, "b-admin", ["sent"])
    with structlog.testing.capture_logs() as logs:
        running = start_sync_loop(sqlite_store, allow_private_targets=False)
        await _settled(sqlite_store, "b-admin")
        async with asyncio.timeout(5):
            while not running.sync_calls("a-tenant", "target_refused"):
                await asyncio.sleep(0.01)
    assert {c.path for c in application.calls} == {"/sync/b-admin"}
    assert await sqlite_store.outbox.unreported("a-tenant", 10)
    refusal = next(e for e in logs if e.get("tenant_id") == "a-tenant")
    assert refusal["event"] == "sync_call_failed"
    assert "private or local" in refusal["detail"]


async def test_operator_global_url_on_loopback_is_called(
    sqlite_store: Store, application: Application, start_sync_loop: StartSyncLoop
) -> None:
    """GMP_CLIENT_SYNC_URL is the operator's own: trusted under the default policy."""
    await add_tenant(sqlite_store, "legacy", None)
    await finish_messages(sqlite_store, "legacy", ["sent"])
    start_sync_loop(
        sqlite_store, allow_private_targets=False, client_sync_url=application.url("/global")
    )
    await _settled(sqlite_store, "legacy")
    assert {c.path for c in application.calls} == {"/global"}


async def test_callback_url_credentials_are_never_logged(
    sqlite_store: Store, application: Application, start_sync_loop: StartSyncLoop
) -> None:
    """A URL with user:password (refused at the API, but possible in old rows or the
    global URL) fails visibly without the password reaching any log line."""
    base = f"http://someone:pw-S3CRET@127.0.0.1:{application.port}"
    await add_tenant(sqlite_store, "creds", base)
    await finish_messages(sqlite_store, "creds", ["sent"])
    application.always("/sync/creds", Answer(status=500))
    with structlog.testing.capture_logs() as logs:
        running = start_sync_loop(sqlite_store)
        async with asyncio.timeout(5):
            while running.sync_calls("creds", "http_error") < 2:
                await asyncio.sleep(0.01)
    assert not any("S3CRET" in repr(entry) for entry in logs), logs
    assert any(e["event"] == "sync_call_failed" for e in logs)
