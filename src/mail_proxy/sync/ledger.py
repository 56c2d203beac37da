"""Per-tenant sync bookkeeping: the back-off, the last sync and Do Not Disturb.

The back-off (failures in a row, when to retry) and this process's own last sync
live in memory only: a restart simply tries again at once. The last sync time and
the DND an application asked for are written to the store, where every process
reads them back, so they survive restarts and are shared by several processes.
The decisions themselves are ``domain.reports``'s; this module keeps their inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from mail_proxy.domain import reports
from mail_proxy.domain.reports import SyncSchedule
from mail_proxy.settings import Settings
from mail_proxy.storage.base import Store, TenantSyncState

log = structlog.get_logger(__name__)

SYNC_STATE_WRITE_SECONDS = 5.0


class SyncLedger:
    """What this process knows of each tenant's calls, merged with the stored state."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings
        self._local: dict[str, _LocalState] = {}
        self._dnd: dict[str, float | None] = {}

    def load(self, states: Sequence[TenantSyncState]) -> dict[str, SyncSchedule]:
        """Schedules from the stored state (shared by every process) and this process's."""
        self._dnd = {state.tenant_id: state.dnd_until for state in states}
        return {
            state.tenant_id: self.schedule_of(state.tenant_id, state.last_sync_ts, state.dnd_until)
            for state in states
        }

    def schedule_of(
        self, tenant_id: str, stored_sync_ts: float | None = None, dnd_until: float | None = None
    ) -> SyncSchedule:
        local = self._local.get(tenant_id, _LocalState())
        synced = [ts for ts in (stored_sync_ts, local.last_sync_ts) if ts is not None]
        return SyncSchedule(
            last_sync_ts=max(synced) if synced else None,
            dnd_until=dnd_until,
            failures=local.failures,
            retry_at=local.retry_at,
        )

    async def clear_dnd(self, tenant_id: str) -> None:
        """The tenant's own run-now ends its DND, for every process."""
        await self._store.set_sync_state(tenant_id, clear_dnd=True)
        self._dnd[tenant_id] = None

    def failed(self, tenant_id: str, now: float) -> float:
        """One more failed call: seconds until the tenant may be called again."""
        local = self._local.setdefault(tenant_id, _LocalState())
        after = reports.after_failure(
            SyncSchedule(failures=local.failures),
            now,
            self._settings.sync_retry_base_delay,
            self._settings.sync_interval,
        )
        local.failures, local.retry_at = after.failures, after.retry_at
        return (after.retry_at or now) - now

    async def succeeded(self, tenant_id: str, next_sync_after: float | None, now: float) -> None:
        """Reset the back-off and store the sync time and DND.

        The time alone is written at most every ``SYNC_STATE_WRITE_SECONDS``: each write
        waits for the database's writer, which delays the next report, and a slightly
        old ``last_sync_ts`` only makes a heartbeat after a restart come a bit early.
        """
        local = self._local.setdefault(tenant_id, _LocalState())
        local.failures, local.retry_at, local.last_sync_ts = 0, None, now
        before = self._dnd.get(tenant_id)
        asked = _usable_dnd(tenant_id, next_sync_after, now)
        after = reports.after_success(SyncSchedule(dnd_until=before), now, asked)
        self._dnd[tenant_id] = after.dnd_until
        stale = local.written_ts is None or now - local.written_ts >= SYNC_STATE_WRITE_SECONDS
        if after.dnd_until == before and not stale:
            return
        await self._store.set_sync_state(
            tenant_id,
            last_sync_ts=now,
            dnd_until=after.dnd_until,
            clear_dnd=after.dnd_until is None,
        )
        local.written_ts = now


def _usable_dnd(tenant_id: str, asked: float | None, now: float) -> float | None:
    """The application's ``next_sync_after``, or None (with a warning) when absurd."""
    if asked is None:
        return None
    reason = reports.dnd_refusal(asked, now)
    if reason is None:
        return asked
    log.warning("sync_next_sync_after_ignored", tenant_id=tenant_id, reason=reason)
    return None


@dataclass
class _LocalState:
    """What this process alone knows of a tenant: its back-off and its own last sync."""

    failures: int = 0
    retry_at: float | None = None
    last_sync_ts: float | None = None
    written_ts: float | None = None
