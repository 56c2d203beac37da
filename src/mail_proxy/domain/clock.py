"""The clock the loops and workers read, as an interface.

Code that decides by time takes a ``Clock`` instead of calling ``time.time()``, so
a test can move time forward (a back-off, a DND, a heartbeat) instead of sleeping
through it. ``mail_proxy.clock.SystemClock`` is the real one.
"""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Unix time in seconds: what is stored and compared across processes."""

    def monotonic(self) -> float:
        """Seconds that never go back: for intervals measured within this process."""

    async def sleep(self, seconds: float) -> None:
        """Return once ``seconds`` have passed on this clock."""

    async def sleep_until(self, deadline: float) -> None:
        """Return once ``monotonic()`` reached ``deadline``. A deadline taken before
        the waiting task starts cannot be pushed back by the time that start took."""
