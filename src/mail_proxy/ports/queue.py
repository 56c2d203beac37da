"""The ports of the delivery path: messages in, leased out, finished, rate-limited.

Every method is one transaction: either all of it is written or none of it is.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence

from mail_proxy.domain.models import (
    ClaimedMessage,
    EnqueueResult,
    LeaseRequest,
    NewMessage,
    Outcome,
    RateLimits,
)
from mail_proxy.domain.rate_limit import RateDecision


class Intake(ABC):
    """Where submitted messages enter the queue."""

    @abstractmethod
    async def enqueue(self, messages: Sequence[NewMessage], now: float) -> list[EnqueueResult]:
        """Insert or replace a batch in one transaction.

        Same (tenant_id, id) not yet sent → replaced (status back to pending, attempts
        reset); already sent → rejected; currently leased → rejected ("being sent").
        Results are in input order.
        """

    @abstractmethod
    async def enqueue_leased(
        self, messages: Sequence[NewMessage], now: float, lease: LeaseRequest
    ) -> tuple[list[EnqueueResult], list[ClaimedMessage]]:
        """``enqueue``, and in the same transaction lease to ``lease`` those of the
        queued messages that a claim could take now (due, tenant active, not
        suspended); those are returned claimed, in dispatch order. Other processes
        are told of work only when some queued message was left unleased."""


class Queue(ABC):
    """The dispatcher's view: lease due messages, record what became of them."""

    @abstractmethod
    async def claim(
        self,
        *,
        now: float,
        lease_seconds: float,
        limit: int,
        per_account: int,
        min_priority: int = 0,
        max_priority: int = 3,
    ) -> list[ClaimedMessage]:
        """Lease up to ``limit`` due messages, at most ``per_account`` per account
        (an account's own ``batch_size`` overrides ``per_account``).

        Due: active status, ``deferred_ts`` null or <= now, tenant active, no
        suspension of ``*`` or of the message's batch code, lease free or expired,
        priority within [min_priority, max_priority]. Order: priority, then pk.
        """

    async def finish(self, pk: int, lease_token: str, outcome: Outcome) -> bool:
        """Record an outcome and its event; False (nothing written) if the lease is stale."""
        return (await self.finish_many([(pk, lease_token, outcome)]))[0]

    @abstractmethod
    async def finish_many(self, items: Sequence[tuple[int, str, Outcome]]) -> list[bool]:
        """``finish`` for several messages in one transaction (group commit).

        Each item is applied only if its lease token still matches; results are in
        input order.
        """

    @abstractmethod
    async def release(self, leases: Iterable[tuple[int, str]]) -> int:
        """Give leased messages back to the queue untouched (graceful stop)."""

    @abstractmethod
    async def oldest_due_ts(self, now: float) -> float | None:
        """Creation time of the oldest message that is due now (queue-age metric)."""


class SendLog(ABC):
    """Sends recorded for rate limits, shared by every process on the database."""

    @abstractmethod
    async def reserve(
        self,
        tenant_id: str,
        account_id: str,
        limits: RateLimits,
        now: float,
        tenant_limits: RateLimits | None = None,
    ) -> RateDecision:
        """Atomically check the shared send log and, if allowed, record this send.

        ``limits`` are the account's; ``tenant_limits`` count the sends of all the
        tenant's accounts. Serialised per account (and per tenant when it has limits)
        across processes, so concurrent dispatchers together stay within the limits.
        """


class WorkSignals(ABC):
    """How a process learns, without polling, that another one queued work.

    Writes that make messages due (an enqueue, an activation) announce it in their
    own transaction, so the announcement is seen only once the work is visible. A
    process always wakes its own dispatcher directly; this carries the news to the
    other processes on the database. Polling every ``GMP_SEND_LOOP_INTERVAL`` stays
    the fallback: a lost signal delays work, it never loses it.
    """

    @abstractmethod
    async def watch(self, on_work: Callable[[], None], stop: asyncio.Event) -> None:
        """Call ``on_work`` for each announcement by another process until ``stop``;
        never raises for a lost connection (it reconnects, calling ``on_work`` once
        back, for what was announced meanwhile)."""
