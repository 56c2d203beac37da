"""Delivery test kit: real aiosmtpd servers on the test's loop, and a running dispatcher.

``smtp_server(...)`` starts an aiosmtpd server on 127.0.0.1 (OS-chosen port) that
records every message it accepts and behaves as scripted: refuse chosen
recipients, answer DATA with a chosen reply, drop the connection at the end of
DATA, answer slowly, stall, require STARTTLS or AUTH, speak implicit TLS, or close a session
with 421 after some messages. TLS uses trustme certificates; ``client_tls`` is
the SSL context that trusts them.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from mail_proxy.attachments import AttachmentResolver
from mail_proxy.clock import SYSTEM_CLOCK
from mail_proxy.domain.clock import Clock
from mail_proxy.domain.models import Account, NewMessage, Tenant
from mail_proxy.metrics import Metrics
from mail_proxy.ports import Store
from mail_proxy.settings import Settings
from mail_proxy.smtp.pool import SmtpPool
from mail_proxy.smtp.sink import PipeliningEhlo
from mail_proxy.workers.dispatcher import Dispatcher

USER, PASSWORD = "mailer", "s3cret"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    at: float
    mail_options: list[str] = field(default_factory=list)

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def mail_id(self) -> str:
        return str(self.message["X-Genro-Mail-ID"])


@dataclass
class Script:
    """How the server misbehaves; the defaults accept everything."""

    refuse: dict[str, str] = field(default_factory=dict)
    data_reply: str | bytes | None = None  # bytes go on the wire as they are
    drop_in_data: bool = False
    stall: bool = False
    delay: float = 0.0
    close_after: int | None = None
    pipelining: bool = False  # offer PIPELINING (RFC 2920) in the EHLO reply


class _Handler(PipeliningEhlo):
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    @property
    def offers_pipelining(self) -> bool:
        return self.server.script.pipelining

    async def handle_MAIL(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        limit = self.server.script.close_after
        done = self.server.per_session.get(id(session), 0)
        if limit is not None and done >= limit:
            smtp.transport.close()
            return "421 4.4.2 closing idle session"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.server.script.refuse.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str | bytes:
        script = self.server.script
        self.server.data_commands += 1
        self.server.in_data += 1
        try:
            return await self._data(smtp, session, envelope, script)
        finally:
            self.server.in_data -= 1

    async def _data(
        self, smtp: SMTP, session: Session, envelope: Envelope, script: Script
    ) -> str | bytes:
        if script.stall:
            await asyncio.sleep(3600)
        await asyncio.sleep(script.delay)
        if script.drop_in_data:
            smtp.transport.close()
            return "250 never seen"
        if script.data_reply is not None:
            return script.data_reply
        raw = envelope.original_content or b""
        self.server.received.append(
            Received(
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                raw,
                time.time(),
                list(envelope.mail_options),
            )
        )
        self.server.per_session[id(session)] = self.server.per_session.get(id(session), 0) + 1
        self.server.arrived.set()
        return "250 2.0.0 queued"


def _authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


class SmtpServer:
    """One aiosmtpd server; ``connections`` counts sessions opened by clients."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.received: list[Received] = []
        self.per_session: dict[int, int] = {}
        self.connections = 0
        self.data_commands = 0  # DATA commands received, whatever the answer
        self.in_data = 0  # DATA commands being answered right now
        self.arrived = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._sessions: list[SMTP] = []

    async def start(
        self,
        *,
        implicit_tls: ssl.SSLContext | None = None,
        starttls: ssl.SSLContext | None = None,
        auth: bool = False,
        smtputf8: bool = False,
    ) -> None:
        def factory() -> SMTP:
            self.connections += 1
            session = SMTP(
                _Handler(self),
                hostname="test-smtp",
                tls_context=starttls,
                require_starttls=starttls is not None,
                authenticator=_authenticator if auth else None,
                auth_require_tls=starttls is not None,
                auth_required=auth,
                enable_SMTPUTF8=smtputf8,
            )
            self._sessions.append(session)
            return session

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(factory, "127.0.0.1", 0, ssl=implicit_tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for session in self._sessions:
                if session.transport is not None:
                    session.transport.close()
            await self._server.wait_closed()
            self._server = None

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """Wait until ``count`` messages arrived (fails the test after ``timeout``)."""
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received


ServerFactory = Callable[..., Awaitable[SmtpServer]]


@pytest.fixture
def settings_factory(settings_factory: Callable[..., Settings]) -> Callable[..., Settings]:
    """The root factory, with loopback SMTP servers permitted by the target policy
    (every server here listens on 127.0.0.1); a test may still say otherwise."""

    def make(**overrides: Any) -> Settings:
        return settings_factory(**({"allow_private_targets": True} | overrides))

    return make


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="session")
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def pipelining() -> bool:
    """Whether servers offer PIPELINING unless a script says; a module may
    parametrize this to run its tests both ways."""
    return False


@pytest.fixture
async def smtp_server(pipelining: bool) -> AsyncIterator[ServerFactory]:
    """Start scripted servers; all are stopped at the end of the test."""
    servers: list[SmtpServer] = []

    async def start(script: Script | None = None, **options: Any) -> SmtpServer:
        script = script or Script()
        script.pipelining = script.pipelining or pipelining
        server = SmtpServer(script)
        await server.start(**options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


def account_for(server: SmtpServer, account_id: str = "acc", **fields: Any) -> Account:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.port,
        "use_tls": False,
        "tenant_id": "t1",
    }
    values.update(fields)
    return Account(id=account_id, **values)


def payload(message_id: str, **fields: Any) -> dict[str, Any]:
    """A normalised message payload, as the API stores it."""
    values: dict[str, Any] = {
        "id": message_id,
        "from": "Sender <sender@example.org>",
        "to": ["to@example.com"],
        "cc": [],
        "bcc": [],
        "subject": f"Message {message_id}",
        "body": "Hello\n",
        "content_type": "plain",
        "headers": {},
        "attachments": [],
    }
    values.update(fields)
    return values


async def claimable(store: Store) -> set[str]:
    """Ids a new claim would lease now: messages whose lease is free."""
    claimed = await store.queue.claim(
        now=time.time(), lease_seconds=60, limit=1000, per_account=1000
    )
    await store.queue.release((c.record.pk, c.lease_token) for c in claimed)
    return {c.record.id for c in claimed}


class Queue:
    """Test-side helpers over a store: tenant, accounts, enqueue, wait for states."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def setup(self, *accounts: Account, **tenant_fields: Any) -> None:
        """Tenants of the accounts (``t1`` at least) and the accounts."""
        now = time.time()
        for tenant_id in {"t1", *(a.tenant_id for a in accounts)}:
            if await self.store.tenants.get(tenant_id) is None:
                await self.store.tenants.create(Tenant(id=tenant_id, **tenant_fields), None, now)
        for account in accounts:
            await self.store.accounts.upsert(account, now)

    async def add(
        self,
        message_id: str,
        account_id: str = "acc",
        priority: int = 2,
        deferred_ts: int | None = None,
        batch_code: str | None = None,
        tenant: str = "t1",
        **fields: Any,
    ) -> None:
        message = NewMessage(
            tenant_id=tenant,
            id=message_id,
            account_id=account_id,
            priority=priority,
            payload=payload(message_id, **fields),
            deferred_ts=deferred_ts,
            batch_code=batch_code,
        )
        await self.store.intake.enqueue([message], time.time())

    async def status(self, message_id: str) -> str:
        record = await self.store.messages.get("t1", message_id)
        assert record is not None
        return str(record.status)

    async def wait_status(
        self, message_id: str, *wanted: str, timeout: float = 5.0, tenant: str = "t1"
    ) -> Any:
        """Poll until the message reaches one of ``wanted``; returns the record."""
        async with asyncio.timeout(timeout):
            while True:
                record = await self.store.messages.get(tenant, message_id)
                if record is not None and record.status in wanted:
                    return record
                await asyncio.sleep(0.02)


@pytest.fixture
def queue(sqlite_store: Store) -> Queue:
    return Queue(sqlite_store)


@dataclass
class Running:
    dispatcher: Dispatcher
    mailer: SmtpPool
    attachments: AttachmentResolver
    metrics: Metrics
    stop: asyncio.Event
    task: asyncio.Task[None]
    outcomes: list[float] = field(default_factory=list)

    async def halt(self) -> None:
        self.stop.set()
        await self.task


@pytest.fixture
async def start_dispatcher(
    client_tls: ssl.SSLContext,
) -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    """Run dispatchers on the test loop; every one is stopped at teardown."""
    running: list[Running] = []

    async def start(
        store: Store,
        settings: Settings,
        clock: Clock = SYSTEM_CLOCK,
        dispatcher_options: dict[str, Any] | None = None,
        **pool_options: Any,
    ) -> Running:
        dispatcher_options = dispatcher_options or {}
        pool_options.setdefault("ssl_context", client_tls)
        mailer = SmtpPool(settings, **pool_options)
        metrics = Metrics()
        attachments = AttachmentResolver(settings, metrics)
        dispatcher = Dispatcher(
            store, mailer, settings, metrics, clock, attachments=attachments, **dispatcher_options
        )
        stop = asyncio.Event()
        task = asyncio.create_task(dispatcher.run(stop))
        run = Running(dispatcher, mailer, attachments, metrics, stop, task)
        dispatcher.on_outcome = lambda _tenants: run.outcomes.append(time.time())
        running.append(run)
        return run

    yield start
    for run in running:
        if not run.task.done():
            await run.halt()
        await run.mailer.close()
        await run.attachments.aclose()
