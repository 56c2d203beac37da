"""What the dashboard's overview shows: the queue's state at a glance.

Counts by status, messages per minute over the last hours, the age of the oldest
waiting message, why messages are deferred, each rate-limited account's sends
against its limits and each tenant's client sync health. Every figure is one
indexed query (``ports.Overview``), so a dashboard left open, polling, does not
slow the API down. ``tenant_id`` None is the admin's view of every tenant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mail_proxy.domain.models import Account, Status
from mail_proxy.ports import AccountSends, MinuteCount, Store

CHART_MINUTES = 180
DEFERRED_REASONS = 10


@dataclass(frozen=True, slots=True)
class AccountRate:
    """A rate-limited account and its sends in each window (None: none logged)."""

    account: Account
    sends: AccountSends | None


@dataclass(frozen=True, slots=True)
class TenantHealth:
    tenant_id: str
    name: str | None
    active: bool
    last_sync_ts: float | None
    dnd_until: float | None
    unreported: int
    oldest_unreported_ts: float | None


@dataclass(frozen=True, slots=True)
class OverviewData:
    now: float
    counts: dict[Status, int]
    per_minute: list[MinuteCount]
    """Every minute of the chart's window, oldest first, zeros included."""
    oldest_active_age: float | None
    deferred_reasons: list[tuple[str, int]]
    accounts: list[AccountRate]
    tenants: list[TenantHealth]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class DashboardService:
    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock

    async def overview(self, tenant_id: str | None) -> OverviewData:
        now = self._clock()
        oldest = await self._store.overview.oldest_active(tenant_id)
        return OverviewData(
            now=now,
            counts=await self._store.messages.count_by_status(tenant_id),
            per_minute=await self._per_minute(now, tenant_id),
            oldest_active_age=None if oldest is None else max(0.0, now - oldest),
            deferred_reasons=await self._store.overview.deferred_reasons(
                tenant_id, DEFERRED_REASONS
            ),
            accounts=await self._account_rates(tenant_id, now),
            tenants=await self._tenant_health(tenant_id),
        )

    async def newest(self, tenant_id: str | None) -> int:
        """The newest message's pk: a live page reloads its rows when this moves."""
        return await self._store.overview.newest_pk(tenant_id)

    async def _per_minute(self, now: float, tenant_id: str | None) -> list[MinuteCount]:
        last = int(now // 60)
        first = last - CHART_MINUTES + 1
        found = {
            m.minute: m for m in await self._store.overview.per_minute(first * 60.0, tenant_id)
        }
        return [found.get(m, MinuteCount(m, 0, 0, 0)) for m in range(first, last + 1)]

    async def _account_rates(self, tenant_id: str | None, now: float) -> list[AccountRate]:
        sends = {
            (s.tenant_id, s.account_id): s
            for s in await self._store.overview.account_sends(tenant_id, now)
        }
        return [
            AccountRate(a, sends.get((a.tenant_id, a.id)))
            for a in await self._store.accounts.all(tenant_id)
            if a.limit_per_minute or a.limit_per_hour or a.limit_per_day
        ]

    async def _tenant_health(self, tenant_id: str | None) -> list[TenantHealth]:
        backlogs = {b.tenant_id: b for b in await self._store.overview.backlogs(tenant_id)}
        states = {s.tenant_id: s for s in await self._store.sync_state.all()}
        tenants = await self._store.tenants.all()
        health = []
        for tenant in tenants:
            if tenant_id is not None and tenant.id != tenant_id:
                continue
            state = states.get(tenant.id)
            backlog = backlogs.get(tenant.id)
            health.append(
                TenantHealth(
                    tenant.id,
                    tenant.name,
                    tenant.active,
                    state.last_sync_ts if state else None,
                    state.dnd_until if state else None,
                    backlog.unreported if backlog else 0,
                    backlog.oldest_ts if backlog else None,
                )
            )
        return health
