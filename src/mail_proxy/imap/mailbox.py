"""One IMAP connection to one mailbox folder, over ``aioimaplib``.

The poller asks for the mail not yet carrying ``HANDLED_KEYWORD`` (RFC 3501 §6.4.4
``UNKEYWORD``), reads each one's first ``MAX_PARSED`` bytes with a partial
``BODY.PEEK`` (so reading marks nothing and a huge mail costs no more than that),
and flags what it handled with ``\\Seen`` and the keyword. A person reading the
mailbox may mark mail seen without hiding it from the proxy. Mail is identified by
UIDVALIDITY and UID (RFC 3501 §2.3.1.1): a folder recreated with a new UIDVALIDITY
is read again, and the bookkeeping in the database still stops a repeat.

Implicit TLS (port 993) and plain connections are offered; ``aioimaplib`` has no
STARTTLS, so a server that only offers STARTTLS cannot be used (docs/bounces.md).
IDLE (RFC 2177) is used when the server announces it, else the caller polls.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import dataclass
from typing import Any

import aioimaplib

from mail_proxy.domain.returned_mail import MAX_PARSED
from mail_proxy.domain.text import storable

HANDLED_KEYWORD = "$GmpHandled"
FETCH_BATCH = 50
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_FETCH_UID = re.compile(rb"\bUID (\d+)\b")


class ImapError(Exception):
    """The server refused, answered NO/BAD, or the connection failed: ``str`` is a
    short storable sentence without credentials."""


#: Everything a mailbox session can fail with: the poller backs off on these.
IMAP_FAILURES: tuple[type[BaseException], ...] = (
    ImapError,
    OSError,
    TimeoutError,
    aioimaplib.AioImapException,
)


@dataclass(frozen=True, slots=True)
class MailboxConfig:
    """Where to read one mailbox. ``name`` keys the lease and the bookkeeping
    (``bounce`` or ``pec:<tenant>/<account>``); ``tenant_id`` is set for PEC."""

    name: str
    host: str
    port: int
    user: str
    password: str
    ssl: bool
    folder: str
    poll_interval: float
    tenant_id: str | None = None
    timeout: float = 30.0


class ImapMailbox:
    def __init__(self, config: MailboxConfig, ssl_context: ssl.SSLContext | None = None) -> None:
        self.config = config
        self._ssl_context = ssl_context
        self._client: Any = None
        self.uidvalidity = 0
        self.idle_capable = False

    async def open(self) -> None:
        """Connect, log in and select the folder."""
        c = self.config
        try:
            if c.ssl:
                if self._ssl_context is None:
                    # Loading the CA store is ~40 ms of CPU: off the loop, once per mailbox.
                    self._ssl_context = await asyncio.to_thread(ssl.create_default_context)
                context = self._ssl_context
                client = aioimaplib.IMAP4_SSL(
                    c.host, c.port, timeout=c.timeout, ssl_context=context
                )
            else:
                client = aioimaplib.IMAP4(c.host, c.port, timeout=c.timeout)
            self._client = client
            await client.wait_hello_from_server()
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise ImapError(
                f"cannot connect: {type(exc).__name__}: {storable(str(exc), 200)}"
            ) from exc
        _ok(await client.login(c.user, c.password), "login refused")
        selected = await client.select(c.folder)
        _ok(selected, f"cannot select folder {storable(c.folder, 100)}")
        found = _UIDVALIDITY.search(b" ".join(bytes(line) for line in selected.lines))
        self.uidvalidity = int(found.group(1)) if found else 0
        self.idle_capable = bool(client.has_capability("IDLE"))

    async def unhandled(self) -> list[int]:
        """UIDs of the mail without the handled keyword, oldest first."""
        response = await self._client.uid_search("UNKEYWORD", HANDLED_KEYWORD)
        _ok(response, "search failed")
        return sorted(int(uid) for uid in response.lines[0].split() if uid.isdigit())

    async def fetch(self, uids: list[int]) -> dict[int, bytes]:
        """The head (``MAX_PARSED`` bytes) of each mail; mail that vanished is absent."""
        found: dict[int, bytes] = {}
        for start in range(0, len(uids), FETCH_BATCH):
            chunk = ",".join(str(uid) for uid in uids[start : start + FETCH_BATCH])
            response = await self._client.uid("fetch", chunk, f"(UID BODY.PEEK[]<0.{MAX_PARSED}>)")
            _ok(response, "fetch failed")
            found.update(_fetched(response.lines))
        return found

    async def mark_handled(self, uids: list[int]) -> None:
        if not uids:
            return
        uid_set = ",".join(str(uid) for uid in uids)
        flags = f"(\\Seen {HANDLED_KEYWORD})"
        _ok(await self._client.uid("store", uid_set, "+FLAGS.SILENT", flags), "flagging failed")

    async def wait_for_mail(self, seconds: float, stop: asyncio.Event) -> None:
        """Until the server announces a change (IDLE) or ``seconds`` pass, or ``stop``."""
        if not self.idle_capable:
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({stopped}, timeout=seconds)
            stopped.cancel()
            return
        idle = await self._client.idle_start(timeout=seconds)
        pushed = asyncio.ensure_future(self._client.wait_server_push(timeout=seconds))
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({pushed, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            pushed.cancel()
            if self._client.has_pending_idle():
                self._client.idle_done()
            await asyncio.wait_for(idle, self.config.timeout)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if client.get_state() in ("AUTH", "SELECTED"):
                await asyncio.wait_for(client.logout(), 5)
        except (OSError, TimeoutError, aioimaplib.Abort, aioimaplib.CommandTimeout):
            pass
        finally:
            transport = getattr(client.protocol, "transport", None)
            if transport is not None:
                transport.close()


def _ok(response: Any, what: str) -> None:
    if response.result != "OK":
        said = b" ".join(bytes(line) for line in response.lines[-1:])
        raise ImapError(f"{what}: {storable(said, 200)}")


def _fetched(lines: list[Any]) -> dict[int, bytes]:
    """Pairs of ``n FETCH (UID u BODY[]<0> {size}`` and the literal that follows."""
    found: dict[int, bytes] = {}
    uid: int | None = None
    for line in lines:
        if isinstance(line, bytearray):
            if uid is not None:
                found[uid] = bytes(line)
            uid = None
            continue
        match = _FETCH_UID.search(line) if b"FETCH" in line else None
        uid = int(match.group(1)) if match else uid
    return found
