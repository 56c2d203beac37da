"""The supervisor: loops run together, a crashed one comes back after a back-off on
the clock, and stop ends them all. The loops here are small real ones that count."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from mail_proxy.metrics import Metrics
from mail_proxy.testing import ManualClock
from mail_proxy.workers.supervisor import Supervisor


class Steady:
    """Works until stopped; records that it ran and that it stopped cleanly."""

    name = "steady"

    def __init__(self) -> None:
        self.started = 0
        self.stopped = 0

    async def run(self, stop: asyncio.Event) -> None:
        self.started += 1
        await stop.wait()
        self.stopped += 1


class Crashing:
    """Run n works ``lifetimes[n]`` seconds of the clock then raises; once they are
    used up it works until stopped."""

    name = "crashing"

    def __init__(self, clock: ManualClock, lifetimes: list[float]) -> None:
        self.clock = clock
        self.lifetimes = lifetimes
        self.started = 0

    async def run(self, stop: asyncio.Event) -> None:
        self.started += 1
        if self.started <= len(self.lifetimes):
            await self.clock.sleep(self.lifetimes[self.started - 1])
            raise RuntimeError(f"crash {self.started}")
        await stop.wait()


class Quitting:
    """Returns at once, as a loop with a bug in its exit condition would."""

    name = "quitting"

    def __init__(self) -> None:
        self.started = 0

    async def run(self, stop: asyncio.Event) -> None:
        self.started += 1


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0)


def _restarts(metrics: Metrics, loop: str) -> float:
    value = metrics.registry.get_sample_value("gmp_loop_restarts_total", {"loop": loop})
    return value or 0.0


async def test_crashed_loop_restarts_after_a_doubling_backoff_others_keep_running() -> None:
    """1 s after the first crash, 2 s after the second; the steady loop is untouched."""
    clock = ManualClock()
    metrics = Metrics()
    steady, crashing = Steady(), Crashing(clock, [0, 0])
    stop = asyncio.Event()
    task = asyncio.create_task(Supervisor([steady, crashing], metrics, clock).run(stop))
    await _until(lambda: crashing.started == 1 and clock.sleepers == 1)
    await clock.advance(0.9)
    assert crashing.started == 1
    await clock.advance(0.1)
    await _until(lambda: crashing.started == 2 and clock.sleepers == 1)
    await clock.advance(1.9)
    assert crashing.started == 2
    await clock.advance(0.1)
    await _until(lambda: crashing.started == 3)
    assert steady.started == 1 and _restarts(metrics, "crashing") == 2
    stop.set()
    async with asyncio.timeout(5):
        await task
    assert steady.stopped == 1


async def test_backoff_starts_over_after_a_long_healthy_run() -> None:
    """A loop that ran a minute before failing again waits 1 s, not 2 s."""
    clock = ManualClock()
    crashing = Crashing(clock, [0, 60])
    stop = asyncio.Event()
    task = asyncio.create_task(Supervisor([crashing], Metrics(), clock).run(stop))
    await _until(lambda: crashing.started == 1 and clock.sleepers == 1)
    await clock.advance(1)
    await _until(lambda: crashing.started == 2 and clock.sleepers == 1)
    await clock.advance(60)  # the second run crashes, having worked a minute
    await _until(lambda: clock.sleepers == 1)
    await clock.advance(1)
    await _until(lambda: crashing.started == 3)
    stop.set()
    async with asyncio.timeout(5):
        await task


async def test_loop_that_returns_early_is_restarted() -> None:
    """Returning without stop is a bug like a crash: the loop is run again."""
    clock = ManualClock()
    quitting = Quitting()
    stop = asyncio.Event()
    task = asyncio.create_task(Supervisor([quitting], Metrics(), clock).run(stop))
    await _until(lambda: quitting.started == 1 and clock.sleepers == 1)
    await clock.advance(1)
    await _until(lambda: quitting.started == 2)
    stop.set()
    async with asyncio.timeout(5):
        await task


async def test_stop_during_a_backoff_ends_at_once() -> None:
    """Stopping does not wait for the pending restart, whose time never comes here."""
    clock = ManualClock()
    crashing = Crashing(clock, [0])
    stop = asyncio.Event()
    task = asyncio.create_task(Supervisor([crashing], Metrics(), clock).run(stop))
    await _until(lambda: clock.sleepers == 1)
    stop.set()
    async with asyncio.timeout(5):
        await task
    assert crashing.started == 1
