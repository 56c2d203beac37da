"""Client sync test kit: a real HTTP application, real events, a running sync loop.

The application is uvicorn on 127.0.0.1 with an OS-chosen port.

``Application`` records every call (path, headers, raw body, time, what it
answered) and answers as the test scripts it, per path: a status, a JSON or raw
body, or a hang until the test ends. It runs on the test's own event loop, so
tests can await calls arriving instead of sleeping.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn

from mail_proxy.clock import SYSTEM_CLOCK
from mail_proxy.domain.clock import Clock
from mail_proxy.domain.models import (
    Account,
    ClientAuth,
    Deferred,
    Failed,
    NewMessage,
    Outcome,
    Sent,
    Tenant,
)
from mail_proxy.metrics import Metrics
from mail_proxy.ports import Store
from mail_proxy.settings import Settings
from mail_proxy.sync.http import HttpSyncClient
from mail_proxy.sync.loop import SyncLoop

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Answer:
    """How the application answers one call. ``hang`` never answers (until teardown)."""

    status: int = 200
    body: Any = field(default_factory=lambda: {"ok": True})
    raw: bytes | None = None
    hang: bool = False

    @property
    def acknowledges(self) -> bool:
        return (
            not self.hang
            and self.raw is None
            and 200 <= self.status < 300
            and isinstance(self.body, dict)
            and self.body.get("ok") is True
        )


@dataclass
class Call:
    """One sync call as the application received it."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    answer: Answer
    client_port: int

    @property
    def entries(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = json.loads(self.body)["delivery_report"]
        return entries


class Application:
    """Records sync calls and answers them as scripted (default: ``{"ok": true}``)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.port = 0
        self._scripts: dict[str, deque[Answer]] = defaultdict(deque)
        self._defaults: dict[str, Answer] = {}
        self._arrived = asyncio.Condition()
        self._release = asyncio.Event()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def base_url(self) -> str:
        return self.url("")

    def script(self, path: str, *answers: Answer) -> None:
        """The next calls to ``path`` get these answers, in order."""
        self._scripts[path].extend(answers)

    def always(self, path: str, answer: Answer) -> None:
        """Every call to ``path`` without a scripted answer gets this one."""
        self._defaults[path] = answer

    def calls_to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    def acknowledged(self, path: str) -> list[dict[str, Any]]:
        """Entries of the calls to ``path`` that this application acknowledged."""
        return [e for c in self.calls_to(path) if c.answer.acknowledges for e in c.entries]

    async def wait_for(
        self, predicate: Callable[[list[Call]], bool], timeout: float = 5.0
    ) -> list[Call]:
        """Until ``predicate(calls)`` holds; fails the test after ``timeout``."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: predicate(self.calls))
        return self.calls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        answer = self._next_answer(scope["path"])
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        async with self._arrived:
            call = Call(scope["path"], headers, body, time.time(), answer, scope["client"][1])
            self.calls.append(call)
            self._arrived.notify_all()
        if answer.hang:
            await self._release.wait()
            return
        payload = answer.raw if answer.raw is not None else json.dumps(answer.body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def _next_answer(self, path: str) -> Answer:
        if self._scripts[path]:
            return self._scripts[path].popleft()
        return self._defaults.get(path, Answer())

    def release(self) -> None:
        self._release.set()


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


@pytest.fixture
async def application() -> AsyncIterator[Application]:
    """A recording application server on 127.0.0.1 (port chosen by the OS)."""
    app = Application()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    app.port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.005)
    try:
        yield app
    finally:
        app.release()
        server.should_exit = True
        await task
        sock.close()


# -- the proxy side: tenants, events through the real store, a running sync loop ----

PAYLOAD = {"from": "app@example.com", "to": ["user@example.com"], "subject": "hi", "body": "x"}


async def add_tenant(
    store: Store,
    tenant_id: str,
    base_url: str | None,
    *,
    auth: ClientAuth | None = None,
    secret: str | None = None,
) -> Tenant:
    """A tenant whose sync endpoint is ``base_url`` + ``/sync/<tenant_id>``, with an account."""
    now = time.time()
    tenant = Tenant(
        id=tenant_id,
        client_base_url=base_url,
        client_sync_path=f"/sync/{tenant_id}",
        client_auth=auth or ClientAuth(),
        signing_secret=secret or f"secret-{tenant_id}",
    )
    created = await store.tenants.create(tenant, None, now)
    await store.accounts.upsert(Account(id="smtp", tenant_id=tenant_id, host="127.0.0.1"), now)
    return created


_serial = itertools.count(1)


def outcome_for(kind: str, now: float) -> Outcome:
    """sent, deferred (retry in 60 s) or error, at ``now``."""
    if kind == "sent":
        return Sent(ts=now)
    if kind == "deferred":
        return Deferred(until=now + 60, reason="451 4.7.1 try again later", ts=now)
    return Failed(ts=now, error="550 5.1.1 no such user")


async def finish_messages(store: Store, tenant_id: str, kinds: list[str]) -> list[str]:
    """Enqueue one message per kind, claim them and record each outcome: real events."""
    now = time.time()
    ids = [f"{tenant_id}-m{next(_serial)}" for _ in kinds]
    await store.intake.enqueue([NewMessage(tenant_id, mid, "smtp", 2, PAYLOAD) for mid in ids], now)
    claimed = await store.queue.claim(
        now=now, lease_seconds=60, limit=len(ids), per_account=len(ids)
    )
    by_id = {c.record.id: c for c in claimed}
    items = [
        (by_id[mid].record.pk, by_id[mid].lease_token, outcome_for(kind, now))
        for mid, kind in zip(ids, kinds, strict=True)
    ]
    assert all(await store.queue.finish_many(items))
    return ids


def sync_settings(**overrides: Any) -> Settings:
    """Client sync settings shortened for tests; long heartbeat unless a test wants it.

    The application listens on loopback, which the target policy refuses to tenants
    unless the operator allows it: these tests allow it.
    """
    values: dict[str, Any] = {
        "allow_private_targets": True,
        "sync_interval": 60.0,
        "sync_timeout": 2.0,
        "sync_retry_base_delay": 0.05,
        "sync_concurrency": 4,
    }
    values.update(overrides)
    return Settings(**values)


class Running:
    """A sync loop running on the test loop, with what it signalled to the dispatcher."""

    def __init__(self, store: Store, settings: Settings, clock: Clock) -> None:
        self.store = store
        self.settings = settings
        self.metrics = Metrics()
        self.client = HttpSyncClient(settings)
        self.queued_signals = 0
        self.loop = SyncLoop(store, self.client, settings, self.metrics, self._on_queued, clock)
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self.loop.run(self._stop))

    def _on_queued(self) -> None:
        self.queued_signals += 1

    def sync_calls(self, tenant_id: str, outcome: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "gmp_sync_calls_total", {"tenant_id": tenant_id, "outcome": outcome}
        )
        return value or 0.0

    async def stop(self) -> None:
        """Stop the loop (in-flight calls are cancelled) and close the HTTP client."""
        if not self._task.done():
            self._stop.set()
            async with asyncio.timeout(5):
                await self._task
        await self.client.aclose()


@pytest.fixture
async def start_sync_loop() -> AsyncIterator[Callable[..., Running]]:
    """Start sync loops: ``start_sync_loop(store, clock=..., **settings)`` (the system
    clock unless given); all stopped at teardown."""
    started: list[Running] = []

    def start(store: Store, clock: Clock = SYSTEM_CLOCK, **overrides: Any) -> Running:
        running = Running(store, sync_settings(**overrides), clock)
        started.append(running)
        return running

    yield start
    for running in started:
        await running.stop()
