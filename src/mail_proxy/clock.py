"""The system clock behind ``domain.clock.Clock``: the one place loops read real time."""

from __future__ import annotations

import asyncio
import time

from mail_proxy.domain.clock import Clock


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def sleep_until(self, deadline: float) -> None:
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))


SYSTEM_CLOCK = SystemClock()


async def wait_for_any(clock: Clock, seconds: float | None, *events: asyncio.Event) -> bool:
    """Until one of ``events`` is set or ``seconds`` passed on ``clock`` (None:
    no timeout); True when woken by an event. Timing out through the clock, not
    ``asyncio.wait_for``, is what lets a test's clock end the wait."""
    waiters: set[asyncio.Task[object]] = {asyncio.create_task(e.wait()) for e in events}
    if seconds is not None:
        deadline = clock.monotonic() + max(seconds, 0.0)
        waiters.add(asyncio.create_task(clock.sleep_until(deadline)))
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return any(event.is_set() for event in events)
