"""The composition root: picks backends from the settings and wires the workers.

The API holds one ``Runtime``; ``mail-proxy serve`` opens it, runs the workers
beside uvicorn and closes it on shutdown. Tests build one with the workers not
started and drive them by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import structlog

from mail_proxy.domain.models import Account, Tenant
from mail_proxy.metrics import Metrics
from mail_proxy.settings import Settings
from mail_proxy.smtp.pool import SmtpPool
from mail_proxy.smtp.sink import DevSink
from mail_proxy.storage import open_store
from mail_proxy.storage.base import Store
from mail_proxy.sync.http import HttpSyncClient
from mail_proxy.sync.loop import SyncLoop
from mail_proxy.workers.dispatcher import Dispatcher

log = structlog.get_logger(__name__)


@dataclass
class Runtime:
    settings: Settings
    store: Store
    metrics: Metrics
    mailer: SmtpPool
    sync_client: HttpSyncClient
    dispatcher: Dispatcher
    sync_loop: SyncLoop
    dev_sink: DevSink | None = None
    started_at: float = field(default_factory=time.time)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _workers: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, settings: Settings) -> Runtime:
        store = await open_store(settings)
        metrics = Metrics()
        mailer = SmtpPool(settings)
        sync_client = HttpSyncClient(settings)
        dispatcher = Dispatcher(store, mailer, settings, metrics)
        sync_loop = SyncLoop(store, sync_client, settings, metrics, on_queued=dispatcher.wake)
        dispatcher.on_outcome = sync_loop.wake_for_events
        runtime = cls(settings, store, metrics, mailer, sync_client, dispatcher, sync_loop)
        if settings.dev_sink:
            runtime.dev_sink = DevSink(port=settings.dev_sink_port)
            await runtime.dev_sink.start()
            await _seed_demo(store, runtime.dev_sink)
        return runtime

    def start_workers(self) -> None:
        """Run dispatcher, sync loop and cleanup in the background until ``close``."""
        if self._workers is None:
            self._workers = asyncio.create_task(self._run_workers(), name="mail-proxy-workers")

    async def _run_workers(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self.dispatcher.run(self._stop), name="dispatcher")
            group.create_task(self.sync_loop.run(self._stop), name="sync")
            group.create_task(self._cleanup_loop(), name="cleanup")

    async def _cleanup_loop(self) -> None:
        """Drop finished, fully reported messages past the retention period."""
        while not self._stop.is_set():
            try:
                cutoff = time.time() - self.settings.delivery_report_retention_seconds
                removed = await self.store.cleanup_messages(cutoff)
                if removed:
                    log.info("messages_cleaned_up", removed=removed)
                await self.store.purge_command_log(
                    time.time() - self.settings.command_log_retention_seconds
                )
            except Exception:
                log.exception("cleanup_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.settings.cleanup_interval)

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
        await self.store.close()


DEMO_TENANT = "demo"
DEMO_ACCOUNT = "demo-smtp"


async def _seed_demo(store: Store, sink: DevSink) -> None:
    """Make sure the demo tenant exists with a default account that points at the sink."""
    now = time.time()
    if await store.get_tenant(DEMO_TENANT) is None:
        await store.create_tenant(Tenant(id=DEMO_TENANT, name="Demo (dev sink)"), None, now)
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
    await store.upsert_account(account, now)
    log.info("dev_sink_started", host=sink.host, port=sink.port, tenant_id=DEMO_TENANT)
