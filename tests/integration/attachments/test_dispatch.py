"""Attachments through the dispatcher: what the SMTP server receives, and which
fetch failures fail a message and which defer it."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from tests.integration.delivery.conftest import (
    Queue,
    Running,
    ServerFactory,
    SmtpServer,
    account_for,
)

from mail_proxy.attachments import AttachmentPolicy
from mail_proxy.domain.mime import Attachment
from mail_proxy.domain.models import Tenant
from mail_proxy.domain.outgoing import OutgoingMessage
from mail_proxy.settings import Settings
from mail_proxy.testing import FileRoute, FileServer

DATA = b"col1,col2\n" * 100
Attachments = list[Attachment]


@dataclass
class World:
    """A tenant whose application is ``files``, an SMTP server, a queue."""

    files: FileServer
    server: SmtpServer
    queue: Queue
    settings: Settings
    _start: Callable[..., Awaitable[Running]]

    async def start(self, **dispatcher_options: Any) -> Running:
        return await self._start(
            self.queue.store, self.settings, dispatcher_options=dispatcher_options
        )


@pytest.fixture
async def world(
    smtp_server: ServerFactory,
    queue: Queue,
    start_dispatcher: Callable[..., Awaitable[Running]],
    settings_factory: Callable[..., Settings],
    files: FileServer,
) -> World:
    server = await smtp_server()
    await queue.setup(account_for(server), client_base_url=files.url)
    settings = settings_factory(
        send_loop_interval=0.05,
        retry_delays=[60],
        attachment_fetch_timeout=5,
        shutdown_grace_seconds=0.2,
        allow_private_targets=True,  # the SMTP and file servers listen on 127.0.0.1
    )
    return World(files, server, queue, settings, start_dispatcher)


async def test_fetched_attachments_arrive_named_and_typed(world: World) -> None:
    """http_url and endpoint parts reach the server with the sent names (marker
    removed) and the served types, next to an inline one."""
    world.files.routes["/r.csv"] = FileRoute(body=DATA, content_type="text/csv")
    world.files.routes["/mail-proxy/attachments"] = FileRoute(
        body=b"%PDF", content_type="application/pdf"
    )
    md5 = hashlib.md5(DATA).hexdigest()
    await world.queue.add(
        "m1",
        attachments=[
            {"filename": f"r_{{MD5:{md5}}}.csv", "storage_path": f"{world.files.url}/r.csv"},
            {"filename": "inv.pdf", "storage_path": "doc_id=9"},
            {"filename": "n.txt", "storage_path": "base64:aGk="},
        ],
    )
    await world.start()
    await world.queue.wait_status("m1", "sent")
    parts = list(world.server.received[0].message.iter_attachments())
    assert [(p.get_filename(), p.get_content_type()) for p in parts] == [
        ("r.csv", "text/csv"),
        ("inv.pdf", "application/pdf"),
        ("n.txt", "text/plain"),
    ]
    assert parts[0].get_content() == DATA.decode()


async def test_gone_file_fails_and_server_error_defers(world: World) -> None:
    world.files.routes["/down"] = FileRoute(status=503)
    for message_id, path in (("gone", "/g"), ("down", "/down")):
        spec = {"filename": f"{message_id}.pdf", "storage_path": world.files.url + path}
        await world.queue.add(message_id, attachments=[spec])
    await world.start()
    failed = await world.queue.wait_status("gone", "error")
    assert failed.error == "attachment gone.pdf: the server answered 404"
    deferred = await world.queue.wait_status("down", "deferred")
    events = await world.queue.store.messages.events("t1", "down")
    assert [str(e.type) for e in events] == ["deferred"]
    assert deferred.deferred_ts is not None and not world.server.received


async def test_large_file_policy_sees_the_fetched_attachments(world: World) -> None:
    """The hook for large_file_config: it may drop attachments before the build."""
    seen: list[list[str]] = []

    class DropAll(AttachmentPolicy):
        async def apply(
            self, t: Tenant, m: OutgoingMessage, a: Attachments, now: float
        ) -> tuple[OutgoingMessage, Attachments]:
            seen.append([attachment.filename for attachment in a])
            return m, []

    await world.queue.add("m1", attachments=[{"filename": "n.txt", "storage_path": "base64:aGk="}])
    await world.start(attachment_policy=DropAll())
    await world.queue.wait_status("m1", "sent")
    assert seen == [["n.txt"]]
    assert not list(world.server.received[0].message.iter_attachments())


async def test_a_stop_during_a_fetch_loses_nothing(world: World) -> None:
    """Stopped mid-fetch, the lease is released and the message still pending; the
    next process sends it."""
    world.files.routes["/slow"] = FileRoute(body=DATA, delay=1.0)
    spec = {"filename": "s.csv", "storage_path": f"{world.files.url}/slow"}
    await world.queue.add("m1", attachments=[spec])
    first = await world.start()
    while not world.files.hits["/slow"]:
        await asyncio.sleep(0.01)
    await first.halt()
    assert await world.queue.status("m1") == "pending"
    world.files.routes["/slow"] = FileRoute(body=DATA)
    await world.start()
    await world.queue.wait_status("m1", "sent")
    assert len(world.server.received) == 1
