"""Rate-limit windows in the shared send log, instance settings, command log."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from mail_proxy.domain.models import RateLimits
from mail_proxy.domain.rate_limit import Allowed, WaitUntil
from mail_proxy.settings import Settings
from mail_proxy.storage import open_store

if TYPE_CHECKING:
    from conftest import Queue

NOW = 1_700_000_000.0


async def test_unlimited_account_is_always_allowed_and_not_logged(q: Queue) -> None:
    """No limits: no database work at all."""
    for _ in range(3):
        assert await q.store.send_log.reserve("acme", "a", RateLimits(), NOW) == Allowed()
    assert await q.raw_rows("SELECT * FROM send_log") == []


async def test_minute_window_blocks_until_oldest_send_leaves(q: Queue) -> None:
    """Two per minute: the third waits until the first send is 60 s old."""
    limits = RateLimits(per_minute=2)
    assert await q.store.send_log.reserve("acme", "a", limits, NOW) == Allowed()
    assert await q.store.send_log.reserve("acme", "a", limits, NOW + 10) == Allowed()
    assert await q.store.send_log.reserve("acme", "a", limits, NOW + 20) == WaitUntil(NOW + 60)
    assert await q.store.send_log.reserve("acme", "a", limits, NOW + 60) == Allowed()


async def test_windows_are_per_account_and_per_tenant(q: Queue) -> None:
    """Another account or the same account id of another tenant has its own log."""
    limits = RateLimits(per_minute=1)
    assert await q.store.send_log.reserve("acme", "a", limits, NOW) == Allowed()
    assert await q.store.send_log.reserve("acme", "b", limits, NOW) == Allowed()
    assert await q.store.send_log.reserve("beta", "a", limits, NOW) == Allowed()
    assert isinstance(await q.store.send_log.reserve("acme", "a", limits, NOW), WaitUntil)


async def test_hour_and_day_windows(q: Queue) -> None:
    """The longest blocked window decides; refused sends are not logged."""
    hourly = RateLimits(per_minute=10, per_hour=2)
    await q.store.send_log.reserve("acme", "a", hourly, NOW)
    await q.store.send_log.reserve("acme", "a", hourly, NOW + 100)
    assert await q.store.send_log.reserve("acme", "a", hourly, NOW + 200) == WaitUntil(NOW + 3600)
    daily = RateLimits(per_day=2)
    assert await q.store.send_log.reserve("acme", "a", daily, NOW + 300) == WaitUntil(NOW + 86400)
    assert len(await q.raw_rows("SELECT * FROM send_log")) == 2


async def test_send_log_older_than_a_day_is_purged(q: Queue) -> None:
    """Rows that no window can see any more are deleted now and then."""
    limits = RateLimits(per_day=100)
    await q.store.send_log.reserve("acme", "a", limits, NOW)
    await q.store.send_log.reserve("acme", "a", limits, NOW + 86400 + 1000)
    assert [row.ts for row in await q.raw_rows("SELECT ts FROM send_log")] == [NOW + 86400 + 1000]


async def test_instance_settings_merge_and_remove(q: Queue) -> None:
    """Given keys are set, None removes a key, others stay; values keep their JSON type."""
    assert await q.store.instance.get() == {}
    await q.store.instance.update({"bounce": {"host": "imap"}, "flag": True})
    merged = await q.store.instance.update({"flag": None, "n": 3})
    assert merged == {"bounce": {"host": "imap"}, "n": 3}
    assert await q.store.instance.get() == merged


async def test_command_log_filters_and_pages(q: Queue) -> None:
    """Entries come oldest first, filtered by time and tenant."""
    for i, tenant in enumerate(["acme", None, "acme"]):
        await q.store.audit.record(
            ts=NOW + i,
            method="POST",
            path=f"/commands/{i}",
            actor="admin",
            tenant_id=tenant,
            status_code=200,
            body={"i": i} if tenant else None,
        )
    entries = await q.store.audit.entries()
    assert [e.path for e in entries] == ["/commands/0", "/commands/1", "/commands/2"]
    assert entries[0].body == {"i": 0} and entries[1].body is None
    assert [e.path for e in await q.store.audit.entries(tenant_id="acme", since=NOW + 1)] == [
        "/commands/2"
    ]
    assert [e.ts for e in await q.store.audit.entries(limit=1, offset=1)] == [int(NOW) + 1]


async def test_concurrent_reservations_never_exceed_the_limit(db_settings: Settings) -> None:
    """Several stores (own connections, like separate processes) racing for one
    account's minute window: exactly the limit gets through."""
    stores = [await open_store(db_settings) for _ in range(4)]
    limits = RateLimits(per_minute=5)
    try:
        decisions = await asyncio.gather(
            *(stores[i % 4].send_log.reserve("acme", "a", limits, NOW + i / 100) for i in range(20))
        )
    finally:
        for store in stores:
            await store.close()
    assert sum(isinstance(d, Allowed) for d in decisions) == 5


async def test_instance_settings_are_encrypted_at_rest(q: Queue) -> None:
    """The bounce mailbox password in instance settings never reaches the disk in clear."""
    await q.store.instance.update({"bounce": {"imap_password": "s3cret-bounce-pw"}})
    dumped = repr(await q.raw_rows("SELECT * FROM instance_settings"))
    assert "s3cret-bounce-pw" not in dumped
    settings = await q.store.instance.get()
    assert settings["bounce"]["imap_password"] == "s3cret-bounce-pw"
