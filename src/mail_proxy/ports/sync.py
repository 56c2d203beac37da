"""The ports of client sync: the outbox of delivery reports and the per-tenant
bookkeeping every process shares (last sync, Do Not Disturb, who is reporting)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from mail_proxy.domain.models import Event


@dataclass(frozen=True, slots=True)
class TenantSyncState:
    """The sync bookkeeping of one tenant, shared by every process."""

    tenant_id: str
    last_sync_ts: float | None
    dnd_until: float | None
    lease_holder: str | None = None
    lease_until: float | None = None


class Outbox(ABC):
    """Events waiting to be reported, and their acknowledgement."""

    @abstractmethod
    async def unreported(self, tenant_id: str | None, limit: int) -> list[Event]:
        """Oldest first (event_id order). ``tenant_id=None``: every tenant."""

    @abstractmethod
    async def tenants_with_unreported(self) -> list[str]: ...

    @abstractmethod
    async def ack(self, event_ids: Sequence[int], now: float) -> int:
        """Set ``reported_ts`` on exactly these events (and on messages fully reported)."""

    @abstractmethod
    async def unreported_stats(self) -> tuple[int, float | None]:
        """(events awaiting report, ts of the oldest)."""


class SyncState(ABC):
    """When each tenant was synced, its Do Not Disturb, and the reporting lease."""

    @abstractmethod
    async def all(self) -> list[TenantSyncState]: ...

    @abstractmethod
    async def set(
        self,
        tenant_id: str,
        *,
        last_sync_ts: float | None = None,
        dnd_until: float | None = None,
        clear_dnd: bool = False,
    ) -> None:
        """``None`` leaves a value as it is; ``clear_dnd`` ends Do Not Disturb."""

    @abstractmethod
    async def take_lease(self, tenant_id: str, holder: str, now: float, until: float) -> bool:
        """Hold (or renew) the right to report to the tenant until ``until``; False when
        another holder's lease has not expired: across processes, one sync loop at a
        time reports a tenant."""

    @abstractmethod
    async def release_lease(self, tenant_id: str, holder: str) -> None:
        """Give the lease up if ``holder`` still has it."""
