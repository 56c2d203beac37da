"""The dispatcher: claim due messages, send them through SMTP, record the outcome.

One loop claims leased batches from the store (priority 0 in a pass of its own
that may overtake any backlog, made when woken and at least once per loop
interval, then 1-3) and hands each message to the *lane* of
its account. A lane runs at most ``GMP_MAX_CONCURRENT_PER_ACCOUNT`` sends at
once; every send also holds one of its tenant's ``GMP_MAX_CONCURRENT_PER_TENANT``
slots and then one of ``GMP_MAX_CONCURRENT_SENDS`` global slots, and a lane never
holds more than its account's batch of waiting messages, so a slow or rate-limited
account, or a tenant with many accounts at a slow server, cannot starve the
others. A lane holds a message once: claimed again (its lease ran out while it
waited), it keeps its place with the newer lease. The loop claims again at once
while claims bring work and there is room; otherwise it sleeps until ``run_now()``
(POST /commands/run-now), ``wake()`` (new messages; ignored in test mode, where
nothing leaves before run-now), a lane running dry, or the
``GMP_SEND_LOOP_INTERVAL`` timer (not in test mode). An instance-wide suspension
is state in the store, so every process on the database honours it within that
interval and it survives restarts.

Per message: fetch its attachments (``mail_proxy.attachments``: a file that is
gone, refused or too large fails the message, one that cannot be had now defers it
on the retry schedule; fetches end before the lease does), let the tenant's
large-file policy rewrite or refuse them, build the MIME bytes (a bad payload
fails at once), check the account's rate limit in the shared send log (over the
limit: deferred to when the window reopens without using a retry attempt, or
failed with ``reject``), send, and turn the result into an outcome: sent,
deferred by the retry schedule, or error. Outcomes are committed in groups by
``FinishBuffer``; a lease is finished only by that commit. A send must end before
its lease does, so a message is never in two dispatchers' hands at once.

Graceful stop: no more claims; waiting messages are released at once; sends in
flight get ``GMP_SHUTDOWN_GRACE_SECONDS`` to finish, then are cancelled and their
leases released for another process.
"""

from __future__ import annotations

import asyncio
import heapq
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import structlog

from mail_proxy.attachments import (
    NO_POLICY,
    AttachmentPolicy,
    AttachmentResolver,
    AttachmentUnavailable,
)
from mail_proxy.clock import SYSTEM_CLOCK, wait_for_any
from mail_proxy.domain.clock import Clock
from mail_proxy.domain.mime import Attachment, Envelope, build_message, envelope_of
from mail_proxy.domain.models import (
    Account,
    ClaimedMessage,
    Deferred,
    Failed,
    LeaseRequest,
    MessageRecord,
    Outcome,
    Sent,
)
from mail_proxy.domain.outgoing import OutgoingMessage, Unsendable, from_payload
from mail_proxy.domain.retry import GiveUp, RetryPolicy
from mail_proxy.domain.smtp_replies import Classification, Transient
from mail_proxy.domain.text import storable
from mail_proxy.metrics import Metrics
from mail_proxy.ports import Store
from mail_proxy.settings import Settings
from mail_proxy.smtp.base import Mailer, MailerError, SendResult, classify
from mail_proxy.workers.accounts import AccountCache, AccountKey, RateGate
from mail_proxy.workers.finish_buffer import FinishBuffer

log = structlog.get_logger(__name__)

ERROR_BACKOFF = 1.0
#: A send must end this long before its lease, leaving time to commit the outcome
#: (a quarter of the lease when leases are shorter than four times this).
LEASE_MARGIN = 5.0


@dataclass
class _Lane:
    """The messages of one account: ``waiting`` in dispatch order (priority, pk),
    ``claims`` the newest lease of every message waiting or being sent."""

    waiting: list[tuple[int, int]] = field(default_factory=list)
    claims: dict[int, ClaimedMessage] = field(default_factory=dict)
    sending: int = 0
    workers: int = 0


class Dispatcher:
    """Delivers queued messages; see the module docstring for the rules."""

    name = "dispatcher"

    def __init__(
        self,
        store: Store,
        mailer: Mailer,
        settings: Settings,
        metrics: Metrics,
        clock: Clock = SYSTEM_CLOCK,
        *,
        attachments: AttachmentResolver,
        attachment_policy: AttachmentPolicy = NO_POLICY,
    ):
        self._store = store
        self._attachments = attachments
        self._policy = attachment_policy
        self._mailer = mailer
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._retry = RetryPolicy(settings.retry_delays)
        self._lease_margin = min(LEASE_MARGIN, settings.lease_seconds / 4)
        #: Called with the tenants whose outcomes (and events) were just committed.
        self.on_outcome: Callable[[set[str]], None] | None = None
        self._active = True
        self._active_checked = -float("inf")
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(settings.max_concurrent_sends)
        self._tenant_slots: dict[str, asyncio.Semaphore] = {}
        self._lanes: dict[AccountKey, _Lane] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._accounts = AccountCache(store)
        self._rate_gate = RateGate(store, metrics)
        self._finished = self._new_finish_buffer()
        self._backlog = False
        #: When the last busy round looked for priority 0, and whether more may be due.
        self._urgent_checked = -float("inf")
        self._urgent_more = False
        self._explore = True
        self._stopping = False
        self._running = False

    # -- control -----------------------------------------------------------------

    @property
    def active(self) -> bool:
        """False while the whole instance is suspended: nothing new is claimed.

        The state is the store's (``Control.instance_active``), shared by every process
        on the database; this is this process's copy, re-read at least every
        ``GMP_SEND_LOOP_INTERVAL`` and whenever the dispatcher is woken.
        """
        return self._active

    @active.setter
    def active(self, value: bool) -> None:
        """Apply a suspend/activate already stored, here at once rather than at the
        next re-read; on activation look for due messages (``wake``: not in test
        mode, where only run-now sends)."""
        self._active = value
        if value:
            self.wake()

    def wake(self) -> None:
        """New messages were enqueued: look for due messages now. Ignored in test
        mode, where nothing is sent until ``run_now``."""
        if not self._settings.test_mode:
            self.run_now()

    def run_now(self) -> None:
        """Make a dispatch pass now (POST /commands/run-now), in test mode too."""
        self._explore = True
        self._wakeup.set()

    # -- messages handed over by the intake ------------------------------------------

    def lease_for(self, count: int) -> LeaseRequest | None:
        """A lease for ``count`` messages about to be queued, when this dispatcher runs,
        is idle and active, and they fit one account's concurrent sends: the intake
        takes it in the enqueue's transaction and hands the messages over (``take``),
        so they go out as soon as it commits, with no claim in between. Otherwise
        None, and a wake-up and a claim find them as usual."""
        idle = self._running and not self._stopping and self._active and not self._lanes
        if not idle or self._settings.test_mode:
            return None
        if count > self._settings.max_concurrent_per_account:
            return None
        return LeaseRequest(uuid.uuid4().hex, self._clock.now() + self._settings.lease_seconds)

    def take(self, claimed: Sequence[ClaimedMessage]) -> None:
        """Messages leased with a ``lease_for`` lease: into their lanes now (given back
        if the dispatcher is stopping)."""
        if self._stopping or not self._running:
            for message in claimed:
                self._finished.release(message)
            return
        self._accept(list(claimed), urgent=True)

    def _new_finish_buffer(self) -> FinishBuffer:
        return FinishBuffer(self._store, self._metrics, on_flushed=self._outcomes_committed)

    def _outcomes_committed(self, tenant_ids: set[str]) -> None:
        if self.on_outcome is not None:
            self.on_outcome(tenant_ids)

    # -- the loop ------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until ``stop`` is set, then drain (see module docstring)."""
        self._stopping = False
        self._finished = self._new_finish_buffer()  # a restart after a crash: closed
        watcher = asyncio.create_task(self._wake_on(stop))
        flusher = asyncio.create_task(self._finished.run())
        again = not self._settings.test_mode
        self._running = True
        try:
            await self._start_suspended_if_configured()
            while not stop.is_set():
                if not again:
                    await self._sleep()
                self._wakeup.clear()
                explore, self._explore = self._explore, False
                again = not stop.is_set() and await self._iteration(explore)
        finally:
            self._running = False
            watcher.cancel()
            await self._drain()
            await self._close_finisher(flusher)

    async def _start_suspended_if_configured(self) -> None:
        """``GMP_SCHEDULER_ACTIVE=false``: a database that was never suspended or
        activated starts suspended. A stored state wins, so an operator's activate is
        not undone by the next restart of a process started with the variable."""
        if self._settings.scheduler_active:
            return
        await self._store.control.set_instance_active(False, if_unset=True)
        self._active = await self._store.control.instance_active()
        self._active_checked = self._clock.monotonic()

    async def _close_finisher(self, flusher: asyncio.Task[None]) -> None:
        """Commit every buffered outcome; give up (leases will expire) if the store
        stays unavailable past the grace period."""
        self._finished.close()
        _, late = await asyncio.wait({flusher}, timeout=self._settings.shutdown_grace_seconds + 5)
        if late:
            log.error("dispatch_outcomes_not_committed", count=len(self._finished))
            flusher.cancel()

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wakeup.set()

    async def _iteration(self, explore: bool) -> bool:
        """One claim round; True to go again at once. Never raises."""
        try:
            if not await self._instance_active(explore):
                return False
            return await self._claim_round(explore)
        except Exception:
            log.exception("dispatch_round_failed")
            await wait_for_any(self._clock, ERROR_BACKOFF, self._wakeup)
            return False

    async def _instance_active(self, explore: bool) -> bool:
        """The stored suspend state, re-read once per loop interval, and at once when
        woken while suspended (activate, run-now): a busy intake waking an active
        dispatcher for every request adds no query."""
        now = self._clock.monotonic()
        due = now - self._active_checked >= self._settings.send_loop_interval
        if due or (explore and not self._active):
            self._active = await self._store.control.instance_active()
            self._active_checked = now
        return self._active

    async def _sleep(self) -> None:
        timeout = None if self._settings.test_mode else self._settings.send_loop_interval
        if not await wait_for_any(self._clock, timeout, self._wakeup):
            self._explore = True

    # -- claiming ------------------------------------------------------------------

    def _claim_limit(self, explore: bool) -> int:
        """How many messages to lease now.

        Enough to refill every lane to its account's batch; when idle, or when woken
        or the timer fired (``explore``), also room for accounts with no lane yet.
        A claim cannot choose accounts, so messages of an already full lane are
        given back at once; claiming by lane deficit keeps that waste small.
        """
        deficit = sum(
            max(0, self._lane_capacity(key) - len(lane.waiting) - lane.sending)
            for key, lane in self._lanes.items()
        )
        slots = self._settings.max_concurrent_sends
        allowance = max(1, slots // 4) if explore else 0
        if not self._lanes:
            allowance = 2 * slots
        return min(self._settings.claim_limit, deficit + allowance)

    async def _claim_round(self, explore: bool) -> bool:
        """Claim what the lanes can take. True: claim again at once.

        Busy: priority 0 in a pass of its own, taken even into full lanes so it
        overtakes their backlog, then priorities 1-3. Idle (no lanes): one claim in
        priority order gives the same messages at half the database work.
        """
        if not self._lanes:
            more, useful = await self._claim_pass(0, 3, self._claim_limit(explore))
            self._backlog = more
            return more and useful
        urgent, urgent_useful = False, False
        if self._look_for_urgent(explore):
            urgent, urgent_useful = await self._claim_pass(
                0, 0, self._settings.max_concurrent_sends, urgent=True
            )
            self._urgent_more = urgent
        if explore or self._a_lane_runs_low():
            more, useful = await self._claim_pass(1, 3, self._claim_limit(explore))
        else:  # woken by a lane that was refilled since: nothing to ask for yet
            more, useful = self._backlog, False
        self._backlog = urgent or more
        return (urgent and urgent_useful) or (more and useful and self._a_lane_runs_low())

    def _a_lane_runs_low(self) -> bool:
        """Whether the lanes want a claim: some lane is below its refill mark. A lane
        calls when it runs low, and again with every message it starts while it stays
        low, so calls made while a claim was out are stale once it returns; and a claim
        that came back full usually filled the lanes. Claiming then would ask for the
        few messages sent meanwhile (under load most claims were such top-ups of 1 to
        6 messages, each a round trip)."""
        return any(self._runs_low(key, lane) for key, lane in self._lanes.items())

    def _look_for_urgent(self, explore: bool) -> bool:
        """Whether a busy round makes the priority-0 pass: when woken (new messages
        here or, through the work signal, in another process; run-now; the timer),
        while the last pass left more behind, and at least once per loop interval for
        retries falling due. Not in every round: under load most rounds find no
        priority-0 message, and on PostgreSQL those empty claims were half of all
        claim statements."""
        now = self._clock.monotonic()
        if (
            explore
            or self._urgent_more
            or now - self._urgent_checked >= self._settings.send_loop_interval
        ):
            self._urgent_checked = now
            return True
        return False

    async def _claim_pass(
        self, low: int, high: int, limit: int, *, urgent: bool = False
    ) -> tuple[bool, bool]:
        """(more may be due, every claimed message found room in its lane)."""
        if limit <= 0:
            return True, False  # not looked: the lanes are full, assume more is due
        batch = await self._claim(low, high, limit)
        taken = self._accept(batch, urgent=urgent)
        # More may be due when the claim was full or stopped at an account's cap.
        more = len(batch) >= limit or self._hit_account_cap(batch)
        return more, taken == len(batch)

    def _hit_account_cap(self, batch: list[ClaimedMessage]) -> bool:
        counts = Counter((c.record.tenant_id, c.record.account_id) for c in batch)
        return any(count >= self._lane_capacity(key) for key, count in counts.items())

    async def _claim(self, low: int, high: int, limit: int) -> list[ClaimedMessage]:
        return await self._store.queue.claim(
            now=self._clock.now(),
            lease_seconds=self._settings.lease_seconds,
            limit=limit,
            per_account=self._settings.batch_size_per_account,
            min_priority=low,
            max_priority=high,
        )

    def _accept(self, batch: list[ClaimedMessage], *, urgent: bool = False) -> int:
        """Queue claimed messages in their lanes; give back what a full lane can't
        hold (``urgent`` ones always fit)."""
        taken = 0
        for claimed in batch:
            record = claimed.record
            key = (record.tenant_id, record.account_id)
            lane = self._lanes.setdefault(key, _Lane())
            if record.pk in lane.claims:  # already here: keep one entry, the newer lease
                lane.claims[record.pk] = claimed
                taken += 1
                continue
            full = len(lane.waiting) + lane.sending >= self._lane_capacity(key)
            if full and not urgent:
                self._finished.release(claimed)
                continue
            lane.claims[record.pk] = claimed
            heapq.heappush(lane.waiting, (record.priority, record.pk))
            taken += 1
            self._start_workers(key, lane)
        return taken

    def _runs_low(self, key: AccountKey, lane: _Lane) -> bool:
        """Below its refill mark: ask for more while half the lane is still waiting,
        since a claim takes longer than a few sends and waiting until the lane is
        nearly empty idles it."""
        mark = max(self._settings.max_concurrent_per_account, self._lane_capacity(key) // 2)
        return len(lane.waiting) < mark

    def _lane_capacity(self, key: AccountKey) -> int:
        account = self._accounts.peek(key)
        if account is not None and account.batch_size:
            return account.batch_size
        return self._settings.batch_size_per_account

    def _start_workers(self, key: AccountKey, lane: _Lane) -> None:
        wanted = min(self._settings.max_concurrent_per_account, len(lane.waiting))
        while lane.workers < wanted:
            lane.workers += 1
            task = asyncio.create_task(self._lane_worker(key, lane))
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)

    # -- sending -------------------------------------------------------------------

    def _tenant_slot(self, tenant_id: str) -> asyncio.Semaphore:
        slot = self._tenant_slots.get(tenant_id)
        if slot is None:
            slot = asyncio.Semaphore(self._settings.max_concurrent_per_tenant)
            self._tenant_slots[tenant_id] = slot
        return slot

    async def _lane_worker(self, key: AccountKey, lane: _Lane) -> None:
        try:
            while lane.waiting and not self._stopping:
                _, pk = heapq.heappop(lane.waiting)
                # The tenant's slot first: waiting for it holds no global slot.
                async with self._tenant_slot(key[0]), self._slots:
                    if self._stopping:  # stopped while this one waited for a slot
                        self._finished.release(lane.claims.pop(pk))
                        continue
                    lane.sending += 1
                    try:
                        await self._deliver(lane, pk)
                    finally:
                        lane.sending -= 1
                if self._backlog and self._runs_low(key, lane):
                    self._wakeup.set()  # this lane runs dry: refill it
        finally:
            lane.workers -= 1
            if not lane.workers and not lane.waiting and self._lanes.get(key) is lane:
                del self._lanes[key]

    async def _deliver(self, lane: _Lane, pk: int) -> None:
        """Send one message and buffer its outcome; never raises but CancelledError.

        The outcome is finished under the message's newest lease: a claim that came
        in while it was sent replaced the lease this send started with."""
        claimed = lane.claims[pk]
        record = claimed.record
        try:
            outcome = await self._attempt(claimed)
        except asyncio.CancelledError:
            self._finished.release(lane.claims.pop(pk))
            raise
        except Exception as exc:
            log.exception("delivery_crashed", tenant_id=record.tenant_id, message_id=record.id)
            reason = storable(f"internal error: {exc}")
            outcome = self._after_failure(claimed, Transient(reason))
        claimed = lane.claims.pop(pk)
        if outcome is None:
            self._finished.release(claimed)
        else:
            self._finished.finish(claimed, outcome)
            if self._settings.log_delivery_activity:
                _log_outcome(record, outcome)

    async def _attempt(self, claimed: ClaimedMessage) -> Outcome | None:
        """The outcome of one delivery attempt, or None to give the lease back."""
        record = claimed.record
        now = self._clock.now()
        if claimed.lease_expires - now <= self._lease_margin * 1.2:
            return None
        account = await self._accounts.get(record.tenant_id, record.account_id, now)
        if account is None:
            return Failed(now, f"unknown account {record.account_id!r}")
        try:
            message = from_payload(record.payload)
            message, attachments = await self._attachments_of(claimed, message, now)
            envelope = envelope_of(message)
            data = build_message(
                message,
                attachments=attachments,
                now=now,
                message_key=f"{record.tenant_id}/{record.pk}/{record.created_at}",
                html_text_alternative=self._settings.html_text_alternative,
            )
        except Unsendable as exc:
            return Failed(now, str(exc))
        except AttachmentUnavailable as exc:
            return self._after_failure(claimed, Transient(str(exc)))
        whole = await self._accounts.tenant_limits(record.tenant_id, now)
        held = await self._rate_gate.check(account, whole, now)
        if held is not None:
            return held
        return await self._send(claimed, account, envelope, data)

    async def _attachments_of(
        self, claimed: ClaimedMessage, message: OutgoingMessage, now: float
    ) -> tuple[OutgoingMessage, list[Attachment]]:
        """The attachments fetched, within the lease (less the margin kept for the
        send), and passed through the attachment policy (large files)."""
        if not message.attachments:
            return message, []
        tenant = await self._accounts.tenant(claimed.record.tenant_id, now)
        if tenant is None:
            raise Unsendable(f"unknown tenant {claimed.record.tenant_id!r}")
        budget = claimed.lease_expires - self._lease_margin - now
        deadline = asyncio.get_running_loop().time() + budget
        attachments = await self._attachments.resolve(tenant, message, deadline, now)
        return await self._policy.apply(tenant, message, attachments, now)

    async def _send(
        self, claimed: ClaimedMessage, account: Account, envelope: Envelope, data: bytes
    ) -> Outcome:
        budget = claimed.lease_expires - self._lease_margin - self._clock.now()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(budget):
                result = await self._mailer.send(account, envelope, data)
        except MailerError as error:
            return self._after_failure(claimed, classify(error))
        except TimeoutError:
            return self._after_failure(claimed, Transient("timeout: send outlasted its lease"))
        finally:
            elapsed = time.perf_counter() - started
            self._metrics.smtp_latency.labels(account_id=account.id).observe(elapsed)
        return _sent(result, self._clock.now())

    def _after_failure(self, claimed: ClaimedMessage, failure: Classification) -> Outcome:
        now = self._clock.now()
        decision = self._retry.decide(claimed.record.attempts, failure, now)
        if isinstance(decision, GiveUp):
            return Failed(now, decision.reason)
        return Deferred(until=decision.ts, reason=decision.reason, ts=now)

    # -- stopping --------------------------------------------------------------------

    async def _drain(self) -> None:
        """Release waiting messages; give sends in flight a bounded time to finish."""
        self._stopping = True
        for lane in self._lanes.values():
            for _, pk in lane.waiting:
                self._finished.release(lane.claims.pop(pk))
            lane.waiting.clear()
        if self._workers:
            _, late = await asyncio.wait(
                set(self._workers), timeout=self._settings.shutdown_grace_seconds
            )
            for task in late:
                task.cancel()
            if late:
                log.warning("dispatch_sends_cancelled", count=len(late))
                await asyncio.gather(*late, return_exceptions=True)


def _sent(result: SendResult, now: float) -> Sent:
    details = None
    if result.refused:
        details = {"refused": {rcpt: str(reply) for rcpt, reply in result.refused.items()}}
    return Sent(now, details)


def _log_outcome(record: MessageRecord, outcome: Outcome) -> None:
    """One line per attempt (GMP_LOG_DELIVERY_ACTIVITY): ids and result, never content."""
    fields = {
        "tenant_id": record.tenant_id,
        "account_id": record.account_id,
        "message_id": record.id,
        "attempt": record.attempts + 1,
    }
    if isinstance(outcome, Sent):
        log.info("message_sent", **fields)
    elif isinstance(outcome, Deferred):
        log.info("message_deferred", until=int(outcome.until), reason=outcome.reason, **fields)
    else:
        log.info("message_failed", error=outcome.error, **fields)
