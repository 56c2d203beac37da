"""Bounces from a real Dovecot mailbox: end-to-end latency and bulk rate.

Run by hand:  .venv/bin/python bench/bounce_bench.py [--latency 100] [--bulk 10000]

1. latency: a DSN is APPENDed to the bounce mailbox of a running proxy (in-process
   ``Runtime``, SQLite, every loop started, IDLE); the clock stops when the tenant's
   HTTP endpoint receives the ``bounce`` event through client sync. p50/p99 over
   ``--latency`` DSNs, one at a time.
2. bulk: ``--bulk`` DSNs (Postfix, Gmail, Exchange, Exim, qmail formats in turn, each
   matching a sent message) wait in a folder; one poll handles them all (fetch,
   parse, record, flag). Printed against a same-run baseline: parsing the same mails
   in memory, without IMAP or the database.

Needs Debian's dovecot-imapd (``/usr/sbin/dovecot``).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aioimaplib
from _common import percentile
from cryptography.fernet import Fernet

from mail_proxy import returned_samples as samples
from mail_proxy.clock import SYSTEM_CLOCK
from mail_proxy.domain.models import NewMessage, Sent, Tenant
from mail_proxy.domain.returned_mail import read_returned
from mail_proxy.imap import ImapMailbox, MailboxConfig
from mail_proxy.logs import configure
from mail_proxy.metrics import Metrics
from mail_proxy.ports import Store
from mail_proxy.runtime import Runtime
from mail_proxy.settings import Settings
from mail_proxy.storage import open_store
from mail_proxy.testing import Dovecot, ReportEndpoint
from mail_proxy.workers.mailbox_pollers import MailboxPoller, PollerContext, bounce_rules

FORMATS: list[Callable[..., bytes]] = [
    lambda i: samples.postfix_dsn(f"r{i}@example.org", mail_id=f"m{i}",
                                  message_id=f"<m{i}@proxy.example>"),
    lambda i: samples.gmail_dsn(f"r{i}@example.org", mail_id=f"m{i}"),
    lambda i: samples.exchange_dsn(f"r{i}@example.org", mail_id=f"m{i}"),
    lambda i: samples.exim_bounce(f"r{i}@example.org", mail_id=f"m{i}"),
    lambda i: samples.qmail_bounce(f"r{i}@example.org", mail_id=f"m{i}"),
]  # fmt: skip


def settings(folder: Path) -> Settings:
    return Settings(
        db_path=str(folder / "mail_proxy.db"),
        instance_dir=folder,
        secret_key=Fernet.generate_key().decode(),
        sync_interval=300.0,
    )


async def imap(dovecot: Dovecot) -> Any:
    client = aioimaplib.IMAP4(dovecot.host, dovecot.port, timeout=60)
    await client.wait_hello_from_server()
    await client.login(dovecot.user, dovecot.password)
    return client


async def new_folder(client: Any) -> str:
    folder = f"b{uuid.uuid4().hex[:10]}"
    await client.create(folder)
    return folder


async def sent(store: Store, count: int) -> None:
    """``count`` messages of tenant ``bench``, sent now, m0..m{count-1}."""
    now = time.time()
    for start in range(0, count, 500):
        batch = [
            NewMessage("bench", f"m{i}", "acc", 2,
                       {"from": "s@proxy.example", "to": [f"r{i}@example.org"], "subject": "s"},
                       rfc_message_id=f"<m{i}@proxy.example>")
            for i in range(start, min(count, start + 500))
        ]  # fmt: skip
        await store.intake.enqueue(batch, now)
        while claimed := await store.queue.claim(
            now=now, lease_seconds=60, limit=500, per_account=500
        ):
            await store.queue.finish_many(
                [(c.record.pk, c.lease_token, Sent(now)) for c in claimed]
            )


async def latency(dovecot: Dovecot, root: Path, count: int) -> list[float]:
    client = await imap(dovecot)
    folder = await new_folder(client)
    runtime = await Runtime.open(settings(root / "latency"))
    store = runtime.store
    bounce = {"enabled": True, "imap_host": dovecot.host, "imap_port": dovecot.port,
              "imap_user": dovecot.user, "imap_password": dovecot.password, "imap_ssl": False,
              "imap_folder": folder, "poll_interval_seconds": 5}  # fmt: skip
    await store.instance.update({"bounce": bounce})
    timings: list[float] = []
    with ReportEndpoint() as endpoint:
        tenant = Tenant(id="bench", client_base_url=endpoint.url, target_trusted=True)
        await store.tenants.create(tenant, None, time.time())
        await sent(store, count)
        runtime.start_workers()
        try:
            while len(endpoint.reported_sent()) < count:
                await asyncio.sleep(0.05)
            pollers = runtime.mailbox_pollers
            assert pollers is not None
            while [s["state"] for s in pollers.status()] != ["polling"]:
                await asyncio.sleep(0.05)
            for i in range(count):
                mail = samples.postfix_dsn(mail_id=f"m{i}", message_id=f"<m{i}@proxy.example>")
                started = time.perf_counter()
                await client.append(mail, mailbox=folder)
                while len(endpoint.returned) <= i:
                    await asyncio.sleep(0.001)
                timings.append(time.perf_counter() - started)
        finally:
            await runtime.close()
            await client.logout()
    return timings


async def bulk(dovecot: Dovecot, root: Path, count: int) -> tuple[float, float, int]:
    """(seconds for one poll of ``count`` mails, seconds to parse them in memory,
    bounces recorded)."""
    mails = [FORMATS[i % len(FORMATS)](i) for i in range(count)]
    client = await imap(dovecot)
    folder = await new_folder(client)
    for mail in mails:
        await client.append(mail, mailbox=folder)
    await client.logout()

    started = time.perf_counter()
    for mail in mails:
        read_returned(mail)
    parse_only = time.perf_counter() - started

    config = MailboxConfig("bench", dovecot.host, dovecot.port, dovecot.user,
                           dovecot.password, False, folder, 60.0, timeout=120)  # fmt: skip
    bulk_settings = settings(root / "bulk")
    store = await open_store(bulk_settings)
    try:
        await sent(store, count)
        rules = bounce_rules(bulk_settings)
        context = PollerContext(store, Metrics(), SYSTEM_CLOCK, rules, 120.0, 300.0)
        mailbox = ImapMailbox(config)
        await mailbox.open()
        started = time.perf_counter()
        await MailboxPoller(config, context).poll_once(mailbox)
        elapsed = time.perf_counter() - started
        await mailbox.close()
        recorded = len(await store.bounces.search(None, limit=count + 1))
    finally:
        await store.close()
    return elapsed, parse_only, recorded


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        with Dovecot(root / "dovecot") as dovecot:
            timings = await latency(dovecot, root, args.latency)
            print(f"1. DSN appended -> bounce event at the tenant's endpoint, n={len(timings)}")
            p50, p99 = percentile(timings, 50) * 1000, percentile(timings, 99) * 1000
            print(f"   p50 {p50:.1f} ms   p99 {p99:.1f} ms   max {max(timings) * 1000:.1f} ms")
            elapsed, parse_only, recorded = await bulk(dovecot, root, args.bulk)
            print(f"2. {args.bulk} bounces in a mailbox, one poll: {elapsed:.2f} s "
                  f"= {args.bulk / elapsed:.0f} bounces/s ({recorded} recorded)")  # fmt: skip
            print(f"   baseline, parsing only: {args.bulk / parse_only:.0f} mails/s "
                  f"(poll/parse time ratio {elapsed / parse_only:.1f})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=int, default=100)
    parser.add_argument("--bulk", type=int, default=10_000)
    configure("WARNING")  # one log line per bounce would be timed too
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
