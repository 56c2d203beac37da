"""PIPELINING (RFC 2920) against a raw SMTP server that answers as scripted.

aiosmtpd cannot show that commands came as one group, nor answer DATA with 354
when no recipient was accepted; this small server can. It holds every reply of a
group until the group's DATA has arrived, so a client that waited for each reply
would stall into its timeout instead of passing.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiosmtplib
import pytest

from mail_proxy.domain.mime import Envelope
from mail_proxy.domain.models import Account
from mail_proxy.domain.smtp_replies import Stage
from mail_proxy.settings import Settings
from mail_proxy.smtp.base import SmtpRejected, SmtpUnavailable
from mail_proxy.smtp.pool import SmtpPool
from mail_proxy.smtp.sink import DevSink

MESSAGE = b"Subject: pipelined\r\n\r\nHello\r\n"
TWO = Envelope("sender@example.org", ("a@example.com", "b@example.com"))


@dataclass
class RawServer:
    """``replies`` maps a command's first word (or ``RCPT:<address>``) to its reply."""

    replies: dict[str, bytes] = field(default_factory=dict)
    pipelining: bool = True
    groups: list[list[bytes]] = field(default_factory=list)  # commands read per group
    contents: list[bytes] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def reply(self, command: bytes) -> bytes:
        word = command.split(b" ", 1)[0].split(b":", 1)[0].upper().decode()
        if word == "RCPT":
            address = command.split(b"<", 1)[1].split(b">", 1)[0].decode()
            return self.replies.get(f"RCPT:{address}", b"250 2.1.5 ok\r\n")
        defaults = {"MAIL": b"250 2.1.0 ok\r\n", "DATA": b"354 go ahead\r\n"}
        return self.replies.get(word, defaults.get(word, b"250 ok\r\n"))

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.write(b"220 raw ESMTP\r\n")
        group: list[bytes] = []
        pending: list[bytes] = []
        try:
            while line := await reader.readline():
                command = line.rstrip(b"\r\n")
                if command.upper().startswith(b"EHLO"):
                    offer = b"250-PIPELINING\r\n" if self.pipelining else b""
                    writer.write(b"250-raw\r\n" + offer + b"250 SIZE 1000000\r\n")
                    continue
                if command.upper() == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    break
                answer = self.reply(command)
                group.append(command)
                pending.append(answer)
                grouped = command.upper() in (b"MAIL", b"RCPT") or command.upper().startswith(
                    (b"MAIL ", b"RCPT ")
                )
                if grouped and self.pipelining:
                    continue  # hold the replies until the group's DATA
                self.groups.append(group)
                writer.write(b"".join(pending))
                group, pending = [], []
                if command.upper() == b"DATA" and answer.startswith(b"354"):
                    content = b""
                    while (data_line := await reader.readline()) not in (b".\r\n", b""):
                        content += data_line
                    self.contents.append(content + data_line)
                    writer.write(self.replies.get("END", b"250 2.0.0 queued\r\n"))
                if answer.startswith(b"421"):
                    break
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


RawFactory = Callable[..., Awaitable[RawServer]]


def account_for(server: RawServer) -> Account:
    return Account(id="acc", host="127.0.0.1", port=server.port, use_tls=False, tenant_id="t1")


@pytest.fixture
async def raw_server() -> AsyncIterator[RawFactory]:
    servers: list[RawServer] = []

    async def start(**fields: Any) -> RawServer:
        server = RawServer(**fields)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def pool(
    settings_factory: Callable[..., Settings], client_tls: ssl.SSLContext
) -> AsyncIterator[SmtpPool]:
    pool = SmtpPool(settings_factory(smtp_timeout=1.0), ssl_context=client_tls)
    yield pool
    await pool.close()


async def test_envelope_goes_as_one_group(raw_server: RawFactory, pool: SmtpPool) -> None:
    """MAIL, both RCPTs and DATA in one group; the replies are read in order. The
    server answers nothing before DATA, so waiting per command would time out."""
    server = await raw_server()
    account = account_for(server)
    for _ in range(2):
        result = await pool.send(account, TWO, MESSAGE)
        assert result.accepted == ("a@example.com", "b@example.com")
    assert [len(group) for group in server.groups] == [4, 4]
    assert server.groups[0][0].startswith(b"MAIL FROM:<sender@example.org> SIZE=")
    assert server.groups[0][3] == b"DATA"
    assert server.contents == [MESSAGE + b".\r\n"] * 2
    assert server.connections == 1


async def test_without_pipelining_one_command_at_a_time(
    raw_server: RawFactory, pool: SmtpPool
) -> None:
    """A server that does not offer PIPELINING is never sent a group."""
    server = await raw_server(pipelining=False)
    await pool.send(account_for(server), TWO, MESSAGE)
    assert [len(group) for group in server.groups] == [1, 1, 1, 1]


async def test_data_accepted_with_no_recipient_gets_a_lone_dot(
    raw_server: RawFactory, pool: SmtpPool
) -> None:
    """Every RCPT refused yet DATA answered 354 (RFC 2920 §3.1): the client ends the
    empty message with ".", reports the refusals, and the session carries on."""
    server = await raw_server(
        replies={
            "RCPT:a@example.com": b"550 5.1.1 no such user a\r\n",
            "RCPT:b@example.com": b"550 5.1.1 no such user b\r\n",
            "END": b"554 5.5.1 no valid recipients\r\n",
        }
    )
    account = account_for(server)
    with pytest.raises(SmtpRejected) as caught:
        await pool.send(account, TWO, MESSAGE)
    assert caught.value.stage is Stage.RCPT
    assert {k: str(v) for k, v in caught.value.refused.items()} == {
        "a@example.com": "550 5.1.1 no such user a",
        "b@example.com": "550 5.1.1 no such user b",
    }
    assert server.contents == [b".\r\n"]  # not a byte of the message
    assert server.groups[-1] == [b"RSET"]
    server.replies = {}
    await pool.send(account, TWO, MESSAGE)
    assert server.connections == 1


async def test_refused_sender_in_a_group(raw_server: RawFactory, pool: SmtpPool) -> None:
    """MAIL refused: the RCPT and DATA replies (503) are read and the refusal is MAIL's."""
    server = await raw_server(
        replies={
            "MAIL": b"553 5.7.1 sender not allowed\r\n",
            "RCPT:a@example.com": b"503 5.5.1 need MAIL\r\n",
            "RCPT:b@example.com": b"503 5.5.1 need MAIL\r\n",
            "DATA": b"503 5.5.1 need RCPT\r\n",
        }
    )
    with pytest.raises(SmtpRejected) as caught:
        await pool.send(account_for(server), TWO, MESSAGE)
    assert caught.value.stage is Stage.MAIL
    assert str(caught.value.reply) == "553 5.7.1 sender not allowed"
    assert server.contents == []


async def test_closing_reply_in_a_group_stops_reading(
    raw_server: RawFactory, pool: SmtpPool
) -> None:
    """421 to a RCPT: the server is going away; no reply after it is awaited (no
    timeout), the session is dropped and the refusal is transient."""
    server = await raw_server(replies={"RCPT:a@example.com": b"421 4.3.2 shutting down\r\n"})
    account = account_for(server)
    started = asyncio.get_running_loop().time()
    with pytest.raises(SmtpRejected) as caught:
        await pool.send(account, TWO, MESSAGE)
    assert caught.value.reply.code == 421
    assert asyncio.get_running_loop().time() - started < 0.9  # well under the 1 s timeout
    assert pool.idle_connections(account) == 0


@pytest.mark.parametrize(
    "garbage",
    [b"hello there\r\n", b"250 " + b"x" * 20_000 + b"\r\n", b"250-more\r\n" * 9_000],
    ids=["no-code", "long-line", "endless-reply"],
)
async def test_garbage_replies_end_the_session_cleanly(
    raw_server: RawFactory, pool: SmtpPool, garbage: bytes
) -> None:
    """Bytes that are not SMTP replies, or far too many of them: a transient failure
    naming the problem, never a hang or an unbounded buffer."""
    server = await raw_server(replies={"MAIL": garbage})
    account = account_for(server)
    with pytest.raises(SmtpUnavailable) as caught:
        await pool.send(account, TWO, MESSAGE)
    assert caught.value.kind in {"smtp error", "timeout"}
    assert "reply" in caught.value.detail or caught.value.kind == "timeout"
    assert pool.idle_connections(account) == 0


async def test_dev_sink_offers_pipelining_and_takes_a_group(pool: SmtpPool) -> None:
    """`serve --dev-sink` advertises PIPELINING as real MTAs do, so a newcomer's first
    message takes the same pipelined path as production; both recipients arrive."""
    sink = DevSink(port=0)
    await sink.start()
    try:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port, use_tls=False)
        async with client:
            assert client.supports_extension("pipelining")
        account = Account(id="dev", host="127.0.0.1", port=sink.port, use_tls=False, tenant_id="t1")
        result = await pool.send(account, TWO, MESSAGE)
    finally:
        await sink.stop()
    assert result.accepted == TWO.recipients and not result.refused
    assert [m.recipients for m in sink.messages] == [list(TWO.recipients)]
