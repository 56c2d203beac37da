"""The composition root: picks backends from the settings and wires the workers.

The API holds one ``Runtime``; ``mail-proxy serve`` opens it, runs the loops
(dispatcher, client sync, clean-up, mailbox pollers) under one ``Supervisor`` beside uvicorn and
closes it on shutdown. Tests build one with the loops not started and drive them
by hand. Every loop reads time from the one ``clock`` given here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import structlog

from mail_proxy.attachments import AttachmentResolver
from mail_proxy.attachments.large_files import LargeFilePolicy
from mail_proxy.clock import SYSTEM_CLOCK
from mail_proxy.domain.clock import Clock
from mail_proxy.domain.models import Account, Tenant
from mail_proxy.metrics import Metrics
from mail_proxy.ports import Store
from mail_proxy.settings import Settings
from mail_proxy.smtp.pool import SmtpPool
from mail_proxy.smtp.sink import DevSink
from mail_proxy.storage import open_store
from mail_proxy.sync.http import HttpSyncClient
from mail_proxy.sync.loop import SyncLoop
from mail_proxy.workers.cleanup import CleanupLoop
from mail_proxy.workers.dispatcher import Dispatcher
from mail_proxy.workers.mailbox_pollers import MailboxPollers
from mail_proxy.workers.offload_cleanup import OffloadCleanupLoop
from mail_proxy.workers.supervisor import Loop, Supervisor
from mail_proxy.workers.work_listener import WorkListener

log = structlog.get_logger(__name__)


@dataclass
class Runtime:
    settings: Settings
    store: Store
    metrics: Metrics
    mailer: SmtpPool
    sync_client: HttpSyncClient
    attachments: AttachmentResolver
    dispatcher: Dispatcher
    sync_loop: SyncLoop
    supervisor: Supervisor
    clock: Clock
    started_at: float
    dev_sink: DevSink | None = None
    mailbox_pollers: MailboxPollers | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _workers: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> Runtime:
        store = await open_store(settings)
        metrics = Metrics()
        mailer = SmtpPool(settings)
        sync_client = HttpSyncClient(settings)
        attachments = AttachmentResolver(settings, metrics)
        dispatcher = Dispatcher(
            store,
            mailer,
            settings,
            metrics,
            clock,
            attachments=attachments,
            attachment_policy=LargeFilePolicy(store.offloaded_files, metrics, settings),
        )
        sync_loop = SyncLoop(store, sync_client, settings, metrics, dispatcher.wake, clock)
        dispatcher.on_outcome = sync_loop.wake_for_events
        mailbox_pollers = MailboxPollers(
            store, settings, metrics, clock, on_events=sync_loop.wake_for_events
        )
        loops: list[Loop] = [
            sync_loop,
            CleanupLoop(store, settings, clock),
            OffloadCleanupLoop(store, settings, clock),
            mailbox_pollers,
        ]
        if settings.dispatch:
            loops += [dispatcher, WorkListener(store.work_signals, dispatcher.wake)]
        runtime = cls(
            settings,
            store,
            metrics,
            mailer,
            sync_client,
            attachments,
            dispatcher,
            sync_loop,
            Supervisor(loops, metrics, clock),
            clock,
            started_at=clock.now(),
            mailbox_pollers=mailbox_pollers,
        )
        if settings.dev_sink:
            runtime.dev_sink = DevSink(port=settings.dev_sink_port)
            await runtime.dev_sink.start()
            await _seed_demo(store, runtime.dev_sink, clock.now())
        return runtime

    def start_workers(self) -> None:
        """Run the supervised loops in the background until ``close``."""
        if self._workers is None:
            self._workers = asyncio.create_task(
                self.supervisor.run(self._stop), name="mail-proxy-workers"
            )

    async def close(self) -> None:
        """Stop claiming, let in-flight work finish or release it, then close ports."""
        self._stop.set()
        if self._workers is not None:
            try:
                await self._workers
            except Exception:
                log.exception("workers_stopped_with_error")
            self._workers = None
        if self.dev_sink is not None:
            await self.dev_sink.stop()
        await self.mailer.close()
        await self.sync_client.aclose()
        await self.attachments.aclose()
        await self.store.close()


DEMO_TENANT = "demo"
DEMO_ACCOUNT = "demo-smtp"


async def _seed_demo(store: Store, sink: DevSink, now: float) -> None:
    """Make sure the demo tenant exists with a default account that points at the sink."""
    if await store.tenants.get(DEMO_TENANT) is None:
        await store.tenants.create(Tenant(id=DEMO_TENANT, name="Demo (dev sink)"), None, now)
    account = Account(
        id=DEMO_ACCOUNT,
        tenant_id=DEMO_TENANT,
        host=sink.host,
        port=sink.port,
        use_tls=False,
        is_default=True,
        target_trusted=True,  # seeded by the operator's own process, at its own sink
        default_from="Mail Proxy Demo <demo@example.com>",
    )
    await store.accounts.upsert(account, now)
    log.info("dev_sink_started", host=sink.host, port=sink.port, tenant_id=DEMO_TENANT)
