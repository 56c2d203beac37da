"""Reporting leases: one holder per tenant across stores (processes), on both backends."""

from __future__ import annotations

import asyncio

from mail_proxy.domain.models import Tenant
from mail_proxy.ports import Store
from mail_proxy.settings import Settings
from mail_proxy.storage import open_store

NOW = 1_700_000_000.0


async def _lease(store: Store, tenant_id: str) -> tuple[str | None, float | None]:
    [state] = [s for s in await store.sync_state.all() if s.tenant_id == tenant_id]
    return state.lease_holder, state.lease_until


async def test_one_holder_until_release_or_expiry(db_settings: Settings) -> None:
    """A takes; B is refused while A's lease runs, A renews; after A releases or its
    lease expires, B takes it. Release by a non-holder changes nothing."""
    a, b = await open_store(db_settings), await open_store(db_settings)
    try:
        await a.tenants.create(Tenant(id="acme"), None, NOW)
        assert await _lease(a, "acme") == (None, None)
        assert await a.sync_state.take_lease("acme", "A", NOW, NOW + 30)
        assert not await b.sync_state.take_lease("acme", "B", NOW + 1, NOW + 31)
        assert await a.sync_state.take_lease("acme", "A", NOW + 10, NOW + 40)
        assert await _lease(b, "acme") == ("A", NOW + 40)
        await b.sync_state.release_lease("acme", "B")
        assert await _lease(b, "acme") == ("A", NOW + 40)
        await a.sync_state.release_lease("acme", "A")
        assert await b.sync_state.take_lease("acme", "B", NOW + 11, NOW + 41)
        assert not await a.sync_state.take_lease("acme", "A", NOW + 40, NOW + 70)
        assert await a.sync_state.take_lease("acme", "A", NOW + 42, NOW + 72)
        assert await _lease(b, "acme") == ("A", NOW + 72)
        assert not await a.sync_state.take_lease("ghost", "A", NOW, NOW + 30)
    finally:
        await a.close()
        await b.close()


async def test_concurrent_takers_never_both_win(db_settings: Settings) -> None:
    """Eight stores race for twenty free tenants: each tenant ends with one winner."""
    stores = [await open_store(db_settings) for _ in range(8)]
    try:
        for n in range(20):
            await stores[0].tenants.create(Tenant(id=f"t{n}"), None, NOW)
        for n in range(20):
            won = await asyncio.gather(
                *(
                    s.sync_state.take_lease(f"t{n}", f"h{i}", NOW, NOW + 30)
                    for i, s in enumerate(stores)
                )
            )
            assert sum(won) == 1, (n, won)
            holder, _ = await _lease(stores[0], f"t{n}")
            assert holder == f"h{won.index(True)}"
    finally:
        for s in stores:
            await s.close()
