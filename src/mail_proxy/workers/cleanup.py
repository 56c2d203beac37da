"""Retention: finished, fully reported messages and old command-log entries go away.

Runs every ``GMP_CLEANUP_INTERVAL``. A failed round is logged and the next one
tries again: a database that is briefly away must not stop the process.
"""

from __future__ import annotations

import asyncio

import structlog

from mail_proxy.clock import SYSTEM_CLOCK, wait_for_any
from mail_proxy.domain.clock import Clock
from mail_proxy.ports import Store
from mail_proxy.settings import Settings

log = structlog.get_logger(__name__)


class CleanupLoop:
    name = "cleanup"

    def __init__(self, store: Store, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._clean()
            await wait_for_any(self._clock, self._settings.cleanup_interval, stop)

    async def _clean(self) -> None:
        """Drop finished, fully reported messages and command-log entries past retention."""
        now = self._clock.now()
        try:
            cutoff = now - self._settings.delivery_report_retention_seconds
            removed = await self._store.messages.cleanup(cutoff)
            if removed:
                log.info("messages_cleaned_up", removed=removed)
            await self._store.audit.purge(now - self._settings.command_log_retention_seconds)
        except Exception:
            log.exception("cleanup_failed")
