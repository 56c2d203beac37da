"""The SMTP pool against real aiosmtpd servers: TLS modes, AUTH, reuse, failures."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from typing import Any

import pytest

from mail_proxy.domain.mime import Envelope, build_message
from mail_proxy.domain.outgoing import from_payload
from mail_proxy.domain.smtp_replies import Permanent, Stage, Transient
from mail_proxy.settings import Settings
from mail_proxy.smtp.base import SmtpRejected, SmtpUnavailable, classify
from mail_proxy.smtp.pool import SmtpPool

from .conftest import PASSWORD, USER, Script, ServerFactory, account_for, payload

ENVELOPE = Envelope("sender@example.org", ("to@example.com",))


def data(message_id: str = "m1") -> bytes:
    message = from_payload(payload(message_id))
    return build_message(message, now=time.time(), message_key=message_id)


@pytest.fixture(params=[False, True], ids=["one-at-a-time", "pipelined"])
def pipelining(request: pytest.FixtureRequest) -> bool:
    """Every test here runs against a server without and with PIPELINING."""
    return bool(request.param)


@pytest.fixture
def pool(settings_factory: Callable[..., Settings], client_tls: ssl.SSLContext) -> SmtpPool:
    return SmtpPool(settings_factory(smtp_timeout=1.0), ssl_context=client_tls)


async def test_plain_send_reuses_one_connection(smtp_server: ServerFactory, pool: SmtpPool) -> None:
    """Consecutive sends share one session (RFC 5321 §3.3) and arrive intact."""
    server = await smtp_server()
    account = account_for(server)
    for i in range(3):
        result = await pool.send(account, ENVELOPE, data(f"m{i}"))
        assert result.accepted == ("to@example.com",)
        assert result.reply.code == 250
    assert [r.mail_id for r in server.received] == ["m0", "m1", "m2"]
    assert server.received[0].mail_from == "sender@example.org"
    assert server.connections == 1
    assert pool.idle_connections(account) == 1
    await pool.close()


async def test_starttls_with_auth(
    smtp_server: ServerFactory, pool: SmtpPool, server_tls: ssl.SSLContext
) -> None:
    """use_tls on a submission port: STARTTLS first, then AUTH (required over TLS)."""
    server = await smtp_server(starttls=server_tls, auth=True)
    account = account_for(server, use_tls=True, user=USER, password=PASSWORD)
    await pool.send(account, ENVELOPE, data())
    assert len(server.received) == 1
    await pool.close()


async def test_implicit_tls(
    settings_factory: Callable[..., Settings],
    client_tls: ssl.SSLContext,
    smtp_server: ServerFactory,
    server_tls: ssl.SSLContext,
) -> None:
    """Port 465 semantics (RFC 8314): TLS from the first byte, here on a test port."""
    server = await smtp_server(implicit_tls=server_tls)
    pool = SmtpPool(settings_factory(), ssl_context=client_tls, implicit_tls_ports={server.port})
    await pool.send(account_for(server, use_tls=None), ENVELOPE, data())
    assert len(server.received) == 1
    await pool.close()


async def test_untrusted_certificate_is_a_tls_failure(
    settings_factory: Callable[..., Settings],
    smtp_server: ServerFactory,
    server_tls: ssl.SSLContext,
) -> None:
    """Certificates are verified by default: a self-signed server is refused, transient."""
    server = await smtp_server(implicit_tls=server_tls)
    pool = SmtpPool(settings_factory(smtp_timeout=2.0), implicit_tls_ports={server.port})
    with pytest.raises(SmtpUnavailable) as caught:
        await pool.send(account_for(server, use_tls=True), ENVELOPE, data())
    assert caught.value.kind == "tls"
    assert isinstance(classify(caught.value), Transient)
    assert server.received == []
    await pool.close()


async def test_ca_store_loaded_only_for_tls_and_once(
    settings_factory: Callable[..., Settings],
    smtp_server: ServerFactory,
    server_tls: ssl.SSLContext,
    client_tls: ssl.SSLContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The system CA store costs tens of ms to load: a plain-text account never loads
    it, and sessions opened together for a TLS account share one load."""
    loads: list[int] = []

    def load() -> ssl.SSLContext:
        loads.append(1)
        return client_tls  # trusts the test CA, as the system store would a real one

    monkeypatch.setattr(ssl, "create_default_context", load)
    plain, tls = await smtp_server(), await smtp_server(starttls=server_tls)
    pool = SmtpPool(settings_factory(smtp_timeout=2.0))
    await pool.send(account_for(plain, use_tls=False), ENVELOPE, data())
    assert loads == []
    secure = account_for(tls, "secure", use_tls=True)
    await asyncio.gather(*(pool.send(secure, ENVELOPE, data(f"t{i}")) for i in range(4)))
    assert loads == [1]
    assert len(tls.received) == 4 and tls.connections > 1
    await pool.close()


async def test_starttls_refused_certificate(
    settings_factory: Callable[..., Settings],
    smtp_server: ServerFactory,
    server_tls: ssl.SSLContext,
) -> None:
    """A failed STARTTLS handshake is a TLS failure too, and nothing is sent."""
    server = await smtp_server(starttls=server_tls)
    pool = SmtpPool(settings_factory(smtp_timeout=2.0))
    with pytest.raises(SmtpUnavailable) as caught:
        await pool.send(account_for(server, use_tls=True), ENVELOPE, data())
    assert caught.value.kind == "tls"
    await pool.close()


async def test_wrong_password_is_permanent(
    smtp_server: ServerFactory, pool: SmtpPool, server_tls: ssl.SSLContext
) -> None:
    """535 to AUTH: the credentials are wrong, waiting will not help."""
    server = await smtp_server(starttls=server_tls, auth=True)
    account = account_for(server, use_tls=True, user=USER, password="wrong")
    with pytest.raises(SmtpRejected) as caught:
        await pool.send(account, ENVELOPE, data())
    assert caught.value.stage is Stage.AUTH
    assert caught.value.reply.code == 535
    assert isinstance(classify(caught.value), Permanent)
    await pool.close()


async def test_connection_refused_is_transient(smtp_server: ServerFactory, pool: SmtpPool) -> None:
    """Nobody listening: a connection failure, worth a retry."""
    server = await smtp_server()
    account = account_for(server)
    await server.stop()
    with pytest.raises(SmtpUnavailable) as caught:
        await pool.send(account, ENVELOPE, data())
    assert caught.value.kind == "connection"
    await pool.close()


async def test_partial_refusal_reports_each_recipient(
    smtp_server: ServerFactory, pool: SmtpPool
) -> None:
    """Accepted for some recipients: a result that names the refused ones."""
    server = await smtp_server(Script(refuse={"bad@example.com": "550 5.1.1 no such user"}))
    envelope = Envelope("s@example.org", ("to@example.com", "bad@example.com"))
    result = await pool.send(account_for(server), envelope, data())
    assert result.accepted == ("to@example.com",)
    assert {k: str(v) for k, v in result.refused.items()} == {
        "bad@example.com": "550 5.1.1 no such user"
    }
    assert server.received[0].rcpt_tos == ["to@example.com"]
    await pool.close()


@pytest.mark.parametrize(
    ("refusals", "expected"),
    [
        ({"to@example.com": "550 5.1.1 unknown"}, Permanent),
        ({"to@example.com": "451 4.3.0 try later"}, Transient),
    ],
)
async def test_all_recipients_refused(
    smtp_server: ServerFactory, pool: SmtpPool, refusals: dict[str, str], expected: Any
) -> None:
    """Every recipient refused: a rejection, and the session stays usable after RSET."""
    server = await smtp_server(Script(refuse=refusals))
    account = account_for(server)
    with pytest.raises(SmtpRejected) as caught:
        await pool.send(account, ENVELOPE, data())
    assert caught.value.stage is Stage.RCPT
    assert isinstance(classify(caught.value), expected)
    server.script.refuse = {}
    await pool.send(account, ENVELOPE, data("m2"))
    assert server.connections == 1
    await pool.close()


async def test_data_rejected_with_reply_text(smtp_server: ServerFactory, pool: SmtpPool) -> None:
    """A 554 after DATA is permanent and keeps the server's words."""
    server = await smtp_server(Script(data_reply="554 5.7.1 spam detected"))
    with pytest.raises(SmtpRejected) as caught:
        await pool.send(account_for(server), ENVELOPE, data())
    assert str(caught.value.reply) == "554 5.7.1 spam detected"
    assert caught.value.stage is Stage.DATA
    await pool.close()


async def test_drop_mid_data_is_transient(smtp_server: ServerFactory, pool: SmtpPool) -> None:
    """The peer vanishes before answering DATA: transient, and the session is discarded."""
    server = await smtp_server(Script(drop_in_data=True))
    account = account_for(server)
    with pytest.raises(SmtpUnavailable) as caught:
        await pool.send(account, ENVELOPE, data())
    assert isinstance(classify(caught.value), Transient)
    assert pool.idle_connections(account) == 0
    await pool.close()


async def test_stalled_server_times_out(smtp_server: ServerFactory, pool: SmtpPool) -> None:
    """No answer within GMP_SMTP_TIMEOUT (1 s here): a timeout, transient."""
    server = await smtp_server(Script(stall=True))
    started = time.monotonic()
    with pytest.raises(SmtpUnavailable) as caught:
        await pool.send(account_for(server), ENVELOPE, data())
    assert caught.value.kind == "timeout"
    assert time.monotonic() - started < 5
    await pool.close()


async def test_session_closed_by_server_is_replaced(
    smtp_server: ServerFactory, pool: SmtpPool
) -> None:
    """A pooled session answered 421 at MAIL: a fresh one carries the message."""
    server = await smtp_server(Script(close_after=1))
    account = account_for(server)
    await pool.send(account, ENVELOPE, data("m1"))
    await pool.send(account, ENVELOPE, data("m2"))
    assert [r.mail_id for r in server.received] == ["m1", "m2"]
    assert server.connections == 2
    await pool.close()


async def test_ttl_expired_connection_is_not_reused(
    smtp_server: ServerFactory, pool: SmtpPool
) -> None:
    """A session older than the account's ttl is closed and a new one opened."""
    server = await smtp_server()
    account = account_for(server, ttl=0)
    await pool.send(account, ENVELOPE, data("m1"))
    await pool.send(account, ENVELOPE, data("m2"))
    assert server.connections == 2
    await pool.close()


async def test_changed_credentials_retire_old_sessions(
    smtp_server: ServerFactory, pool: SmtpPool
) -> None:
    """New account settings never ride on a session opened with the old ones."""
    server = await smtp_server()
    await pool.send(account_for(server), ENVELOPE, data("m1"))
    await pool.send(account_for(server, host="localhost"), ENVELOPE, data("m2"))
    assert server.connections == 2
    await pool.close()


async def test_closed_pool_refuses_to_send(smtp_server: ServerFactory, pool: SmtpPool) -> None:
    """After close() no new session is opened."""
    server = await smtp_server()
    await pool.close()
    with pytest.raises(SmtpUnavailable):
        await pool.send(account_for(server), ENVELOPE, data())
    assert server.connections == 0


async def test_large_data_goes_in_slices_and_arrives_intact(
    smtp_server: ServerFactory, pool: SmtpPool
) -> None:
    """DATA is written a slice at a time: lines starting with a dot are stuffed
    (RFC 5321 §4.5.2) and bare line feeds become CRLF across slice boundaries, so
    the server reads back exactly the message."""
    server = await smtp_server()
    lines = [b"Subject: slices", b"Message-ID: <slices@example.org>", b""]
    lines += [(b"." if i % 7 == 0 else b"") + b"line %d " % i + b"x" * 60 for i in range(12_000)]
    message = b"\n".join(lines) + b"\n.\n..\n"
    result = await pool.send(account_for(server), ENVELOPE, message)
    assert result.reply.code == 250
    [received] = server.received
    assert received.raw.replace(b"\r\n", b"\n").rstrip(b"\n") == message.rstrip(b"\n")
    await pool.close()


async def test_drop_after_the_content_is_not_sent_twice(
    smtp_server: ServerFactory, pool: SmtpPool
) -> None:
    """A reused session lost after the message content went out: the server may
    have taken it, so the pool does not retry on a fresh session (the dispatcher's
    retry decides); a loss before any content is retried, as the stale case above."""
    server = await smtp_server()
    account = account_for(server)
    await pool.send(account, ENVELOPE, data("m1"))
    server.script.drop_in_data = True
    with pytest.raises(SmtpUnavailable):
        await pool.send(account, ENVELOPE, data("m2"))
    assert server.data_commands == 2
    assert server.connections == 1
    await pool.close()
