"""Per-tenant sync bookkeeping: each tenant's ``SyncSchedule``, kept and persisted.

The back-off and a pending forced call live in memory only: a restart simply tries
again at once. The last sync time and the DND an application asked for are
written to the store, where every process reads them back (``load``), so they
survive restarts and are shared by several processes. The rules themselves are
``domain.sync_schedule``'s; this module keeps their state and writes what must last.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from mail_proxy.domain.sync_schedule import SyncPolicy, SyncSchedule, dnd_refusal
from mail_proxy.ports import Store, TenantSyncState

log = structlog.get_logger(__name__)

SYNC_STATE_WRITE_SECONDS = 5.0


class SyncLedger:
    """What this process knows of each tenant's calls, merged with the stored state."""

    def __init__(self, store: Store, policy: SyncPolicy) -> None:
        self._store = store
        self.policy = policy
        self._schedules: dict[str, SyncSchedule] = {}
        self._written: dict[str, float] = {}

    def load(self, states: Sequence[TenantSyncState]) -> None:
        """Merge the stored state (shared by every process) into this process's."""
        for state in states:
            current = self.schedule_of(state.tenant_id)
            merged = current.with_stored(state.last_sync_ts, state.dnd_until)
            self._schedules[state.tenant_id] = merged

    def schedule_of(self, tenant_id: str) -> SyncSchedule:
        return self._schedules.get(tenant_id, SyncSchedule())

    def run_now(self, tenant_id: str, *, own_tenant: bool, now: float) -> None:
        schedule = self.schedule_of(tenant_id).run_now(own_tenant=own_tenant, now=now)
        self._schedules[tenant_id] = schedule

    def call_started(self, tenant_id: str) -> bool:
        """Spend a pending forced call; whether there was one."""
        schedule = self.schedule_of(tenant_id)
        self._schedules[tenant_id] = schedule.call_started()
        return schedule.forced

    async def clear_dnd(self, tenant_id: str) -> None:
        """The tenant's own run-now ends its DND, for every process."""
        await self._store.sync_state.set(tenant_id, clear_dnd=True)

    def failed(self, tenant_id: str, now: float) -> float:
        """One more failed call: seconds until the tenant may be called again."""
        after = self.schedule_of(tenant_id).failed(self.policy, now)
        self._schedules[tenant_id] = after
        return (after.retry_at or now) - now

    async def succeeded(self, tenant_id: str, next_sync_after: float | None, now: float) -> None:
        """Reset the back-off and store the sync time and DND.

        The time alone is written at most every ``SYNC_STATE_WRITE_SECONDS``: each write
        waits for the database's writer, which delays the next report, and a slightly
        old ``last_sync_ts`` only makes a heartbeat after a restart come a bit early.
        """
        before = self.schedule_of(tenant_id)
        after = before.succeeded(now, _usable_dnd(tenant_id, next_sync_after, now))
        self._schedules[tenant_id] = after
        written = self._written.get(tenant_id)
        stale = written is None or now - written >= SYNC_STATE_WRITE_SECONDS
        if after.dnd_until == before.dnd_until and not stale:
            return
        await self._store.sync_state.set(
            tenant_id,
            last_sync_ts=now,
            dnd_until=after.dnd_until,
            clear_dnd=after.dnd_until is None,
        )
        self._written[tenant_id] = now


def _usable_dnd(tenant_id: str, asked: float | None, now: float) -> float | None:
    """The application's ``next_sync_after``, or None (with a warning) when absurd."""
    if asked is None:
        return None
    reason = dnd_refusal(asked, now)
    if reason is None:
        return asked
    log.warning("sync_next_sync_after_ignored", tenant_id=tenant_id, reason=reason)
    return None
