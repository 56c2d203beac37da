"""Lease proofs: concurrent claimers on separate connections take every message
exactly once, and the leases of a claimer that vanished are taken over."""

from __future__ import annotations

import asyncio

from mail_proxy.domain.models import NewMessage, Sent, Status
from mail_proxy.ports import Store
from mail_proxy.settings import Settings
from mail_proxy.storage import open_store

NOW = 1_700_000_000.0
TOTAL = 10_000
CLAIMERS = 4


def _batch(start: int, size: int) -> list[NewMessage]:
    return [
        NewMessage("acme", f"m{i}", f"smtp{i % 7}", i % 4, {"subject": str(i)})
        for i in range(start, start + size)
    ]


async def _drain(store: Store, seen: list[int]) -> None:
    """Claim and send until nothing is due; note every pk this claimer got."""
    while claimed := await store.queue.claim(
        now=NOW, lease_seconds=600, limit=100, per_account=100
    ):
        seen.extend(c.record.pk for c in claimed)
        outcome = Sent(ts=NOW)
        applied = await store.queue.finish_many(
            [(c.record.pk, c.lease_token, outcome) for c in claimed]
        )
        assert all(applied)
        await asyncio.sleep(0)


async def test_concurrent_claimers_take_each_message_exactly_once(db_settings: Settings) -> None:
    """Several stores (own connections) drain 10,000 messages: no pk twice, none left."""
    stores = [await open_store(db_settings) for _ in range(CLAIMERS)]
    try:
        for start in range(0, TOTAL, 1000):
            await stores[0].intake.enqueue(_batch(start, 1000), NOW)
        seen: list[list[int]] = [[] for _ in stores]
        await asyncio.gather(*(_drain(s, got) for s, got in zip(stores, seen, strict=True)))
        every = [pk for got in seen for pk in got]
        assert len(every) == TOTAL
        assert len(set(every)) == TOTAL
        assert sum(1 for got in seen if got) > 1, "the claimers did not actually overlap"
        assert (await stores[0].messages.count_by_status())[Status.SENT] == TOTAL
    finally:
        for store in stores:
            await store.close()


async def test_vanished_claimers_leases_are_taken_over_after_expiry(db_settings: Settings) -> None:
    """A claimer that stops without finishing blocks nobody once its lease expired,
    and its late finish is refused."""
    dead, alive = await open_store(db_settings), await open_store(db_settings)
    try:
        await dead.intake.enqueue(_batch(0, 50), NOW)
        lost = await dead.queue.claim(now=NOW, lease_seconds=30, limit=50, per_account=50)
        await dead.close()
        assert (
            await alive.queue.claim(now=NOW + 29, lease_seconds=30, limit=50, per_account=50) == []
        )
        taken = await alive.queue.claim(now=NOW + 30, lease_seconds=30, limit=50, per_account=50)
        assert {c.record.pk for c in taken} == {c.record.pk for c in lost}
        dead = await open_store(db_settings)
        late = await dead.queue.finish_many(
            [(c.record.pk, c.lease_token, Sent(ts=NOW)) for c in lost]
        )
        assert late == [False] * 50
        on_time = [(c.record.pk, c.lease_token, Sent(ts=NOW + 31)) for c in taken]
        assert await alive.queue.finish_many(on_time) == [True] * 50
    finally:
        await dead.close()
        await alive.close()
