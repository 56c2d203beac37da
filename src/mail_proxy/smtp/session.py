"""The mail transactions of one established SMTP session, pipelined when offered.

aiosmtplib opens the session (greeting, EHLO, STARTTLS, AUTH); this protocol then
takes the transport over and carries the transactions. Why not aiosmtplib for
those too: its protocol waits for each reply before the next command and drops
reply bytes that arrive while no command is pending, so it cannot pipeline.

PIPELINING (RFC 2920): when the server lists it in its EHLO reply, MAIL FROM,
every RCPT TO and DATA go out in one write and their replies are read in order
afterwards (§3.1: DATA ends the group; every status is checked; when DATA was
accepted though no recipient was, a lone "." ends the empty message). One round
trip instead of two plus one per recipient, and on both ends far fewer wake-ups
per message. A server that does not offer it gets one command at a time.

Server text is outside input: a reply line longer than ``_LINE_LIMIT`` or a reply
longer than ``_REPLY_LIMIT`` ends the session; reply texts become ``Reply``
through ``storable()``; an address with a line break or NUL is never written
(it would inject a command).
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Iterator

from mail_proxy.domain.mime import Envelope
from mail_proxy.domain.smtp_replies import Reply, Stage
from mail_proxy.domain.text import storable
from mail_proxy.smtp.base import SendResult, SmtpNotPossible, SmtpRejected, SmtpUnavailable

_DETAIL_LIMIT = 300
_LINE_LIMIT = 8 * 1024  # RFC 5321 §4.5.3.1.5 says 512; real servers exceed it a little
_REPLY_LIMIT = 64 * 1024
_DATA_SLICE = 64 * 1024
_START_INPUT = 354  # RFC 5321 §4.2.2: "Start mail input; end with <CRLF>.<CRLF>"
_CLOSING = 421  # RFC 5321 §3.8: the server is closing the transmission channel
_LINE_ENDING = re.compile(rb"\r\n|\n|\r(?!\n)")
_LEADING_DOT = re.compile(rb"(?m)^\.")
_UNSAFE_IN_COMMAND = re.compile(r"[\r\n\x00]")


class _ProtocolError(Exception):
    """The server's bytes are not SMTP replies (or are far too long)."""


class SmtpSession(asyncio.Protocol):
    """One SMTP session between transactions: send, reset, quit.

    ``extensions`` are the EHLO keywords (lower case) the server offered; ``timeout``
    bounds each wait for a reply. A session serves one transaction at a time.
    """

    def __init__(
        self, transport: asyncio.Transport, extensions: dict[str, str], timeout: float
    ) -> None:
        self._transport = transport
        self._extensions = extensions
        self._timeout = timeout
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._replies: deque[tuple[int, bytes]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._lost: SmtpUnavailable | None = None
        self.content_written = False  # of the current transaction: a retry could duplicate
        transport.set_protocol(self)

    # -- asyncio.Protocol ---------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        try:
            self._parse()
        except _ProtocolError as error:
            self._fail(SmtpUnavailable("smtp error", str(error)))
            self._transport.close()
            return
        if self._replies:
            self._wake()

    def eof_received(self) -> bool:
        self._fail(SmtpUnavailable("disconnected", "the server closed the connection"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        detail = storable(str(exc), _DETAIL_LIMIT) if exc else "connection closed"
        self._fail(SmtpUnavailable("disconnected", detail))
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def pause_writing(self) -> None:
        self._drained = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    # -- the session ---------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        return self._lost is None and not self._transport.is_closing()

    def supports(self, extension: str) -> bool:
        return extension in self._extensions

    def close(self) -> None:
        self._fail(SmtpUnavailable("disconnected", "closed by the proxy"))
        self._transport.close()

    async def quit(self) -> None:
        """QUIT (RFC 5321 §4.1.1.10), then close whatever the answer."""
        try:
            if self.is_connected:
                self._write(b"QUIT\r\n")
                await self._reply()
        except SmtpUnavailable:
            pass
        finally:
            self._transport.close()

    async def reset(self) -> bool:
        """RSET (RFC 5321 §4.1.1.5): clear a refused envelope; False if that failed."""
        try:
            self._write(b"RSET\r\n")
            code, _ = await self._reply()
        except SmtpUnavailable:
            return False
        return code // 100 == 2

    async def transaction(self, envelope: Envelope, message: bytes) -> SendResult:
        """MAIL, one RCPT per recipient, DATA (RFC 5321 §3.3); raises ``SmtpRejected``
        for a refusal, ``SmtpUnavailable`` when the session broke."""
        self.content_written = False
        commands = self._envelope_commands(envelope, len(message))
        if self.supports("pipelining"):
            self._write(b"".join(commands) + b"DATA\r\n")
            replies = await self._group_replies(len(commands) + 1)
        else:
            replies = await self._one_at_a_time(commands)
        mail, *rcpts = replies[: len(commands)]
        data = replies[len(commands)] if len(replies) > len(commands) else None
        accepted, refused = _recipients(envelope.recipients, rcpts)
        failure = _refusal(mail, accepted, refused, data)
        if failure is not None:
            if data is not None and data[0] == _START_INPUT:
                await self._empty_message()
            raise failure
        assert data is not None
        if data[0] != _START_INPUT:
            raise SmtpRejected(_reply(data), Stage.DATA)
        final = await self._content(message)
        if final[0] // 100 != 2:
            raise SmtpRejected(_reply(final), Stage.DATA)
        return SendResult(tuple(accepted), _reply(final), refused)

    # -- steps ------------------------------------------------------------------------

    def _envelope_commands(self, envelope: Envelope, size: int) -> list[bytes]:
        options = f" SIZE={size}" if self.supports("size") else ""
        encoding = "ascii"
        if envelope.utf8:
            if not self.supports("smtputf8"):
                raise SmtpNotPossible(
                    "an address has a non-ASCII local part and the server does not offer "
                    "SMTPUTF8 (RFC 6531)"
                )
            options += " SMTPUTF8"
            encoding = "utf-8"
        for address in (envelope.sender, *envelope.recipients):
            if _UNSAFE_IN_COMMAND.search(address):
                raise SmtpNotPossible("an address holds a line break or NUL")
        mail = f"MAIL FROM:<{envelope.sender}>{options}\r\n".encode(encoding)
        return [mail] + [f"RCPT TO:<{r}>\r\n".encode(encoding) for r in envelope.recipients]

    async def _group_replies(self, count: int) -> list[tuple[int, bytes]]:
        """The replies to a pipelined group, in order; none after a 421 (the server
        is closing, RFC 5321 §3.8: the rest will never come)."""
        replies: list[tuple[int, bytes]] = []
        while len(replies) < count and (not replies or replies[-1][0] != _CLOSING):
            replies.append(await self._reply())
        return replies

    async def _one_at_a_time(self, commands: list[bytes]) -> list[tuple[int, bytes]]:
        """Without PIPELINING: stop at a refused MAIL, skip DATA when no RCPT passed."""
        replies: list[tuple[int, bytes]] = []
        for command in commands:
            self._write(command)
            replies.append(await self._reply())
            if replies[0][0] // 100 != 2 or replies[-1][0] == _CLOSING:
                return replies
        if any(code // 100 == 2 for code, _ in replies[1:]):
            self._write(b"DATA\r\n")
            replies.append(await self._reply())
        return replies

    async def _content(self, message: bytes) -> tuple[int, bytes]:
        """The message a slice at a time (transparency, RFC 5321 §4.5.2).

        Each slice ends at a line break, so line ends and leading dots are fixed per
        slice exactly as on the whole; only one slice is ever copied, and the write
        waits for the socket before the next (a 20 MB attachment stays ~20 MB).
        The terminator goes with the last slice: one write for the usual message.
        """
        self.content_written = True
        end = b".\r\n" if message.endswith((b"\n", b"\r")) else b"\r\n.\r\n"
        pieces = _line_slices(message)
        piece = next(pieces, b"")
        while piece:
            following = next(pieces, b"")
            data = _LEADING_DOT.sub(b"..", _LINE_ENDING.sub(b"\r\n", piece))
            self._write(data if following else data + end)
            if self._drained is not None:
                await self._drained
            piece = following
        if not message:
            self._write(end)
        return await self._reply()

    async def _empty_message(self) -> None:
        """DATA was accepted though no recipient was (RFC 2920 §3.1): end it empty."""
        self.content_written = True
        self._write(b".\r\n")
        await self._reply()

    # -- replies ------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self._lost is not None:
            raise self._lost
        self._transport.write(data)

    async def _reply(self) -> tuple[int, bytes]:
        """The next reply in order, waiting at most ``timeout`` for it."""
        if not self._replies:
            if self._lost is not None:
                raise self._lost
            self._waiter = self._loop.create_future()
            timer = self._loop.call_later(self._timeout, self._time_out, self._waiter)
            try:
                await self._waiter
            finally:
                timer.cancel()
                self._waiter = None
        return self._replies.popleft()

    def _time_out(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_exception(SmtpUnavailable("timeout", "no answer in time"))
        self._lost = SmtpUnavailable("timeout", "no answer in time")
        self._transport.close()  # a late reply would pair with the wrong command

    def _parse(self) -> None:
        """Move every complete reply (RFC 5321 §4.2: ``code-text`` lines, then
        ``code text``) from the buffer to the queue."""
        start = 0
        while True:
            lines: list[bytes] = []
            offset = start
            while True:
                end = self._buffer.find(b"\n", offset)
                if end < 0:
                    if len(self._buffer) - offset > _LINE_LIMIT:
                        raise _ProtocolError("a reply line is too long")
                    del self._buffer[:start]
                    return
                line = bytes(self._buffer[offset : end + 1])
                if len(line) > _LINE_LIMIT or end + 1 - start > _REPLY_LIMIT:
                    raise _ProtocolError("a reply is too long")
                if not line[:3].isdigit():
                    raise _ProtocolError("a reply line does not start with a code")
                lines.append(line[4:].strip(b" \t\r\n"))
                offset = end + 1
                if line[3:4] != b"-":
                    break
            self._replies.append((int(line[:3]), b"\n".join(lines)))
            start = offset

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, error: SmtpUnavailable) -> None:
        if self._lost is None:
            self._lost = error
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(self._lost)


def _recipients(
    recipients: tuple[str, ...], replies: list[tuple[int, bytes]]
) -> tuple[list[str], dict[str, Reply]]:
    accepted: list[str] = []
    refused: dict[str, Reply] = {}
    for recipient, reply in zip(recipients, replies, strict=False):
        if reply[0] // 100 == 2:
            accepted.append(recipient)
        else:
            refused[recipient] = _reply(reply)
    return accepted, refused


def _refusal(
    mail: tuple[int, bytes],
    accepted: list[str],
    refused: dict[str, Reply],
    data: tuple[int, bytes] | None,
) -> SmtpRejected | None:
    """The envelope's refusal, if any: MAIL first, then "no recipient accepted"."""
    if mail[0] // 100 != 2:
        return SmtpRejected(_reply(mail), Stage.MAIL)
    closing = next((reply for reply in refused.values() if reply.code == _CLOSING), None)
    if closing is not None:
        return SmtpRejected(closing, Stage.RCPT, refused)
    if not accepted:
        return SmtpRejected(next(iter(refused.values())), Stage.RCPT, refused)
    return None


def _reply(reply: tuple[int, bytes]) -> Reply:
    """A server reply made storable: its text may hold any bytes, any length."""
    return Reply(reply[0], storable(reply[1], _DETAIL_LIMIT))


def _line_slices(message: bytes, size: int = _DATA_SLICE) -> Iterator[bytes]:
    """About ``size`` bytes at a time, each ending just after a line feed (or at the end)."""
    start = 0
    while start < len(message):
        end = message.find(b"\n", start + size - 1)
        end = len(message) if end < 0 else end + 1
        yield message[start:end]
        start = end
