"""The composition root: workers started together, retention applied periodically."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from mail_proxy.domain.models import NewMessage, Sent, Tenant
from mail_proxy.runtime import Runtime
from mail_proxy.settings import Settings


async def test_periodic_cleanup_removes_reported_finished_messages(
    settings_factory: Callable[..., Settings],
) -> None:
    """With retention 0 and a short cleanup interval, a sent message whose events are
    acknowledged disappears on its own; an unreported one stays."""
    settings = settings_factory(
        delivery_report_retention_seconds=0, cleanup_interval=0.05, test_mode=True
    )
    runtime = await Runtime.open(settings)
    store = runtime.store
    try:
        now = time.time()
        await store.tenants.create(Tenant(id="t1"), None, now)
        payload: dict[str, Any] = {"id": "x", "to": ["a@example.com"], "subject": "s"}
        await store.intake.enqueue(
            [
                NewMessage("t1", "reported", "acc", 2, payload),
                NewMessage("t1", "unreported", "acc", 2, payload),
            ],
            now,
        )
        claimed = await store.queue.claim(now=now, lease_seconds=30, limit=10, per_account=10)
        await store.queue.finish_many([(c.record.pk, c.lease_token, Sent(now)) for c in claimed])
        events = await store.outbox.unreported("t1", 10)
        await store.outbox.ack([e.event_id for e in events if e.message_id == "reported"], now)

        runtime.start_workers()
        for _ in range(100):
            if await store.messages.get("t1", "reported") is None:
                break
            await asyncio.sleep(0.02)
        assert await store.messages.get("t1", "reported") is None
        assert await store.messages.get("t1", "unreported") is not None
    finally:
        await runtime.close()
