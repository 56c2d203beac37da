"""Work announced across processes: PostgreSQL LISTEN/NOTIFY, nothing on SQLite.

On PostgreSQL a write that makes messages due runs ``pg_notify`` in its own
transaction; the server delivers the notification at commit, to every session
listening on the database's channel, and drops it on rollback. Each process keeps one
extra connection open in LISTEN for it (so a PgBouncer in transaction pooling mode
must not sit between the proxy and the server for that connection: LISTEN needs a
session of its own). The payload is the announcing process's token, so a process
ignores its own announcements: it has already woken its dispatcher directly.

The channel is per schema: proxies confined to different schemas of one database
(``?schema=``) share no queue and wake each other for nothing otherwise.

SQLite has no such mechanism; processes sharing a file poll
(``GMP_SEND_LOOP_INTERVAL``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from collections.abc import Callable

import psycopg
import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.domain.retry import backoff_delay
from mail_proxy.ports import WorkSignals
from mail_proxy.storage.engines import Target

log = structlog.get_logger(__name__)

#: Back-off between attempts to get the listening connection back.
RECONNECT_BASE_SECONDS = 0.5
RECONNECT_CAP_SECONDS = 30.0
#: How often the listener looks at ``stop`` while no notification comes.
STOP_CHECK_SECONDS = 1.0

_NOTIFY = sa.text("SELECT pg_notify(:channel, :token)")


def channel_for(target: Target) -> str:
    """The schema's channel name: an identifier well below 63 characters."""
    scope = target.schema or "public"
    return "gmp_work_" + hashlib.sha256(scope.encode()).hexdigest()[:16]


class Announcer:
    """The announcing half, used inside write transactions (see ``Dialect``)."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.token = secrets.token_hex(8)

    async def announce(self, conn: AsyncConnection) -> None:
        await conn.execute(_NOTIFY, {"channel": self.channel, "token": self.token})


class PostgresWorkSignals(WorkSignals):
    def __init__(self, target: Target, announcer: Announcer) -> None:
        url = target.url.set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._announcer = announcer
        self._listening = False

    async def watch(self, on_work: Callable[[], None], stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                await self._listen(on_work, stop)
                return
            except (psycopg.Error, OSError) as exc:
                # A connection that was listening starts the back-off over.
                failures = 1 if self._listening else failures + 1
                self._listening = False
                delay = backoff_delay(failures, RECONNECT_BASE_SECONDS, RECONNECT_CAP_SECONDS)
                log.warning(
                    "work_signals_unavailable",
                    error=type(exc).__name__,
                    retry_in=round(delay, 1),
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)

    async def _listen(self, on_work: Callable[[], None], stop: asyncio.Event) -> None:
        conn = await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, connect_timeout=5
        )
        async with conn:
            channel = psycopg.sql.Identifier(self._announcer.channel)
            await conn.execute(psycopg.sql.SQL("LISTEN {}").format(channel))
            self._listening = True
            on_work()  # what was announced while this process was not listening
            own = self._announcer.token
            while not stop.is_set():
                async for notice in conn.notifies(timeout=STOP_CHECK_SECONDS):
                    if notice.payload != own:
                        on_work()


class NoWorkSignals(WorkSignals):
    """SQLite: nothing to listen to; the dispatcher's timer finds other processes' work."""

    async def watch(self, on_work: Callable[[], None], stop: asyncio.Event) -> None:
        await stop.wait()
