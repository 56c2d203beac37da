"""The Store interface: the durable queue and everything the proxy persists.

Workers and the API depend on this class only; ``sqlite.py`` and ``postgres.py``
provide the two backends. Every method is one transaction: either all of it is
written or none of it is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mail_proxy.domain.models import (
    Account,
    ClaimedMessage,
    CommandLogEntry,
    EnqueueResult,
    Event,
    MessageRecord,
    NewMessage,
    Outcome,
    RateLimits,
    Status,
    Tenant,
)
from mail_proxy.domain.rate_limit import RateDecision


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """Which messages a listing or count covers. ``None`` fields do not filter."""

    tenant_id: str | None = None
    status: Status | None = None
    active_only: bool = False
    batch_code: str | None = None
    account_id: str | None = None


@dataclass(frozen=True, slots=True)
class DeleteResult:
    removed: list[str]
    not_found: list[str]
    unauthorized: list[str]


@dataclass(frozen=True, slots=True)
class TenantSyncState:
    """The reporter's bookkeeping for one tenant, shared by every process."""

    tenant_id: str
    last_sync_ts: float | None
    dnd_until: float | None
    lease_holder: str | None = None
    lease_until: float | None = None


class Store(ABC):
    """Async persistence for the proxy. Obtain one with ``storage.open_store``."""

    # -- lifecycle -------------------------------------------------------
    @abstractmethod
    async def close(self) -> None: ...

    # -- queue -----------------------------------------------------------
    @abstractmethod
    async def enqueue(self, messages: Sequence[NewMessage], now: float) -> list[EnqueueResult]:
        """Insert or replace a batch in one transaction.

        Same (tenant_id, id) not yet sent → replaced (status back to pending, attempts
        reset); already sent → rejected; currently leased → rejected ("being sent").
        Results are in input order.
        """

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
    async def get_message(self, tenant_id: str, message_id: str) -> MessageRecord | None: ...

    @abstractmethod
    async def list_messages(
        self, flt: MessageFilter, *, limit: int = 100, offset: int = 0
    ) -> list[MessageRecord]:
        """Newest first is not useful for a queue: ordered by pk (submission order)."""

    @abstractmethod
    async def count_messages(self, flt: MessageFilter) -> int: ...

    @abstractmethod
    async def count_by_status(self, tenant_id: str | None = None) -> dict[Status, int]: ...

    @abstractmethod
    async def oldest_due_ts(self, now: float) -> float | None:
        """Creation time of the oldest message that is due now (queue-age metric)."""

    @abstractmethod
    async def next_due_ts(self, now: float | None = None) -> float | None:
        """Earliest ``deferred_ts`` of an active message in the future (timer wake-up).

        Also the expiry of a lease, when a leased message becomes claimable again.
        ``now`` defaults to the clock.
        """

    @abstractmethod
    async def delete_messages(self, tenant_id: str, ids: Sequence[str]) -> DeleteResult:
        """``unauthorized``: ids that exist only under another tenant."""

    @abstractmethod
    async def cleanup_messages(self, older_than: float, tenant_id: str | None = None) -> int:
        """Remove sent/error messages finished before ``older_than`` whose events
        are all reported; returns how many."""

    # -- events (the outbox of delivery reports) --------------------------
    @abstractmethod
    async def add_event(
        self,
        event_message_pk: int,
        type_: str,
        ts: float,
        description: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> int:
        """Append an event outside a finish (bounce, PEC receipt)."""

    @abstractmethod
    async def message_events(self, tenant_id: str, message_id: str) -> list[Event]: ...

    @abstractmethod
    async def events_of_messages(self, message_pks: Sequence[int]) -> list[Event]:
        """Events of the messages with these pks, oldest first."""

    @abstractmethod
    async def unreported_events(self, tenant_id: str | None, limit: int) -> list[Event]:
        """Oldest first (event_id order). ``tenant_id=None``: every tenant."""

    @abstractmethod
    async def tenants_with_unreported(self) -> list[str]: ...

    @abstractmethod
    async def ack_events(self, event_ids: Sequence[int], now: float) -> int:
        """Set ``reported_ts`` on exactly these events (and on messages fully reported)."""

    @abstractmethod
    async def unreported_stats(self) -> tuple[int, float | None]:
        """(events awaiting report, ts of the oldest)."""

    # -- rate limits -------------------------------------------------------
    @abstractmethod
    async def reserve_send(
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

    # -- tenants -------------------------------------------------------------
    @abstractmethod
    async def create_tenant(self, tenant: Tenant, api_key_hash: str | None, now: float) -> Tenant:
        """Insert; raises ``Conflict`` if the id exists."""

    @abstractmethod
    async def replace_tenant(self, tenant: Tenant, now: float) -> Tenant:
        """Insert or overwrite every field but the API key and signing secret."""

    @abstractmethod
    async def update_tenant(
        self, tenant_id: str, changes: dict[str, Any], now: float
    ) -> Tenant | None:
        """Partial update; keys are Tenant field names. None if not found."""

    @abstractmethod
    async def get_tenant(self, tenant_id: str) -> Tenant | None: ...

    @abstractmethod
    async def list_tenants(self, active_only: bool = False) -> list[Tenant]: ...

    @abstractmethod
    async def delete_tenant(self, tenant_id: str) -> bool:
        """Removes its accounts, messages, events and suspensions too."""

    @abstractmethod
    async def set_api_key(
        self, tenant_id: str, key_hash: str | None, expires_at: int | None
    ) -> bool: ...

    @abstractmethod
    async def tenant_by_key_hash(self, key_hash: str) -> Tenant | None:
        """The tenant owning this key hash (expiry is checked by the caller)."""

    @abstractmethod
    async def set_signing_secret(self, tenant_id: str, secret: str) -> bool: ...

    @abstractmethod
    async def suspend(self, tenant_id: str, batch_code: str) -> None:
        """``batch_code='*'`` suspends the whole tenant."""

    @abstractmethod
    async def activate(self, tenant_id: str, batch_code: str | None) -> None:
        """None clears every suspension of the tenant."""

    @abstractmethod
    async def suspensions(self, tenant_id: str) -> list[str]: ...

    @abstractmethod
    async def sync_states(self) -> list[TenantSyncState]: ...

    @abstractmethod
    async def set_sync_state(
        self,
        tenant_id: str,
        *,
        last_sync_ts: float | None = None,
        dnd_until: float | None = None,
        clear_dnd: bool = False,
    ) -> None: ...

    @abstractmethod
    async def take_sync_lease(self, tenant_id: str, holder: str, now: float, until: float) -> bool:
        """Hold (or renew) the right to report to the tenant until ``until``; False when
        another holder's lease has not expired. One reporter per tenant across processes."""

    @abstractmethod
    async def release_sync_lease(self, tenant_id: str, holder: str) -> None:
        """Give the lease up if ``holder`` still has it."""

    # -- accounts ------------------------------------------------------------
    @abstractmethod
    async def upsert_account(self, account: Account, now: float) -> tuple[Account, bool]:
        """Create or replace; returns (account, created)."""

    @abstractmethod
    async def update_account(
        self, tenant_id: str, account_id: str, changes: dict[str, Any], now: float
    ) -> Account | None: ...

    @abstractmethod
    async def get_account(self, tenant_id: str, account_id: str) -> Account | None:
        """With the password decrypted: for the dispatcher, never for responses."""

    @abstractmethod
    async def list_accounts(self, tenant_id: str | None = None) -> list[Account]: ...

    @abstractmethod
    async def delete_account(self, tenant_id: str, account_id: str) -> bool: ...

    # -- instance settings and audit -------------------------------------------
    @abstractmethod
    async def set_instance_active(self, active: bool, *, if_unset: bool = False) -> None:
        """Suspend (False) or resume the whole instance, for every process on the
        database and across restarts. ``if_unset``: only a starting value, kept
        when the instance was ever suspended or activated."""

    @abstractmethod
    async def instance_active(self) -> bool:
        """False while the instance is suspended; True if it never was."""

    @abstractmethod
    async def get_instance_settings(self) -> dict[str, Any]: ...

    @abstractmethod
    async def update_instance_settings(self, changes: dict[str, Any]) -> dict[str, Any]: ...

    @abstractmethod
    async def log_command(
        self,
        *,
        ts: float,
        method: str,
        path: str,
        actor: str,
        tenant_id: str | None,
        status_code: int,
        body: dict[str, Any] | None,
    ) -> None: ...

    @abstractmethod
    async def command_log(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        tenant_id: str | None = None,
        endpoint: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[CommandLogEntry]: ...

    @abstractmethod
    async def purge_command_log(self, before: float) -> int:
        """Remove command-log entries older than ``before`` (Unix s); how many."""
