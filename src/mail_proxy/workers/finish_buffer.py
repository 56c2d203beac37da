"""Group commit of delivery outcomes: many finishes, one transaction.

Committing each outcome on its own would make the database, not SMTP, the limit
of delivery speed. Outcomes wait here a few milliseconds (or until a batch is
full) and go to ``Queue.finish_many`` together; leases given back untouched go to
``Queue.release`` the same way. A message is finished only when that commit
succeeds: if the database is unavailable, the batch stays here and is tried again,
and if the process dies first the lease expires and another dispatcher sends the
message again (the only way a message is sent twice; see docs/delivery.md).

Any other failure is not retried: the store already records an outcome it cannot
store in a safe form, so what still fails here would fail forever and hold back every
outcome behind it. Such a batch is dropped with an error in the log; its leases
expire and the messages are tried again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog

from mail_proxy.domain.models import ClaimedMessage, Deferred, Failed, Outcome, Sent
from mail_proxy.errors import StorageUnavailable
from mail_proxy.metrics import Metrics
from mail_proxy.ports import Store

log = structlog.get_logger(__name__)

T = TypeVar("T")

FLUSH_DELAY = 0.004
FLUSH_SIZE = 100
RETRY_DELAY = 0.5


@dataclass(frozen=True, slots=True)
class _Pending:
    claimed: ClaimedMessage
    outcome: Outcome


class FinishBuffer:
    """Collects outcomes and released leases; ``run`` commits them in batches."""

    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        *,
        on_flushed: Callable[[set[str]], None] | None = None,
        flush_delay: float = FLUSH_DELAY,
        flush_size: int = FLUSH_SIZE,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._on_flushed = on_flushed
        self._delay = flush_delay
        self._size = flush_size
        self._outcomes: list[_Pending] = []
        self._releases: list[ClaimedMessage] = []
        self._ready = asyncio.Event()
        self._full = asyncio.Event()
        self._closing = False

    def __len__(self) -> int:
        return len(self._outcomes) + len(self._releases)

    def finish(self, claimed: ClaimedMessage, outcome: Outcome) -> None:
        self._outcomes.append(_Pending(claimed, outcome))
        self._signal()

    def release(self, claimed: ClaimedMessage) -> None:
        self._releases.append(claimed)
        self._signal()

    def _signal(self) -> None:
        self._ready.set()
        if len(self) >= self._size:
            self._full.set()

    async def run(self) -> None:
        """Flush batches at most ``flush_delay`` old until closed and empty."""
        while not (self._closing and not len(self)):
            await self._ready.wait()
            if not self._closing:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self._delay)
            if not await self.flush():
                await asyncio.sleep(RETRY_DELAY)

    def close(self) -> None:
        """Flush what is left at once; ``run`` returns when everything is committed."""
        self._closing = True
        self._ready.set()

    async def flush(self) -> bool:
        """Commit what is buffered; False (and everything kept for the next try) if the
        database was unavailable."""
        self._ready.clear()
        self._full.clear()
        outcomes, self._outcomes = self._outcomes, []
        releases, self._releases = self._releases, []
        # Outcomes first, each list on its own: a failed release must never cost a
        # committed "sent" (its message would be sent again when the lease expired).
        finished = await self._committed(self._finish_outcomes, outcomes, self._outcomes)
        released = await self._committed(self._release, releases, self._releases)
        return finished and released

    async def _committed(
        self,
        commit: Callable[[list[T]], Awaitable[None]],
        items: list[T],
        backlog: list[T],
    ) -> bool:
        """Run ``commit``; when the database is unavailable put ``items`` back at the
        head of ``backlog`` for the next try, on any other failure drop them."""
        if not items:
            return True
        try:
            await commit(items)
        except StorageUnavailable:
            log.exception("finish_commit_failed", items=len(items))
            backlog[:0] = items
            self._ready.set()
            return False
        except Exception:
            log.exception("finish_batch_dropped", items=len(items))
        return True

    async def _release(self, releases: list[ClaimedMessage]) -> None:
        await self._store.queue.release((c.record.pk, c.lease_token) for c in releases)

    async def _finish_outcomes(self, outcomes: list[_Pending]) -> None:
        applied = await self._store.queue.finish_many(
            [(p.claimed.record.pk, p.claimed.lease_token, p.outcome) for p in outcomes]
        )
        tenants = set()
        for pending, ok in zip(outcomes, applied, strict=True):
            if ok:
                self._count(pending)
                tenants.add(pending.claimed.record.tenant_id)
            else:
                record = pending.claimed.record
                log.warning("finish_lease_lost", tenant_id=record.tenant_id, message_id=record.id)
        if self._on_flushed is not None and tenants:
            self._on_flushed(tenants)

    def _count(self, pending: _Pending) -> None:
        account_id = pending.claimed.record.account_id
        outcome = pending.outcome
        if isinstance(outcome, Sent):
            self._metrics.sent.labels(account_id=account_id).inc()
        elif isinstance(outcome, Failed):
            self._metrics.errors.labels(account_id=account_id).inc()
        elif isinstance(outcome, Deferred) and outcome.counts_attempt:
            self._metrics.deferred.labels(account_id=account_id).inc()
