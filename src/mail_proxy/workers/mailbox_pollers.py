"""The mailbox pollers: read bounces and PEC receipts, record them, flag them.

``MailboxPollers`` is the supervised loop. It reads which mailboxes to poll (the
instance's bounce mailbox when enabled, and each PEC account's), runs one
``MailboxPoller`` per mailbox, and re-reads them when told (``reload``, after
``PUT /instance`` or ``POST /instance/reload-bounce``) or every
``RECONCILE_SECONDS`` (new PEC accounts); a poller whose settings changed is
stopped and started again with the new ones. It also appends ``pec_timeout``
events for PEC sends never accepted.

A ``MailboxPoller`` polls only while it holds its mailbox's lease in the database,
so one process at a time reads a mailbox. Each session: log in, handle what is not
flagged, then wait for mail (IDLE, or the poll interval). Every mail is recorded in
one transaction with the bookkeeping that makes it "handled" and only then
flagged: a crash in between leaves it unflagged but handled, and the next poll only
flags it. A mailbox that is down or refuses the login is reported in ``status``,
the metrics and the log, retried with back-off, and never touches delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import structlog

from mail_proxy.clock import wait_for_any
from mail_proxy.domain.clock import Clock
from mail_proxy.domain.pec import PecReceipt
from mail_proxy.domain.retry import backoff_delay
from mail_proxy.domain.returned_mail import Ignored, Returned, read_returned
from mail_proxy.domain.suppression import SoftBouncePolicy
from mail_proxy.domain.text import storable
from mail_proxy.errors import MailProxyError
from mail_proxy.imap import IMAP_FAILURES, ImapMailbox, MailboxConfig
from mail_proxy.imap.mailbox import FETCH_BATCH
from mail_proxy.metrics import Metrics
from mail_proxy.ports import Store
from mail_proxy.ports.returned_mail import BounceRecord, BounceRules
from mail_proxy.settings import Settings
from mail_proxy.sync.lease import new_holder

log = structlog.get_logger(__name__)

RECONCILE_SECONDS = 60.0
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_CAP_SECONDS = 300.0
BOUNCE_MAILBOX = "bounce"


@dataclass
class MailboxStatus:
    """What ``/status`` shows of one mailbox: ``state`` is ``polling``, ``standby``
    (another process holds the lease), ``error`` or ``starting``."""

    mailbox: str
    state: str = "starting"
    last_poll_ts: int | None = None
    last_error: str | None = None
    failures: int = 0
    handled: int = 0
    idle: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class PollerContext:
    """What every poller of a process shares."""

    store: Store
    metrics: Metrics
    clock: Clock
    rules: BounceRules
    lease_seconds: float
    idle_seconds: float
    holder: str = field(default_factory=new_holder)
    #: Told which tenants got new events, so that client sync reports them at once.
    on_events: Callable[[Collection[str]], None] | None = None

    def events_recorded(self, tenant_ids: Collection[str]) -> None:
        if self.on_events is not None and tenant_ids:
            self.on_events(tenant_ids)


class MailboxPoller:
    def __init__(self, config: MailboxConfig, ctx: PollerContext) -> None:
        self.config = config
        self._ctx = ctx
        self.status = MailboxStatus(config.name)

    async def run(self, stop: asyncio.Event) -> None:
        ctx, name = self._ctx, self.config.name
        try:
            while not stop.is_set():
                now = ctx.clock.now()
                if not await ctx.store.mailboxes.take_lease(
                    name, ctx.holder, now, now + ctx.lease_seconds
                ):
                    self.status.state = "standby"
                    await wait_for_any(ctx.clock, ctx.lease_seconds / 3, stop)
                    continue
                try:
                    await self._session(stop)
                except IMAP_FAILURES as exc:
                    await self._failed(exc, stop)
                except Exception as exc:  # the database away, a bug: back off, never die
                    log.exception("mailbox_poller_crashed", mailbox=name)
                    await self._failed(exc, stop)
        finally:
            with contextlib.suppress(MailProxyError):
                await ctx.store.mailboxes.release_lease(name, ctx.holder)

    async def _failed(self, exc: BaseException, stop: asyncio.Event) -> None:
        status, name = self.status, self.config.name
        status.state, status.failures = "error", status.failures + 1
        status.last_error = storable(str(exc) or type(exc).__name__, 300)
        self._ctx.metrics.mailbox_poll_errors.labels(mailbox=name).inc()
        delay = backoff_delay(status.failures, BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS)
        log.warning("mailbox_poll_failed", mailbox=name, error=status.last_error, retry_in=delay)
        with contextlib.suppress(MailProxyError):
            await self._ctx.store.mailboxes.release_lease(name, self._ctx.holder)
        await wait_for_any(self._ctx.clock, delay, stop)

    async def _session(self, stop: asyncio.Event) -> None:
        ctx, name = self._ctx, self.config.name
        mailbox = ImapMailbox(self.config)
        try:
            await mailbox.open()
            self.status.idle = mailbox.idle_capable
            while not stop.is_set():
                await self.poll_once(mailbox)
                now = ctx.clock.now()
                if not await ctx.store.mailboxes.take_lease(
                    name, ctx.holder, now, now + ctx.lease_seconds
                ):
                    return
                wait = ctx.idle_seconds if mailbox.idle_capable else self.config.poll_interval
                await mailbox.wait_for_mail(min(wait, ctx.lease_seconds / 3), stop)
        finally:
            await mailbox.close()

    async def poll_once(self, mailbox: ImapMailbox) -> int:
        """Handle every unflagged mail; returns how many were new to the database."""
        ctx, name = self._ctx, self.config.name
        uids = await mailbox.unhandled()
        ctx.metrics.mailbox_backlog.labels(mailbox=name).set(len(uids))
        keys = {uid: f"{mailbox.uidvalidity}:{uid}" for uid in uids}
        done = await ctx.store.mailboxes.handled(name, list(keys.values()))
        new = 0
        for start in range(0, len(uids), FETCH_BATCH):
            chunk = uids[start : start + FETCH_BATCH]
            raws = await mailbox.fetch([uid for uid in chunk if keys[uid] not in done])
            mails = [(keys[uid], read_returned(raw)) for uid, raw in raws.items()]
            if mails:
                new += await self._record(mails)
            await mailbox.mark_handled(chunk)
        now = ctx.clock.now()
        self.status.state, self.status.failures, self.status.last_error = "polling", 0, None
        self.status.last_poll_ts, self.status.handled = int(now), self.status.handled + new
        ctx.metrics.mailbox_last_poll.labels(mailbox=name).set(now)
        ctx.metrics.mailbox_backlog.labels(mailbox=name).set(0)
        return new

    async def _record(self, mails: list[tuple[str, Returned]]) -> int:
        """Record one fetched chunk in one transaction; how many were new."""
        ctx, name = self._ctx, self.config.name
        results = await ctx.store.mailboxes.record(
            name, mails, tenant_id=self.config.tenant_id, rules=ctx.rules, now=ctx.clock.now()
        )
        tenants: set[str] = set()
        for (_, found), done in zip(mails, results, strict=True):
            if not done.new:
                continue
            if isinstance(found, PecReceipt) and done.receipt_matched is not None:
                ctx.metrics.pec_receipts.labels(event=found.event.value).inc()
                if done.receipt_matched and self.config.tenant_id is not None:
                    tenants.add(self.config.tenant_id)
                log.info("pec_receipt", mailbox=name, pec_event=found.event.value,
                         matched=done.receipt_matched)  # fmt: skip
            elif isinstance(found, Ignored):
                log.debug("returned_mail_ignored", mailbox=name, reason=found.reason)
            for record in done.bounces:
                self._count(record)
                if record.tenant_id is not None:
                    tenants.add(record.tenant_id)
        ctx.events_recorded(tenants)
        return sum(done.new for done in results)

    def _count(self, record: BounceRecord) -> None:
        self._ctx.metrics.bounces.labels(type=record.bounce_type).inc()
        if record.tenant_id is None:
            self._ctx.metrics.bounces_unmatched.inc()
        log.info(
            "bounce_recorded",
            mailbox=self.config.name,
            tenant_id=record.tenant_id,
            message_id=record.message_id,
            bounce_type=record.bounce_type,
            bounce_code=record.bounce_code,
            suppressed=record.suppressed,
        )


def bounce_rules(settings: Settings) -> BounceRules:
    soft = SoftBouncePolicy(settings.soft_bounce_limit, settings.soft_bounce_window)
    return BounceRules(soft, settings.bounce_match_window)


class MailboxPollers:
    """The supervised loop running one ``MailboxPoller`` per configured mailbox."""

    name = "mailbox_pollers"

    def __init__(
        self,
        store: Store,
        settings: Settings,
        metrics: Metrics,
        clock: Clock,
        on_events: Callable[[Collection[str]], None] | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._ctx = PollerContext(
            store,
            metrics,
            clock,
            bounce_rules(settings),
            settings.mailbox_lease_seconds,
            settings.mailbox_idle_seconds,
            on_events=on_events,
        )
        self._reload = asyncio.Event()
        self._running: dict[str, tuple[MailboxPoller, asyncio.Event, asyncio.Task[None]]] = {}

    def reload(self) -> None:
        """Re-read the mailboxes now (their settings changed)."""
        self._reload.set()

    def status(self) -> list[dict[str, Any]]:
        return [poller.status.as_dict() for poller, _, _ in self._running.values()]

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                self._reload.clear()
                configs = await self.configs()
                await self._reconcile(configs)
                if any(c.tenant_id is not None for c in configs.values()):
                    await self._pec_timeouts()
                await wait_for_any(self._ctx.clock, RECONCILE_SECONDS, stop, self._reload)
        finally:
            await self._stop_all()

    async def configs(self) -> dict[str, MailboxConfig]:
        """The mailboxes to poll now, by name."""
        found: dict[str, MailboxConfig] = {}
        bounce = (await self._store.instance.get()).get("bounce")
        if isinstance(bounce, dict) and bounce.get("enabled") and bounce.get("imap_host"):
            found[BOUNCE_MAILBOX] = MailboxConfig(
                name=BOUNCE_MAILBOX,
                host=str(bounce["imap_host"]),
                port=int(bounce.get("imap_port") or (993 if bounce.get("imap_ssl") else 143)),
                user=str(bounce.get("imap_user") or ""),
                password=str(bounce.get("imap_password") or ""),
                ssl=bool(bounce.get("imap_ssl", True)),
                folder=str(bounce.get("imap_folder") or "INBOX"),
                poll_interval=float(bounce.get("poll_interval_seconds") or 60),
            )
        for account in await self._store.accounts.all():
            if account.is_pec_account and account.imap_host:
                name = f"pec:{account.tenant_id}/{account.id}"
                found[name] = MailboxConfig(
                    name=name,
                    host=account.imap_host,
                    port=account.imap_port or (993 if account.imap_ssl else 143),
                    user=account.imap_user or "",
                    password=account.imap_password or "",
                    ssl=account.imap_ssl,
                    folder=account.imap_folder or "INBOX",
                    poll_interval=60.0,
                    tenant_id=account.tenant_id,
                )
        return found

    async def _reconcile(self, configs: dict[str, MailboxConfig]) -> None:
        """Stop the pollers whose mailbox is gone or changed (and wait for them to
        give their lease up), then start one for each mailbox without one."""
        for name, (poller, stop, task) in list(self._running.items()):
            if configs.get(name) != poller.config:
                stop.set()
                del self._running[name]
                await asyncio.gather(task, return_exceptions=True)
                log.info("mailbox_poller_stopped", mailbox=name)
        for name, config in configs.items():
            if name not in self._running:
                poller, stop = MailboxPoller(config, self._ctx), asyncio.Event()
                task = asyncio.create_task(poller.run(stop), name=f"mailbox:{name}")
                self._running[name] = (poller, stop, task)
                log.info("mailbox_poller_started", mailbox=name, host=config.host)

    async def _pec_timeouts(self) -> None:
        now = self._ctx.clock.now()
        count = await self._store.mailboxes.pec_timeouts(
            now, float(self._settings.pec_acceptance_timeout)
        )
        if count and self._ctx.on_events is not None:
            self._ctx.on_events(())  # tenants unknown here: every tenant with events
        if count:
            self._ctx.metrics.pec_receipts.labels(event="pec_timeout").inc(count)
            log.info("pec_timeouts", count=count)

    async def _stop_all(self) -> None:
        running, self._running = self._running, {}
        for _, stop, _ in running.values():
            stop.set()
        tasks = [task for _, _, task in running.values()]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
