"""Fairness benchmark: one tenant's message while another tenant floods a slow server.

Tenant ``slow`` has 8 accounts with 20 messages each at an SMTP server that takes
``--delay`` seconds to answer every DATA; tenant ``quick`` has one account at a
fast server. Once the slow sends are running, one ``quick`` message is enqueued
and its enqueue→arrival time is measured, with the per-tenant bound at its
default (16 of 32 global slots) and with the bound lifted (32: no bound, the
behaviour before it existed).

    .venv/bin/python bench/fairness_bench.py [--delay 2.0] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from _common import median
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography.fernet import Fernet

from mail_proxy.attachments import AttachmentResolver
from mail_proxy.domain.models import Account, NewMessage, Tenant
from mail_proxy.metrics import Metrics
from mail_proxy.settings import Settings
from mail_proxy.smtp.pool import SmtpPool
from mail_proxy.storage import open_store
from mail_proxy.workers.dispatcher import Dispatcher


class _Server:
    """An aiosmtpd server answering DATA after ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.busy = 0
        self.arrived: asyncio.Queue[float] = asyncio.Queue()
        self.port = 0

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        self.busy += 1
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.busy -= 1
        self.arrived.put_nowait(time.perf_counter())
        return "250 OK"

    async def start(self) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(self), "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        return server


def _message(tenant: str, account: str, message_id: str) -> NewMessage:
    payload = {"id": message_id, "from": "b@example.com", "to": ["r@example.com"],
               "subject": "fairness", "body": "hello\n"}  # fmt: skip
    return NewMessage(tenant, message_id, account, 2, payload)


async def one_run(per_tenant: int, delay: float) -> float:
    slow, quick = _Server(delay), _Server(0.0)
    servers = [await slow.start(), await quick.start()]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            db_path=str(Path(tmp) / "q.db"),
            instance_dir=Path(tmp),
            secret_key=Fernet.generate_key().decode(),
            allow_private_targets=True,
            max_concurrent_sends=32,
            max_concurrent_per_tenant=per_tenant,
            smtp_timeout=delay * 10,
            send_loop_interval=0.05,
            shutdown_grace_seconds=0.1,
        )
        store = await open_store(settings)
        now = time.time()
        for tenant in ("slow", "quick"):
            await store.tenants.create(Tenant(id=tenant), None, now)
        for i in range(8):
            account = Account(id=f"s{i}", tenant_id="slow", host="127.0.0.1", port=slow.port)
            await store.accounts.upsert(account, now)
            await store.intake.enqueue(
                [_message("slow", f"s{i}", f"s{i}-{n}") for n in range(20)], now
            )
        await store.accounts.upsert(
            Account(id="q", tenant_id="quick", host="127.0.0.1", port=quick.port), now
        )
        metrics = Metrics()
        attachments = AttachmentResolver(settings, metrics)
        dispatcher = Dispatcher(
            store, SmtpPool(settings), settings, metrics, attachments=attachments
        )
        stop = asyncio.Event()
        task = asyncio.create_task(dispatcher.run(stop))
        while slow.busy < per_tenant:
            await asyncio.sleep(0.01)
        started = time.perf_counter()
        await store.intake.enqueue([_message("quick", "q", "q-1")], time.time())
        dispatcher.wake()
        waited = await quick.arrived.get() - started
        stop.set()
        await task
        await attachments.aclose()
        await store.close()
    for server in servers:
        server.close()
    return waited


async def main(delay: float, runs: int) -> None:
    cases = ((16, "per-tenant bound 16 (default)"), (32, "no bound (32 = global)"))
    for per_tenant, label in cases:
        waits = [await one_run(per_tenant, delay) for _ in range(runs)]
        print(f"{label:32} other tenant's message waited median {median(waits):.3f} s "
              f"(runs: {', '.join(f'{w:.3f}' for w in waits)})")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--delay", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.delay, args.runs))
