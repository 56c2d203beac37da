"""Which process reports to a tenant: a lease in the database, renewed while held.

Several ``mail-proxy serve`` processes may share one database. Each would read the
same unreported events and post them, so every report arrived once per process.
Reporting to a tenant is therefore held by one process at a time: a sync loop takes
the tenant's lease (a holder id and an expiry on the tenant's row) before calling,
renews it every third of ``sync_lease_seconds`` while it works, and gives it up
once its acknowledgements are written. A process that dies stops renewing, and
another one takes the tenant over when the lease expires. Heartbeats take the
lease too, so a tenant gets one heartbeat per interval, not one per process.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket

import structlog

from mail_proxy.domain.clock import Clock
from mail_proxy.ports import Store, TenantSyncState

log = structlog.get_logger(__name__)


def new_holder() -> str:
    """A lease holder id unique to this process and object: host, pid, random."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class TenantLeases:
    """This process's side of the reporting leases."""

    def __init__(self, store: Store, seconds: float, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self.seconds = seconds
        self.holder = new_holder()

    def held_elsewhere(self, state: TenantSyncState | None, now: float) -> float | None:
        """When another holder's lease on the tenant expires, or None if it is free."""
        if state is None or state.lease_holder in (None, self.holder):
            return None
        if state.lease_until is None or state.lease_until < now:
            return None
        return state.lease_until

    async def take(self, tenant_id: str, now: float) -> bool:
        """Take or renew the lease; False when another process holds it."""
        return await self._store.sync_state.take_lease(
            tenant_id, self.holder, now, now + self.seconds
        )

    async def keep(self, tenant_id: str, lost: asyncio.Event) -> None:
        """Renew every third of the lease until cancelled; set ``lost`` if it slipped."""
        while True:
            await self._clock.sleep(self.seconds / 3)
            try:
                renewed = await self.take(tenant_id, self._clock.now())
            except Exception:
                log.exception("sync_lease_renewal_failed", tenant_id=tenant_id)
                renewed = False
            if not renewed:
                log.warning("sync_lease_lost", tenant_id=tenant_id)
                lost.set()
                return

    async def release(self, tenant_id: str) -> None:
        """Give the lease up; a failure only delays the next holder until expiry."""
        try:
            await self._store.sync_state.release_lease(tenant_id, self.holder)
        except Exception:
            log.exception("sync_lease_release_failed", tenant_id=tenant_id)
