"""Work announced across processes (``WorkSignals``), on both backends.

Two stores opened on one database stand for two processes. On PostgreSQL an enqueue
or an activation through one wakes the other's listener and never its own; a
transaction that rolls back announces nothing. On SQLite there is nothing to listen
to: ``watch`` only waits for ``stop``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from mail_proxy.domain.models import NewMessage, Sent, Tenant
from mail_proxy.ports import Store
from mail_proxy.settings import Settings
from mail_proxy.storage import open_store

NOW = 1_700_000_000.0


def _message(id_: str) -> NewMessage:
    payload = {"from": "a@example.com", "to": ["b@example.com"], "subject": "s"}
    return NewMessage("acme", id_, "smtp1", 2, payload)


class Watching:
    """A store's listener running in the background, counting wake-ups."""

    def __init__(self, store: Store) -> None:
        self.calls = 0
        self._woken = asyncio.Event()
        self._stop = asyncio.Event()
        self.task = asyncio.create_task(store.work_signals.watch(self._on_work, self._stop))

    def _on_work(self) -> None:
        self.calls += 1
        self._woken.set()

    async def woken(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self._woken.wait(), timeout)
        self._woken.clear()

    async def quiet(self, seconds: float = 0.3) -> bool:
        """True when no wake-up came within ``seconds``."""
        try:
            await asyncio.wait_for(self._woken.wait(), seconds)
        except TimeoutError:
            return True
        return False

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.wait_for(self.task, 10)


@pytest.fixture
async def other(db_settings: Settings, store: Store) -> AsyncIterator[Store]:
    """A second store on the same database: another process."""
    opened = await open_store(db_settings)
    yield opened
    await opened.close()


async def test_watch_returns_when_stopped(store: Store) -> None:
    watching = Watching(store)
    await asyncio.sleep(0.05)
    await watching.stop()
    assert watching.task.done() and watching.task.exception() is None


@pytest.mark.postgres
@pytest.mark.parametrize("db_settings", ["postgres"], indirect=True)
async def test_an_enqueue_elsewhere_wakes_the_listener(store: Store, other: Store) -> None:
    await store.tenants.create(Tenant(id="acme"), None, NOW)
    watching = Watching(other)
    try:
        await watching.woken()  # listening: once for what was announced before
        await other.intake.enqueue([_message("own")], NOW)
        assert await watching.quiet(), "a process was woken by its own enqueue"
        await store.intake.enqueue([_message("m1")], NOW)
        await watching.woken()
        await store.intake.enqueue([_message("m1")], NOW)  # replaced: due again
        await watching.woken()
        await store.control.suspend("acme", "*")
        assert await watching.quiet(), "a suspension announced work"
        await store.control.activate("acme", None)
        await watching.woken()
    finally:
        await watching.stop()


@pytest.mark.postgres
@pytest.mark.parametrize("db_settings", ["postgres"], indirect=True)
async def test_a_rejected_enqueue_announces_nothing(store: Store, other: Store) -> None:
    """A resubmission refused as already sent makes nothing due."""
    await store.tenants.create(Tenant(id="acme"), None, NOW)
    await store.intake.enqueue([_message("m1")], NOW)
    claimed = await store.queue.claim(now=NOW, lease_seconds=60, limit=1, per_account=1)
    assert await store.queue.finish_many(
        [(claimed[0].record.pk, claimed[0].lease_token, Sent(NOW))]
    )
    watching = Watching(other)
    try:
        await watching.woken()
        await store.intake.enqueue([_message("m1")], NOW)
        assert await watching.quiet()
    finally:
        await watching.stop()


@pytest.mark.postgres
@pytest.mark.parametrize("db_settings", ["postgres"], indirect=True)
async def test_the_listener_comes_back_after_its_connection_is_killed(
    store: Store, other: Store
) -> None:
    """A listening connection terminated by the server is replaced; the listener
    wakes once when back (for what it may have missed), then as before."""
    import sqlalchemy as sa

    from mail_proxy.storage.store import SqlStore
    from mail_proxy.storage.work_signals import channel_for

    await store.tenants.create(Tenant(id="acme"), None, NOW)
    watching = Watching(other)
    try:
        await watching.woken()
        assert isinstance(store, SqlStore)
        listen = f'LISTEN "{channel_for(store._db.target)}"'
        async with store.writer_engine.connect() as conn:
            killed = await conn.scalar(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE query = :listen AND pid <> pg_backend_pid()"
                ),
                {"listen": listen},
            )
            await conn.commit()
        assert killed == 1
        await watching.woken(timeout=15)  # back, and says so
        await store.intake.enqueue([_message("after")], NOW)
        await watching.woken()
    finally:
        await watching.stop()
