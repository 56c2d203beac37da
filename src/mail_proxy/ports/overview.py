"""The port of the dashboard's overview: aggregate reads of the queue, the send log
and the outbox, each one indexed query so a dashboard left open costs little."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AccountSends:
    """Sends of one rate-limited account within each sliding window."""

    tenant_id: str
    account_id: str
    last_minute: int
    last_hour: int
    last_day: int


@dataclass(frozen=True, slots=True)
class MinuteCount:
    minute: int
    """Unix seconds // 60."""
    queued: int
    sent: int
    failed: int


@dataclass(frozen=True, slots=True)
class Backlog:
    """Events one tenant's application has not acknowledged yet."""

    tenant_id: str
    unreported: int
    oldest_ts: float | None


class Overview(ABC):
    @abstractmethod
    async def per_minute(self, since: float, tenant_id: str | None) -> list[MinuteCount]:
        """Messages queued since ``since`` by minute, with how many of them went out
        and how many failed (the send log holds only rate-limited accounts' sends)."""

    @abstractmethod
    async def oldest_active(self, tenant_id: str | None) -> float | None:
        """``created_at`` of the first submitted message still pending or deferred."""

    @abstractmethod
    async def deferred_reasons(self, tenant_id: str | None, limit: int) -> list[tuple[str, int]]:
        """Deferred messages grouped by their last error, most frequent first."""

    @abstractmethod
    async def account_sends(self, tenant_id: str | None, now: float) -> list[AccountSends]: ...

    @abstractmethod
    async def backlogs(self, tenant_id: str | None) -> list[Backlog]: ...

    @abstractmethod
    async def newest_pk(self, tenant_id: str | None) -> int:
        """The pk of the newest message (0 when none): what live pages poll."""
