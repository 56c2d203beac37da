"""When a tenant is synced next: one immutable state and the transitions on it.

A tenant is called at once when it has events to report, at least every sync
interval as a heartbeat, never for a heartbeat while the application asked not to
be disturbed (``next_sync_after``, DND), and after a failed call only once its
back-off has passed. A run-now forces a call past both the back-off and the DND
(the tenant's own run-now also ends its DND; the admin's respects it). Keeping
these rules on one value, rather than in sets and counters of the sync loop, is
what lets them be read and tested as a table. Nothing here reads a clock: every
transition and question takes ``now``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from mail_proxy.domain.retry import backoff_delay

#: Longest Do Not Disturb an application may ask for. Further is taken for a unit
#: mistake (milliseconds for seconds) and ignored rather than silencing a tenant.
MAX_DND_SECONDS = 30 * 86400.0
#: Immediate calls in a row for ``queued > 0``; then the tenant waits for its normal
#: schedule, so an application that always answers ``queued`` cannot spin the loop.
MAX_QUEUED_ROUNDS = 10


@dataclass(frozen=True, slots=True)
class SyncPolicy:
    """The operator's settings the rules depend on."""

    interval: float
    retry_base: float


@dataclass(frozen=True, slots=True)
class SyncSchedule:
    """What is known of one tenant when deciding whether to call it.

    ``last_sync_ts`` and ``dnd_until`` are persisted and shared by every process;
    ``failures``/``retry_at`` (the back-off) and ``forced`` are this process's only,
    so a restart simply tries again at once.
    """

    last_sync_ts: float | None = None
    dnd_until: float | None = None
    failures: int = 0
    retry_at: float | None = None
    forced: bool = False

    # -- questions ------------------------------------------------------------
    def in_dnd(self, now: float) -> bool:
        return self.dnd_until is not None and self.dnd_until > now

    def heartbeat_due(self, policy: SyncPolicy) -> float:
        """When a call without events is owed: one interval after the last, not in DND."""
        due = (self.last_sync_ts + policy.interval) if self.last_sync_ts is not None else 0.0
        if self.dnd_until is not None:
            due = max(due, self.dnd_until)
        return due

    def due_at(self, policy: SyncPolicy, *, has_events: bool) -> float:
        """Earliest time the tenant should be called; due when ``<= now``.

        Events are reported at once (DND does not hold them back) but wait out a
        back-off; a forced call skips both.
        """
        if self.forced:
            return 0.0
        return self._unforced_due(policy, has_events=has_events)

    def heartbeat_owed(self, policy: SyncPolicy, now: float) -> bool:
        """A call is owed even with nothing to report (so an empty one goes out)."""
        return self._unforced_due(policy, has_events=False) <= now

    def _unforced_due(self, policy: SyncPolicy, *, has_events: bool) -> float:
        wanted = 0.0 if has_events else self.heartbeat_due(policy)
        if self.retry_at is not None:
            wanted = max(wanted, self.retry_at)
        return wanted

    # -- transitions ------------------------------------------------------------
    def with_stored(self, last_sync_ts: float | None, dnd_until: float | None) -> SyncSchedule:
        """Merge what the database holds (written by any process): the latest sync
        wins, and the stored DND is the current one."""
        synced = [ts for ts in (last_sync_ts, self.last_sync_ts) if ts is not None]
        return replace(self, last_sync_ts=max(synced) if synced else None, dnd_until=dnd_until)

    def run_now(self, *, own_tenant: bool, now: float) -> SyncSchedule:
        """The tenant's own run-now ends its DND and forces a call; the admin's forces
        one only for tenants not in DND (protocol.md, POST /commands/run-now)."""
        if own_tenant:
            return replace(self, dnd_until=None, forced=True)
        return replace(self, forced=self.forced or not self.in_dnd(now))

    def call_started(self) -> SyncSchedule:
        """A call is under way: the forced call it answers is spent."""
        return replace(self, forced=False)

    def failed(self, policy: SyncPolicy, now: float) -> SyncSchedule:
        """One more failed call: wait the next back-off step (doubling, capped at the
        interval) before calling again."""
        failures = self.failures + 1
        delay = backoff_delay(failures, policy.retry_base, policy.interval)
        return replace(self, failures=failures, retry_at=now + delay)

    def succeeded(self, now: float, next_sync_after: float | None) -> SyncSchedule:
        """An acknowledged call: back-off reset, heartbeat clock restarted.

        The latest ``next_sync_after`` an application gave wins; an answer without one
        leaves the current DND as it is, and one not in the future ends it.
        """
        dnd = self.dnd_until if next_sync_after is None else next_sync_after
        if dnd is not None and dnd <= now:
            dnd = None
        return replace(self, last_sync_ts=now, dnd_until=dnd, failures=0, retry_at=None)


def dnd_refusal(next_sync_after: float, now: float) -> str | None:
    """Why an application's ``next_sync_after`` is ignored, or None when it is usable.

    Times on the wire are Unix seconds: NaN, infinities, negatives and values more
    than ``MAX_DND_SECONDS`` ahead cannot be meant.
    """
    if not math.isfinite(next_sync_after):
        return "not a finite number"
    if next_sync_after < 0:
        return "negative"
    if next_sync_after > now + MAX_DND_SECONDS:
        return f"more than {MAX_DND_SECONDS / 86400:g} days ahead"
    return None
