"""Retention of offloaded large files: expired files leave storage, then the database.

Runs every ``GMP_OFFLOAD_CLEANUP_INTERVAL``. The stored object is deleted before
its row, so a round cut short leaves a row the next round finishes, never an
object nothing knows about. An object that cannot be deleted now (storage away,
credentials changed) keeps its row and is tried again next round; a failed round
is logged and does not stop the process.
"""

from __future__ import annotations

import asyncio

import structlog

from mail_proxy.attachments import offload_storage
from mail_proxy.clock import SYSTEM_CLOCK, wait_for_any
from mail_proxy.domain.clock import Clock
from mail_proxy.domain.large_file_config import LargeFileRules, large_file_rules
from mail_proxy.domain.large_files import OffloadedFile
from mail_proxy.ports import Store
from mail_proxy.settings import Settings

log = structlog.get_logger(__name__)

BATCH = 200


class OffloadCleanupLoop:
    name = "offload_cleanup"

    def __init__(self, store: Store, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> None:
        self._store = store
        self._interval = settings.offload_cleanup_interval
        self._clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.clean()
            except Exception:
                log.exception("offload_cleanup_failed")
            await wait_for_any(self._clock, self._interval, stop)

    async def clean(self) -> int:
        """Remove every file expired by now; the number removed."""
        removed = 0
        while True:
            due = await self._store.offloaded_files.expired(self._clock.now(), BATCH)
            gone = [file.id for file in due if await self._removed(file)]
            removed += await self._store.offloaded_files.delete(gone) if gone else 0
            if len(due) < BATCH or len(gone) < len(due):
                break
        if removed:
            log.info("offloaded_files_removed", removed=removed)
        return removed

    async def _removed(self, file: OffloadedFile) -> bool:
        try:
            await offload_storage.remove(await self._rules(file.tenant_id), file.url)
        except (offload_storage.StorageUnavailable, ValueError) as exc:
            log.warning("offloaded_file_not_removed", file_id=file.id, reason=str(exc)[:300])
            return False
        return True

    async def _rules(self, tenant_id: str) -> LargeFileRules | None:
        """The tenant's storage credentials; none for a deleted tenant (the
        environment's then, as for any S3 client)."""
        tenant = await self._store.tenants.get(tenant_id)
        return large_file_rules(tenant.large_file_config) if tenant else None
