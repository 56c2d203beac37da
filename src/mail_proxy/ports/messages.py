"""The port of message listings: what the API and the dashboard show of the queue."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from mail_proxy.domain.models import Event, MessageRecord, Status


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """Which messages a listing or count covers. ``None`` fields do not filter."""

    tenant_id: str | None = None
    status: Status | None = None
    active_only: bool = False
    batch_code: str | None = None
    account_id: str | None = None
    message_id: str | None = None
    text: str | None = None
    """Case-insensitive part of the stored message (addresses, subject, body)."""
    since: float | None = None
    until: float | None = None
    """``created_at`` bounds, both inclusive."""


@dataclass(frozen=True, slots=True)
class DeleteResult:
    removed: list[str]
    not_found: list[str]
    unauthorized: list[str]


class Messages(ABC):
    """Read, count, delete and clean up queued and finished messages."""

    @abstractmethod
    async def get(self, tenant_id: str, message_id: str) -> MessageRecord | None: ...

    @abstractmethod
    async def search(
        self, flt: MessageFilter, *, limit: int = 100, offset: int = 0
    ) -> list[MessageRecord]:
        """Ordered by pk (submission order): newest first is not useful for a queue."""

    @abstractmethod
    async def count(self, flt: MessageFilter) -> int: ...

    @abstractmethod
    async def count_by_status(self, tenant_id: str | None = None) -> dict[Status, int]: ...

    @abstractmethod
    async def events(self, tenant_id: str, message_id: str) -> list[Event]:
        """The message's events, oldest first."""

    @abstractmethod
    async def events_of(self, message_pks: Sequence[int]) -> list[Event]:
        """Events of the messages with these pks, oldest first."""

    @abstractmethod
    async def delete(self, tenant_id: str, ids: Sequence[str]) -> DeleteResult:
        """``unauthorized``: ids that exist only under another tenant."""

    @abstractmethod
    async def cleanup(self, older_than: float, tenant_id: str | None = None) -> int:
        """Remove sent/error messages finished before ``older_than`` whose events
        are all reported; returns how many."""

    @abstractmethod
    async def page(
        self, flt: MessageFilter, *, before_pk: int | None, limit: int
    ) -> list[MessageRecord]:
        """Newest first, keyset-paged: the messages with ``pk < before_pk`` (any
        page costs what the first does, where an offset grows with the page)."""

    @abstractmethod
    async def retry_now(self, tenant_id: str, message_id: str, now: float) -> bool:
        """Make a waiting (pending or deferred, not leased) message due at ``now``;
        False when there is no such message."""
