"""Bounce and PEC mailboxes read from a real Dovecot: recorded once, flagged, leased,
and a refused login shown without stopping delivery."""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aioimaplib
import pytest
import trustme

from mail_proxy import returned_samples as samples
from mail_proxy.clock import SYSTEM_CLOCK
from mail_proxy.domain.models import Account, EventType, NewMessage, Sent, Tenant
from mail_proxy.imap import ImapError, ImapMailbox, MailboxConfig
from mail_proxy.metrics import Metrics
from mail_proxy.ports import Store
from mail_proxy.runtime import Runtime
from mail_proxy.settings import Settings
from mail_proxy.storage import open_store
from mail_proxy.testing import Dovecot, RecordingSink, ReportEndpoint
from mail_proxy.workers.mailbox_pollers import (
    MailboxPoller,
    MailboxPollers,
    PollerContext,
    bounce_rules,
)


async def _imap(dovecot: Dovecot) -> Any:
    client = aioimaplib.IMAP4(dovecot.host, dovecot.port)
    await client.wait_hello_from_server()
    await client.login(dovecot.user, dovecot.password)
    return client


async def _folder_with(dovecot: Dovecot, *mails: bytes) -> str:
    """A fresh folder holding ``mails`` (IMAP APPEND), so tests never share mail."""
    folder = f"t{uuid.uuid4().hex[:12]}"
    client = await _imap(dovecot)
    assert (await client.create(folder)).result == "OK"
    for mail in mails:
        assert (await client.append(mail, mailbox=folder)).result == "OK"
    await client.logout()
    return folder


async def _append(dovecot: Dovecot, folder: str, *mails: bytes) -> None:
    client = await _imap(dovecot)
    for mail in mails:
        assert (await client.append(mail, mailbox=folder)).result == "OK"
    await client.logout()


async def _unflagged(dovecot: Dovecot, folder: str) -> int:
    client = await _imap(dovecot)
    await client.select(folder)
    found = await client.uid_search("UNKEYWORD", "$GmpHandled")
    await client.logout()
    return len(found.lines[0].split())


def _config(dovecot: Dovecot, folder: str, **fields: Any) -> MailboxConfig:
    values: dict[str, Any] = {
        "name": f"bounce-{folder}",
        "host": dovecot.host,
        "port": dovecot.port,
        "user": dovecot.user,
        "password": dovecot.password,
        "ssl": False,
        "folder": folder,
        "poll_interval": 0.05,
    }
    return MailboxConfig(**(values | fields))


def _context(store: Store, settings: Settings) -> PollerContext:
    return PollerContext(store, Metrics(), SYSTEM_CLOCK, bounce_rules(settings), 30.0, 0.2)


async def _sent(store: Store, *ids: str, account: str = "smtp1") -> None:
    """Messages of tenant acme sent now, each with Message-ID <id@proxy.example>."""
    now = time.time()
    payload = {"from": "s@proxy.example", "to": ["nobody@example.org"], "subject": "s"}
    batch = [NewMessage("acme", i, account, 2, payload, rfc_message_id=f"<{i}@proxy.example>")
             for i in ids]  # fmt: skip
    await store.intake.enqueue(batch, now)
    claimed = await store.queue.claim(now=now, lease_seconds=30, limit=10, per_account=10)
    await store.queue.finish_many([(c.record.pk, c.lease_token, Sent(now)) for c in claimed])


async def _until(check: Callable[[], Awaitable[bool]], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


@pytest.fixture
async def sqlite(settings_factory: Callable[..., Settings]) -> AsyncIterator[Store]:
    store = await open_store(settings_factory())
    yield store
    await store.close()


class DropsBeforeFlagging(ImapMailbox):
    """A connection lost after the mail was recorded but before it was flagged."""

    async def mark_handled(self, uids: list[int]) -> None:
        raise ImapError("connection lost")


async def test_restart_mid_poll_handles_nothing_twice(
    dovecot: Dovecot, sqlite: Store, settings_factory: Callable[..., Settings]
) -> None:
    """A poll that recorded its mail and died before flagging it is followed by a
    restart that records nothing again and only flags; noise is flagged too."""
    await _sent(sqlite, "m1", "m5")
    folder = await _folder_with(
        dovecot,
        samples.postfix_dsn(mail_id="m1", message_id="<m1@proxy.example>"),
        samples.qmail_bounce(mail_id="m5"),
        samples.auto_reply(),
        samples.postfix_dsn(mail_id="gone", message_id="<gone@x>", rcpt="x@nowhere.example"),
    )
    config = _config(dovecot, folder)
    first = DropsBeforeFlagging(config)
    await first.open()
    context = _context(sqlite, settings_factory())
    with pytest.raises(ImapError):
        await MailboxPoller(config, context).poll_once(first)
    await first.close()
    metrics = context.metrics.render().decode()
    assert 'gmp_bounces_total{type="hard"} 3.0' in metrics
    assert "gmp_bounces_unmatched_total 1.0" in metrics
    assert await _unflagged(dovecot, folder) == 4

    restarted = ImapMailbox(config)
    await restarted.open()
    try:
        poller = MailboxPoller(config, _context(sqlite, settings_factory()))
        assert await poller.poll_once(restarted) == 0
    finally:
        await restarted.close()
    assert await _unflagged(dovecot, folder) == 0
    bounces = await sqlite.bounces.search(None)
    assert sorted((b.message_id or "", b.matched_by) for b in bounces) == [
        ("", "none"), ("m1", "mail_id"), ("m5", "mail_id")
    ]  # fmt: skip
    kinds = [e.type for e in await sqlite.outbox.unreported("acme", 10)]
    assert kinds.count(EventType.BOUNCE) == 2
    assert [s.address for s in await sqlite.suppressions.search("acme")] == [
        "nobody@example.org",
        "olduser@example.com",
    ]


async def test_pec_receipts_from_the_account_mailbox(
    dovecot: Dovecot, sqlite: Store, settings_factory: Callable[..., Settings]
) -> None:
    """Receipts in a PEC account's mailbox become its tenant's message events."""
    await _sent(sqlite, "p1")
    folder = await _folder_with(
        dovecot,
        samples.pec_receipt("accettazione", referenced="<p1@proxy.example>"),
        samples.pec_receipt("avvenuta-consegna", referenced="<p1@proxy.example>"),
        samples.pec_receipt("avvenuta-consegna", referenced="<other@proxy.example>"),
    )
    config = _config(dovecot, folder, name="pec:acme/smtp1", tenant_id="acme")
    mailbox = ImapMailbox(config)
    await mailbox.open()
    try:
        assert (
            await MailboxPoller(config, _context(sqlite, settings_factory())).poll_once(mailbox)
            == 3
        )
    finally:
        await mailbox.close()
    events = await sqlite.messages.events("acme", "p1")
    pec = [e for e in events if e.type.startswith("pec_")]
    assert [e.type for e in pec] == [EventType.PEC_ACCEPTANCE, EventType.PEC_DELIVERY]
    assert pec[1].details is not None and pec[1].details["consegna"] == "dest@pec.example.it"


async def test_two_processes_on_postgres_one_holds_the_mailbox(
    dovecot: Dovecot, settings_factory: Callable[..., Settings], pg_dsn: str
) -> None:
    """Two stores (processes) on one PostgreSQL run a poller each on one mailbox: one
    polls, the other stands by, and every bounce is recorded once."""
    settings = settings_factory(db_path=pg_dsn)
    a, b = await open_store(settings), await open_store(settings)
    await _sent(a, *(f"m{n}" for n in range(6)))
    folder = await _folder_with(
        dovecot, samples.postfix_dsn(mail_id="m0", message_id="<m0@proxy.example>")
    )
    config = _config(dovecot, folder, name="bounce")
    pollers = [MailboxPoller(config, _context(s, settings)) for s in (a, b)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(p.run(stop)) for p in pollers]
    try:
        await _until(lambda: _all_flagged(dovecot, folder))
        mails = [samples.postfix_dsn(mail_id=f"m{n}", message_id=f"<m{n}@proxy.example>")
                 for n in range(1, 6)]  # fmt: skip
        await _append(dovecot, folder, *mails)
        await _until(lambda: _recorded(a, 6))
        states = sorted(p.status.state for p in pollers)
        assert states == ["polling", "standby"]
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await a.close()
        await b.close()


async def _all_flagged(dovecot: Dovecot, folder: str) -> bool:
    return await _unflagged(dovecot, folder) == 0


async def _recorded(store: Store, count: int) -> bool:
    found = await store.bounces.search(None)
    assert len(found) <= count
    return len(found) == count


async def test_refused_login_shows_and_delivery_goes_on(
    dovecot: Dovecot, settings_factory: Callable[..., Settings]
) -> None:
    """A wrong password: /status and metrics show the error while mail is still
    delivered; reload with the right password and the mailbox is polled."""
    folder = await _folder_with(dovecot, samples.postfix_dsn(mail_id="m1"))
    runtime = await Runtime.open(settings_factory())
    store, now = runtime.store, time.time()
    bounce = {"enabled": True, "imap_host": dovecot.host, "imap_port": dovecot.port,
              "imap_user": dovecot.user, "imap_password": "wrong", "imap_ssl": False,
              "imap_folder": folder, "poll_interval_seconds": 5}  # fmt: skip
    await store.instance.update({"bounce": bounce})
    pollers = runtime.mailbox_pollers
    assert pollers is not None
    with RecordingSink() as sink:
        await store.tenants.create(Tenant(id="acme"), None, now)
        account = Account(id="smtp1", tenant_id="acme", host="127.0.0.1", port=sink.port,
                          use_tls=False, target_trusted=True)  # fmt: skip
        await store.accounts.upsert(account, now)
        payload = {"from": "s@proxy.example", "to": ["a@example.org"], "subject": "s"}
        runtime.start_workers()
        try:
            await _until(lambda: _state(pollers, "error"))
            await store.intake.enqueue([NewMessage("acme", "d1", "smtp1", 2, payload)], now)
            runtime.dispatcher.wake()
            await _until(lambda: _true(sink.count() == 1))
            [status] = pollers.status()
            assert "login refused" in str(status["last_error"]) and "wrong" not in str(status)
            metrics = runtime.metrics.render().decode()
            assert 'gmp_mailbox_poll_errors_total{mailbox="bounce"}' in metrics

            await store.instance.update({"bounce": bounce | {"imap_password": dovecot.password}})
            pollers.reload()
            await _until(lambda: _state(pollers, "polling"))
            assert await _unflagged(dovecot, folder) == 0
        finally:
            await runtime.close()


async def _state(pollers: MailboxPollers, state: str) -> bool:
    return [s["state"] for s in pollers.status()] == [state]


async def _true(value: bool) -> bool:
    return value


async def test_a_bounce_reaches_the_tenant_through_client_sync(
    dovecot: Dovecot, settings_factory: Callable[..., Settings]
) -> None:
    """A DSN appended to the bounce mailbox is reported to the tenant's endpoint once,
    with the protocol's bounce fields, without waiting for the sync interval."""
    folder = await _folder_with(dovecot)
    runtime = await Runtime.open(settings_factory())
    store = runtime.store
    bounce = {"enabled": True, "imap_host": dovecot.host, "imap_port": dovecot.port,
              "imap_user": dovecot.user, "imap_password": dovecot.password, "imap_ssl": False,
              "imap_folder": folder, "poll_interval_seconds": 5}  # fmt: skip
    await store.instance.update({"bounce": bounce})
    with ReportEndpoint() as endpoint:
        tenant = Tenant(id="acme", client_base_url=endpoint.url, target_trusted=True)
        await store.tenants.create(tenant, None, time.time())
        await _sent(store, "m1")
        runtime.start_workers()
        try:
            await _until(lambda: _true(endpoint.reported_sent() == {"m1"}))
            assert runtime.mailbox_pollers is not None
            await _until(lambda: _state(runtime.mailbox_pollers, "polling"))  # type: ignore[arg-type]
            await _append(
                dovecot, folder, samples.postfix_dsn(mail_id="m1", message_id="<m1@proxy.example>")
            )
            await _until(lambda: _true(len(endpoint.returned) == 1))
        finally:
            await runtime.close()
    [(_, entry)] = endpoint.returned
    assert {k: entry[k] for k in ("id", "event", "bounce_type", "bounce_code")} == {
        "id": "m1", "event": "bounce", "bounce_type": "hard", "bounce_code": "5.1.1"
    }  # fmt: skip
    assert "User unknown" in entry["bounce_reason"] and entry["bounce_ts"] > 0


async def test_implicit_tls_checks_the_certificate(dovecot: Dovecot, tmp_path: Path) -> None:
    """Port-993 style TLS (a server of its own beside the shared plain one): a
    certificate the context trusts logs in; one it does not is refused with a clear
    ImapError (never a crash)."""
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    leaf.private_key_pem.write_to_path(str(key))
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    with Dovecot(tmp_path / "tls", cert=cert, key=key) as server:
        assert server.tls_port is not None
        config = MailboxConfig("tls", server.host, server.tls_port, server.user,
                               server.password, True, "INBOX", 5.0, timeout=10)  # fmt: skip
        trusted = ssl.create_default_context()
        ca.configure_trust(trusted)
        mailbox = ImapMailbox(config, trusted)
        await mailbox.open()
        assert await mailbox.unhandled() == []
        await mailbox.close()
        with pytest.raises(ImapError, match="cannot connect"):
            await ImapMailbox(config, ssl.create_default_context()).open()
