"""The dispatcher's account cache against a real store: one read per stale entry."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from mail_proxy.domain.models import Account
from mail_proxy.ports import Store
from mail_proxy.workers.accounts import AccountCache

from .conftest import Queue


class Counted:
    """A repository of the real store whose ``get`` calls are counted; while ``fail``
    is set they fail as a lost database would."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0
        self.fail = False

    async def get(self, *key: str) -> Any:
        self.calls += 1
        if self.fail:
            await asyncio.sleep(0)
            raise RuntimeError("database away")
        return await self.inner.get(*key)


async def test_workers_that_find_an_entry_stale_together_share_one_read(
    sqlite_store: Store, queue: Queue
) -> None:
    """Eight lane workers of one account ask at a start, and again once the entry is
    older than the ttl: each time the store is read once, and all get the answer."""
    account = Account(id="acc", host="127.0.0.1", port=25, tenant_id="t1")
    await queue.setup(account)
    accounts, tenants = Counted(sqlite_store.accounts), Counted(sqlite_store.tenants)
    cache = AccountCache(SimpleNamespace(accounts=accounts, tenants=tenants), ttl=5.0)

    async def worker(now: float) -> tuple[Account | None, object]:
        return await cache.get("t1", "acc", now), await cache.tenant_limits("t1", now)

    for now, reads in ((1000.0, 1), (1003.0, 1), (1006.0, 2)):
        answers = await asyncio.gather(*(worker(now) for _ in range(8)))
        assert {a.id for a, _ in answers if a is not None} == {"acc"}
        assert len(answers) == 8 and all(a is not None for a, _ in answers)
        assert (accounts.calls, tenants.calls) == (reads, reads)


async def test_a_failed_read_reaches_every_waiter_and_is_not_kept(
    sqlite_store: Store, queue: Queue
) -> None:
    """A read that fails fails for all who waited on it; the next ask reads again."""
    await queue.setup(Account(id="acc", host="127.0.0.1", port=25, tenant_id="t1"))
    accounts = Counted(sqlite_store.accounts)
    accounts.fail = True
    cache = AccountCache(SimpleNamespace(accounts=accounts, tenants=sqlite_store.tenants))
    results = await asyncio.gather(
        *(cache.get("t1", "acc", 1000.0) for _ in range(4)), return_exceptions=True
    )
    assert [str(r) for r in results] == ["database away"] * 4
    assert accounts.calls == 1
    accounts.fail = False
    found = await cache.get("t1", "acc", 1000.0)
    assert found is not None and found.id == "acc"
    assert accounts.calls == 2
