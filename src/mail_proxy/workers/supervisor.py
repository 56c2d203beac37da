"""One supervisor for the background loops: started together, stopped together.

Every loop (dispatcher, client sync, retention clean-up, and the pollers later
issues add) is an object with a ``name`` and ``async run(stop)`` that returns once
``stop`` is set. The supervisor runs them in one task group until ``stop``.

A loop that raises is logged and restarted after a back-off (1 s doubling, capped
at a minute; a loop that ran for a minute before failing starts the back-off
over), rather than stopping the process: the loops already catch the failures
they expect (a database that is away, a tenant that does not answer), so what
escapes is a bug in one of them, and the HTTP API and the other loops keep
serving meanwhile. The crash is visible in the log (``loop_crashed``) and in
``gmp_loop_restarts_total``. A loop that returns while not stopping is treated
the same way: it would otherwise be silently gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

import structlog

from mail_proxy.clock import SYSTEM_CLOCK, wait_for_any
from mail_proxy.domain.clock import Clock
from mail_proxy.domain.retry import backoff_delay
from mail_proxy.metrics import Metrics

log = structlog.get_logger(__name__)

RESTART_BASE_SECONDS = 1.0
RESTART_CAP_SECONDS = 60.0


class Loop(Protocol):
    @property
    def name(self) -> str: ...

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then finish or hand back what is in flight."""


class Supervisor:
    def __init__(
        self, loops: Sequence[Loop], metrics: Metrics, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._loops = tuple(loops)
        self._metrics = metrics
        self._clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        """Run every loop until ``stop``; returns when all of them have."""
        async with asyncio.TaskGroup() as group:
            for loop in self._loops:
                group.create_task(self._supervise(loop, stop), name=loop.name)

    async def _supervise(self, loop: Loop, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            started = self._clock.monotonic()
            try:
                await loop.run(stop)
            except Exception:
                log.exception("loop_crashed", loop=loop.name)
            else:
                if not stop.is_set():
                    log.error("loop_returned", loop=loop.name)
            if stop.is_set():
                return
            if self._clock.monotonic() - started >= RESTART_CAP_SECONDS:
                failures = 0
            failures += 1
            delay = backoff_delay(failures, RESTART_BASE_SECONDS, RESTART_CAP_SECONDS)
            log.warning("loop_restarting", loop=loop.name, failures=failures, delay=delay)
            self._metrics.loop_restarts.labels(loop=loop.name).inc()
            await wait_for_any(self._clock, delay, stop)
