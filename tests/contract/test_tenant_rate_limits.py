"""Tenant-wide rate limits in the shared send log: counted over all its accounts."""

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
TWO_A_MINUTE = RateLimits(per_minute=2)


async def test_tenant_window_spans_its_accounts_not_other_tenants(q: Queue) -> None:
    """Two per minute for the tenant: a third send on any of its accounts waits until
    the first is 60 s old; another tenant is not counted."""
    free = RateLimits()
    reserve = q.store.send_log.reserve
    assert await reserve("acme", "a", free, NOW, tenant_limits=TWO_A_MINUTE) == Allowed()
    assert await reserve("acme", "b", free, NOW + 5, tenant_limits=TWO_A_MINUTE) == Allowed()
    assert await reserve("other", "a", free, NOW + 6, tenant_limits=TWO_A_MINUTE) == Allowed()
    assert await reserve("acme", "c", free, NOW + 10, tenant_limits=TWO_A_MINUTE) == WaitUntil(
        NOW + 60
    )
    assert await reserve("acme", "c", free, NOW + 60, tenant_limits=TWO_A_MINUTE) == Allowed()


async def test_account_and_tenant_limits_both_apply(q: Queue) -> None:
    """The stricter wins: the account's own limit holds even when the tenant has room,
    and a refused send is not logged."""
    one = RateLimits(per_minute=1)
    big = RateLimits(per_hour=100)
    assert await q.store.send_log.reserve("acme", "a", one, NOW, tenant_limits=big) == Allowed()
    assert await q.store.send_log.reserve(
        "acme", "a", one, NOW + 1, tenant_limits=big
    ) == WaitUntil(NOW + 60)
    assert len(await q.raw_rows("SELECT * FROM send_log")) == 1


async def test_concurrent_tenant_reservations_never_exceed_the_limit(
    db_settings: Settings,
) -> None:
    """Four stores (four processes), three accounts of one tenant: 20 attempts at
    once, exactly the tenant's 5 per minute get through."""
    stores = [await open_store(db_settings) for _ in range(4)]
    limits = RateLimits(per_minute=5)
    try:
        decisions = await asyncio.gather(
            *(
                stores[i % 4].send_log.reserve(
                    "acme", f"acc{i % 3}", RateLimits(), NOW, tenant_limits=limits
                )
                for i in range(20)
            )
        )
    finally:
        for store in stores:
            await store.close()
    assert sum(isinstance(d, Allowed) for d in decisions) == 5
