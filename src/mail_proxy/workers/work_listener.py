"""Wakes this process's dispatcher when another process queues work (``WorkSignals``).

Without it an idle process finds messages enqueued through another process only at
its next timer pass (``GMP_SEND_LOOP_INTERVAL``); with PostgreSQL's notifications it
claims them within milliseconds. The timer stays as the fallback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from mail_proxy.ports import WorkSignals


class WorkListener:
    name = "work_signals"

    def __init__(self, signals: WorkSignals, wake: Callable[[], None]) -> None:
        self._signals = signals
        self._wake = wake

    async def run(self, stop: asyncio.Event) -> None:
        await self._signals.watch(self._wake, stop)
