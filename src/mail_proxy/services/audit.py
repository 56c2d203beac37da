"""The audit trail of state-changing calls: reading it, and forgetting old entries.

Entries are written by the API's command-log middleware as calls happen; this is
what an operator (or the retention loop) does with them afterwards.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from mail_proxy.domain.models import CommandLogEntry
from mail_proxy.ports import Store

EXPORT_PAGE = 500
"""Entries read per query while exporting: the whole log never sits in memory."""


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which entries: a time window (inclusive, Unix s), the tenant acted on, and
    text the ``METHOD /path`` contains. ``None`` fields do not filter."""

    since: float | None = None
    until: float | None = None
    tenant_id: str | None = None
    endpoint: str | None = None


class AuditService:
    def __init__(
        self,
        store: Store,
        *,
        retention_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._retention = retention_seconds
        self._clock = clock

    async def entries(
        self, flt: AuditFilter, *, limit: int = 100, offset: int = 0
    ) -> list[CommandLogEntry]:
        """In call order."""
        return await self._store.audit.entries(
            since=flt.since,
            until=flt.until,
            tenant_id=flt.tenant_id,
            endpoint=flt.endpoint,
            limit=limit,
            offset=offset,
        )

    async def export(self, flt: AuditFilter) -> AsyncIterator[CommandLogEntry]:
        """Every matching entry, read a page at a time as the consumer goes."""
        offset = 0
        while True:
            page = await self.entries(flt, limit=EXPORT_PAGE, offset=offset)
            for entry in page:
                yield entry
            if len(page) < EXPORT_PAGE:
                return
            offset += EXPORT_PAGE

    async def purge(self) -> int:
        """Forget entries older than the retention period; how many went."""
        return await self._store.audit.purge(self._clock() - self._retention)
