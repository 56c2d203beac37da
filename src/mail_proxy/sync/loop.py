"""The sync loop: pushes delivery reports to each tenant's application, never losing one.

A scheduling pass reads from the store which tenants have unreported events and
when each was last synced, asks each tenant's ``SyncSchedule`` (the domain's rules)
whether it is due, and starts one task per due tenant. Tasks run concurrently (at
most ``sync_concurrency`` calls at a time), so a tenant whose endpoint hangs holds
only its own task and one slot for at most ``sync_timeout``. Within a tenant,
calls are strictly one after another: the next batch goes out only after the
application accepted the previous one, so the events of a message reach it in the
order they happened. Marking the accepted batch reported overlaps the next call
(``acknowledgements.py``).

Delivery is at least once: events are acknowledged only after the application
acknowledged the call; a crash between its answer and our acknowledgement sends
them again. With several processes on one database, a tenant is reported by the
process holding its lease (``reporting_lease.py``), so each event goes out once.
The loop never dies on an error: it logs and tries again later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from enum import Enum

import structlog

from mail_proxy.clock import SYSTEM_CLOCK, wait_for_any
from mail_proxy.domain import reports
from mail_proxy.domain.clock import Clock
from mail_proxy.domain.models import Event, Tenant
from mail_proxy.domain.sync_schedule import MAX_QUEUED_ROUNDS, SyncPolicy
from mail_proxy.metrics import Metrics
from mail_proxy.ports import Store, TenantSyncState
from mail_proxy.settings import Settings
from mail_proxy.sync.acknowledgements import Acknowledgements
from mail_proxy.sync.client import (
    SyncAnswer,
    SyncClient,
    SyncFailure,
    SyncTarget,
    target_for,
)
from mail_proxy.sync.lease import TenantLeases
from mail_proxy.sync.ledger import SyncLedger

log = structlog.get_logger(__name__)

STATS_REFRESH_SECONDS = 1.0
#: Passes woken by new outcomes start at most this often. The dispatcher commits
#: outcomes every few milliseconds under load; one pass per commit would spend more
#: on looking for work than a report's latency gains from it. Run-now is not spaced.
#: This paces database work, not a schedule, so it runs on the event loop's time
#: rather than the injected clock.
EVENT_PASS_SPACING = 0.02
#: How long a pass's finding that a tenant has no destination spares passes for its
#: new events. A destination added through the API is used at the latest this late.
NO_DESTINATION_FRESH = 1.0
OUTCOME_OK = "ok"
#: A 2xx without an ``ok`` field, taken as acknowledged (see ``client.py``).
OUTCOME_OK_IMPLIED = "ok_implied"
#: While another process holds a tenant this one wants, look again this often.
LEASE_POLL_SECONDS = 1.0
OUTCOME_EXCEPTION = "exception"
LOGGED_IDS = 20


class SyncLoop:
    """Runs client sync for every tenant until ``stop`` is set."""

    name = "sync"

    def __init__(
        self,
        store: Store,
        client: SyncClient,
        settings: Settings,
        metrics: Metrics,
        on_queued: Callable[[], None],
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._store = store
        self._client = client
        self._settings = settings
        self._metrics = metrics
        self._on_queued = on_queued
        self._clock = clock
        self._wakeup = asyncio.Event()
        self._acks = Acknowledgements(store)
        self._leases = TenantLeases(store, settings.sync_lease_seconds, clock)
        self._states: dict[str, TenantSyncState] = {}
        self._slots = asyncio.Semaphore(settings.sync_concurrency)
        self._running: dict[str, asyncio.Task[None]] = {}
        policy = SyncPolicy(settings.sync_interval, settings.sync_retry_base_delay)
        self._ledger = SyncLedger(store, policy)
        self._tenant_nudges: set[str] = set()
        self._admin_nudge = False
        self._events_generation = 0
        self._stats_at = 0.0
        self._warned_no_destination: set[str] = set()
        self._warned_implied: set[str] = set()
        self._no_destination: set[str] = set()
        self._no_destination_at = -float("inf")

    # -- signals from the API and the dispatcher ----------------------------
    def wake(self, tenant_id: str | None = None) -> None:
        """Run-now. None (admin): call every tenant not in DND; a tenant: clear its DND."""
        if tenant_id is None:
            self._admin_nudge = True
        else:
            self._tenant_nudges.add(tenant_id)
        self._wakeup.set()

    def wake_for_events(self, tenant_ids: Collection[str] = ()) -> None:
        """New events were recorded (for ``tenant_ids``; empty: unknown): report them now.

        Under load the dispatcher commits outcomes every few milliseconds; a pass for
        each costs three queries and finds nothing to start when every tenant named is
        already being synced (its task goes on while events remain, and its end starts
        a pass) or has nowhere to report to. Such wake-ups are skipped.
        """
        self._events_generation += 1
        if tenant_ids and self._handled(tenant_ids):
            return
        self._wakeup.set()

    def _handled(self, tenant_ids: Collection[str]) -> bool:
        fresh = asyncio.get_running_loop().time() - self._no_destination_at < NO_DESTINATION_FRESH
        return all(
            tenant_id in self._running or (fresh and tenant_id in self._no_destination)
            for tenant_id in tenant_ids
        )

    # -- the loop -----------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                self._wakeup.clear()
                started = asyncio.get_running_loop().time()
                next_due = await self._pass_logged()
                await self._sleep(stop, next_due)
                await self._space_out(stop, started)
        finally:
            await self._cancel_tasks()
            await self._acks.drain()

    async def _pass_logged(self) -> float:
        now = self._clock.now()
        try:
            return await self._pass(now)
        except Exception:
            log.exception("sync_pass_failed")
            return now + self._settings.sync_retry_base_delay

    async def _sleep(self, stop: asyncio.Event, until: float) -> None:
        """Until woken, stopped, or the clock reaches ``until`` (test mode waits for a
        wake only). Measured from the clock now, not from the start of the pass: time
        went on while the pass awaited the database."""
        timeout = None if self._settings.test_mode else until - self._clock.now()
        await wait_for_any(self._clock, timeout, self._wakeup, stop)

    async def _space_out(self, stop: asyncio.Event, started: float) -> None:
        """Keep event-driven passes EVENT_PASS_SPACING apart; run-now goes at once."""
        if stop.is_set() or self._admin_nudge or self._tenant_nudges:
            return
        wait = started + EVENT_PASS_SPACING - asyncio.get_running_loop().time()
        if wait > 0:
            await asyncio.sleep(wait)

    async def _cancel_tasks(self) -> None:
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _pass(self, now: float) -> float:
        """Start a task for every due tenant; when the next one is due."""
        await self._refresh_stats(now)
        nudged, admin = await self._take_nudges()
        await self._load_states()
        pending = set(await self._store.outbox.tenants_with_unreported())
        policy = self._ledger.policy
        next_due = now + policy.interval
        for tenant, target in await self._candidates(pending):
            if tenant.id in nudged or admin:
                self._ledger.run_now(tenant.id, own_tenant=tenant.id in nudged, now=now)
            if tenant.id in self._running:
                continue
            schedule = self._ledger.schedule_of(tenant.id)
            due = schedule.due_at(policy, has_events=tenant.id in pending)
            held_until = self._leases.held_elsewhere(self._states.get(tenant.id), now)
            if due > now:
                next_due = min(next_due, due)
            elif held_until is not None:
                next_due = min(next_due, held_until, now + LEASE_POLL_SECONDS)
            else:
                self._start(tenant, target, must_call=schedule.heartbeat_owed(policy, now))
        return next_due

    async def _take_nudges(self) -> tuple[set[str], bool]:
        nudged, self._tenant_nudges = self._tenant_nudges, set()
        admin, self._admin_nudge = self._admin_nudge, False
        for tenant_id in nudged:
            await self._ledger.clear_dnd(tenant_id)
        return nudged, admin

    async def _load_states(self) -> None:
        """Persisted sync state (shared by every process) merged with this process's."""
        states = await self._store.sync_state.all()
        self._states = {state.tenant_id: state for state in states}
        self._ledger.load(states)

    async def _candidates(self, pending: set[str]) -> list[tuple[Tenant, SyncTarget]]:
        """Active tenants (heartbeats) and tenants with events, that have a destination."""
        tenants = {t.id: t for t in await self._store.tenants.all(active_only=True)}
        for tenant_id in pending - tenants.keys():
            tenant = await self._store.tenants.get(tenant_id)
            if tenant is not None:
                tenants[tenant_id] = tenant
        found = []
        no_destination = set()
        for tenant in tenants.values():
            target = target_for(tenant, self._settings)
            if target is not None:
                found.append((tenant, target))
            else:
                no_destination.add(tenant.id)
                if tenant.id in pending:
                    self._warn_no_destination(tenant.id)
        self._no_destination = no_destination
        self._no_destination_at = asyncio.get_running_loop().time()
        return found

    def _warn_no_destination(self, tenant_id: str) -> None:
        if tenant_id not in self._warned_no_destination:
            self._warned_no_destination.add(tenant_id)
            log.warning("sync_destination_missing", tenant_id=tenant_id)

    async def _refresh_stats(self, now: float) -> None:
        if now - self._stats_at < STATS_REFRESH_SECONDS:
            return
        self._stats_at = now
        await self._metrics.mirror_outbox(self._store.outbox, now)

    # -- one tenant ----------------------------------------------------------
    def _start(self, tenant: Tenant, target: SyncTarget, *, must_call: bool) -> None:
        """Sync the tenant in a task; ``must_call`` when a heartbeat is owed (else the
        tenant is called only if events not already being acknowledged remain)."""
        task = asyncio.create_task(
            self._sync_tenant(tenant.id, target, must_call), name=f"sync-{tenant.id}"
        )
        self._running[tenant.id] = task
        task.add_done_callback(lambda _t: self._finished(tenant.id))

    def _finished(self, tenant_id: str) -> None:
        self._running.pop(tenant_id, None)
        self._wakeup.set()

    async def _sync_tenant(self, tenant_id: str, target: SyncTarget, must_call: bool) -> None:
        """If this process gets the tenant's lease, sync it while holding it."""
        try:
            if await self._leases.take(tenant_id, self._clock.now()):
                await self._holding(tenant_id, target, must_call)
        except Exception:
            log.exception("sync_tenant_failed", tenant_id=tenant_id)
            self._metrics.sync_calls.labels(tenant_id, OUTCOME_EXCEPTION).inc()
            self._ledger.failed(tenant_id, self._clock.now())

    async def _holding(self, tenant_id: str, target: SyncTarget, must_call: bool) -> None:
        """Rounds with the lease renewed; it is released only once what was
        acknowledged is written, so the next holder never reads those events."""
        lost = asyncio.Event()
        keeper = asyncio.create_task(self._leases.keep(tenant_id, lost), name=f"lease-{tenant_id}")
        try:
            await self._rounds(tenant_id, target, must_call, lost)
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            await self._acks.wait(tenant_id)
            await self._leases.release(tenant_id)

    async def _rounds(
        self, tenant_id: str, target: SyncTarget, must_call: bool, lost: asyncio.Event
    ) -> None:
        """Call until nothing is left: more batches, ``queued`` (capped), new events."""
        queued_rounds = 0
        while True:
            step = await self._one_round(tenant_id, target, must_call=must_call, lost=lost)
            if step is _Next.QUEUED:
                queued_rounds += 1
                if queued_rounds > MAX_QUEUED_ROUNDS:
                    log.warning("sync_queued_rounds_capped", tenant_id=tenant_id)
                    return
            elif step is _Next.STOP:
                return
            must_call = step is not _Next.IF_EVENTS

    async def _one_round(
        self, tenant_id: str, target: SyncTarget, *, must_call: bool, lost: asyncio.Event
    ) -> _Next:
        """One call if there is reason for it (and the lease is still ours); what next."""
        generation = self._events_generation
        forced = self._ledger.call_started(tenant_id)
        async with self._slots:
            if lost.is_set():
                return _Next.STOP
            events = await self._next_batch(tenant_id)
            if not (events or must_call or forced):
                return _Next.STOP
            answer = await self._call(tenant_id, target, events)
        if answer is None:
            return _Next.STOP
        if answer.queued > 0:
            self._on_queued()
            return _Next.QUEUED
        if self._ledger.schedule_of(tenant_id).forced:
            return _Next.CALL
        more = len(events) >= self._settings.report_batch_size
        return _Next.IF_EVENTS if more or generation != self._events_generation else _Next.STOP

    async def _next_batch(self, tenant_id: str) -> list[Event]:
        """The oldest unreported events, minus those whose acknowledgement is in flight."""
        skip = self._acks.in_flight(tenant_id)
        size = self._settings.report_batch_size
        events = await self._store.outbox.unreported(tenant_id, size + len(skip))
        return [e for e in events if e.event_id not in skip][:size]

    async def _call(
        self, tenant_id: str, target: SyncTarget, events: Sequence[Event]
    ) -> SyncAnswer | None:
        """POST one batch; acknowledge it on ``ok: true``, else start/extend the back-off."""
        body = reports.encode_report(events)
        result = await self._client.send(target, body, self._clock.now())
        now = self._clock.now()
        if isinstance(result, SyncFailure):
            self._metrics.sync_calls.labels(tenant_id, str(result.kind)).inc()
            retry_in = self._ledger.failed(tenant_id, now)
            log.warning(
                "sync_call_failed",
                tenant_id=tenant_id,
                reason=str(result.kind),
                detail=result.detail,
                status_code=result.status_code,
                events=len(events),
                retry_in=round(retry_in, 3),
            )
            return None
        if events:
            await self._acks.submit(tenant_id, [e.event_id for e in events], now)
        await self._ledger.succeeded(tenant_id, result.next_sync_after, now)
        outcome = OUTCOME_OK_IMPLIED if result.implied else OUTCOME_OK
        self._metrics.sync_calls.labels(tenant_id, outcome).inc()
        if result.implied:
            self._warn_implied(tenant_id)
        self._log_answer(tenant_id, result, len(events))
        return result

    def _warn_implied(self, tenant_id: str) -> None:
        """Once per tenant: its application acknowledges without the ``ok`` field."""
        if tenant_id not in self._warned_implied:
            self._warned_implied.add(tenant_id)
            log.warning("sync_answer_without_ok", tenant_id=tenant_id)

    @staticmethod
    def _log_answer(tenant_id: str, answer: SyncAnswer, reported: int) -> None:
        log.debug(
            "sync_call_ok",
            tenant_id=tenant_id,
            events=reported,
            queued=answer.queued,
            next_sync_after=answer.next_sync_after,
        )
        if answer.errors or answer.not_found:
            log.warning(
                "sync_answer_flagged_ids",
                tenant_id=tenant_id,
                error_count=len(answer.errors),
                not_found_count=len(answer.not_found),
                error=answer.errors[:LOGGED_IDS],
                not_found=answer.not_found[:LOGGED_IDS],
            )

    # -- status for GET /tenants/sync-status ------------------------------------
    async def sync_status(self, now: float) -> list[dict[str, object]]:
        """Per active tenant: last sync, when the next call is due, whether in DND."""
        await self._load_states()
        pending = set(await self._store.outbox.tenants_with_unreported())
        rows: list[dict[str, object]] = []
        for tenant in await self._store.tenants.all(active_only=True):
            schedule = self._ledger.schedule_of(tenant.id)
            due: float | None = None
            if target_for(tenant, self._settings) is not None:
                has_events = tenant.id in pending
                due = max(now, schedule.due_at(self._ledger.policy, has_events=has_events))
            rows.append(
                {
                    "tenant_id": tenant.id,
                    "last_sync_ts": _wire(schedule.last_sync_ts),
                    "next_sync_due": _wire(due),
                    "in_dnd": schedule.in_dnd(now),
                }
            )
        return rows


class _Next(Enum):
    """What a tenant's task does after a round."""

    STOP = "stop"
    CALL = "call"  # again at once, events or not
    IF_EVENTS = "if_events"  # again only if events are waiting
    QUEUED = "queued"  # again at once: the application has more to hand over


def _wire(ts: float | None) -> int | None:
    return None if ts is None else int(ts)
