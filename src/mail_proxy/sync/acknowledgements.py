"""Acknowledging reported events in the background, one batch per tenant at a time.

Marking a batch reported is a database write, and on a busy queue it waits for the
writer behind the dispatcher's own writes. Doing it inline would add that wait to
every report; instead the sync loop hands the batch over here and goes on with the
tenant's next call, fetching events *other than* the ones still being acknowledged.

Order stays intact: a batch is handed over only after the application answered
``ok: true``, so anything sent next is sent after it arrived. At most one
acknowledgement per tenant is in flight; the next one waits for it, which bounds
the work (and the ids to skip) to one batch. A failed write is logged and its
events stay unreported, so they are sent again later: at least once, never lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog

from mail_proxy.ports import Store

log = structlog.get_logger(__name__)


class Acknowledgements:
    """Per tenant, the batch being marked reported and the task doing it."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._ids: dict[str, frozenset[int]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def in_flight(self, tenant_id: str) -> frozenset[int]:
        """Event ids of the tenant still being acknowledged: skip them when fetching.

        Take this *before* reading unreported events: ids acknowledged after the
        read are then still skipped, ids acknowledged before it are not returned.
        """
        return self._ids.get(tenant_id, frozenset())

    async def submit(self, tenant_id: str, event_ids: Sequence[int], now: float) -> None:
        """Start acknowledging ``event_ids`` once the tenant's previous batch is done."""
        previous = self._tasks.get(tenant_id)
        if previous is not None:
            await asyncio.wait({previous})
        ids = frozenset(event_ids)
        self._ids[tenant_id] = ids
        task = asyncio.create_task(self._ack(tenant_id, ids, now), name=f"ack-{tenant_id}")
        self._tasks[tenant_id] = task

    async def _ack(self, tenant_id: str, ids: frozenset[int], now: float) -> None:
        try:
            await self._store.outbox.ack(sorted(ids), now)
        except Exception:
            log.exception("sync_ack_failed", tenant_id=tenant_id, events=len(ids))
        finally:
            if self._ids.get(tenant_id) is ids:
                del self._ids[tenant_id]
                del self._tasks[tenant_id]

    async def wait(self, tenant_id: str) -> None:
        """Until the tenant's acknowledgement in flight (if any) is written: before
        another process may report to the tenant, what this one sent must be marked."""
        task = self._tasks.get(tenant_id)
        if task is not None:
            await asyncio.wait({task})

    async def drain(self) -> None:
        """Wait for every acknowledgement in flight (graceful stop)."""
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks)
