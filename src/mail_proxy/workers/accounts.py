"""What the dispatcher needs to know about an account before it sends.

``AccountCache`` re-reads accounts and tenants every few seconds, so changed
credentials or limits apply quickly without a query per message. ``RateGate``
applies the account's sliding-window limits and its tenant's (``rate_limits``,
counted over all the tenant's accounts; ``domain.rate_limit``) through the store's
shared send log: over a limit, the message is held until the window reopens (not
a failed attempt) or rejected, by the account's ``limit_behavior``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from mail_proxy.domain.models import (
    Account,
    Deferred,
    Failed,
    LimitBehavior,
    Outcome,
    RateLimits,
    Tenant,
)
from mail_proxy.domain.rate_limit import WaitUntil, tenant_limits
from mail_proxy.metrics import Metrics
from mail_proxy.ports import Store

ACCOUNT_CACHE_SECONDS = 5.0
RATE_LIMITED = "rate limited"

AccountKey = tuple[str, str]
T = TypeVar("T")
_TenantEntry = tuple[float, Tenant | None, RateLimits]


class AccountCache:
    """Accounts by (tenant_id, account_id), each kept ``ttl`` seconds."""

    def __init__(self, store: Store, ttl: float = ACCOUNT_CACHE_SECONDS) -> None:
        self._store = store
        self._ttl = ttl
        self._entries: dict[AccountKey, tuple[float, Account | None]] = {}
        self._tenants: dict[str, _TenantEntry] = {}
        self._loading: dict[tuple[str, ...], asyncio.Future[Any]] = {}

    def peek(self, key: AccountKey) -> Account | None:
        """The cached account, however old, without a query."""
        entry = self._entries.get(key)
        return entry[1] if entry else None

    async def get(self, tenant_id: str, account_id: str, now: float) -> Account | None:
        key = (tenant_id, account_id)
        entry = self._entries.get(key)
        if entry is not None and now - entry[0] < self._ttl:
            return entry[1]

        async def load() -> Account | None:
            account = await self._store.accounts.get(tenant_id, account_id)
            self._entries[key] = (now, account)
            return account

        return await self._once(("account", *key), load)

    async def tenant(self, tenant_id: str, now: float) -> Tenant | None:
        """The tenant (its endpoint and credentials fetch attachments)."""
        return (await self._tenant_entry(tenant_id, now))[1]

    async def tenant_limits(self, tenant_id: str, now: float) -> RateLimits:
        """The tenant's own rate limits (over all its accounts)."""
        return (await self._tenant_entry(tenant_id, now))[2]

    async def _tenant_entry(self, tenant_id: str, now: float) -> _TenantEntry:
        entry = self._tenants.get(tenant_id)
        if entry is not None and now - entry[0] < self._ttl:
            return entry

        async def load() -> _TenantEntry:
            tenant = await self._store.tenants.get(tenant_id)
            limits = tenant_limits(tenant.rate_limits if tenant else None)
            entry = self._tenants[tenant_id] = (now, tenant, limits)
            return entry

        return await self._once(("tenant", tenant_id), load)

    async def _once(self, key: tuple[str, ...], load: Callable[[], Awaitable[T]]) -> T:
        """One read for everyone who asks at once. An account's lane workers find its
        entry stale together (at a start, and every ``ttl`` under load): each used to
        read it, a burst of queries that on PostgreSQL opened pool connections too."""
        pending: asyncio.Future[T] | None = self._loading.get(key)
        if pending is None:
            pending = self._loading[key] = asyncio.ensure_future(load())
            pending.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(pending)  # one waiter's cancel leaves the others' read

    def _forget(self, key: tuple[str, ...], done: asyncio.Future[Any]) -> None:
        if self._loading.get(key) is done:
            del self._loading[key]
        if not done.cancelled():
            done.exception()  # seen here: every waiter may have been cancelled meanwhile


class RateGate:
    """Per-account rate limits, remembering locally when a full window reopens."""

    def __init__(self, store: Store, metrics: Metrics) -> None:
        self._store = store
        self._metrics = metrics
        self._held_until: dict[AccountKey, float] = {}

    async def check(self, account: Account, whole: RateLimits, now: float) -> Outcome | None:
        """None when the send may go (and is recorded); else the hold or the failure.
        ``whole``: the tenant's limits."""
        limits = account.rate_limits
        if limits.unlimited and whole.unlimited:
            return None
        key = (account.tenant_id, account.id)
        until = self._held_until.get(key, 0.0)
        if until <= now:
            decision = await self._store.send_log.reserve(
                account.tenant_id, account.id, limits, now, tenant_limits=whole
            )
            if not isinstance(decision, WaitUntil):
                return None
            until = self._held_until[key] = decision.ts
        self._metrics.rate_limited.labels(account_id=account.id).inc()
        if account.limit_behavior is LimitBehavior.REJECT:
            return Failed(now, "rate limit exceeded")
        return Deferred(
            until=until,
            reason=RATE_LIMITED,
            ts=now,
            details={"rate_limited": True},
            counts_attempt=False,
        )
