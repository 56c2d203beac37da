"""The SMTP boundary hardened: target policy at connect time, no clear-text AUTH by
default, server text made storable, banners kept out of reasons, SMTPUTF8."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Callable

import pytest
import trustme
from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as AioEnvelope

from mail_proxy.domain.mime import Envelope, build_message
from mail_proxy.domain.models import Account
from mail_proxy.domain.outgoing import from_payload
from mail_proxy.domain.smtp_replies import Permanent, Stage
from mail_proxy.domain.text import is_storable
from mail_proxy.settings import Settings
from mail_proxy.smtp.base import MailerError, SmtpNotPossible, SmtpRejected, classify
from mail_proxy.smtp.pool import SmtpPool

from .conftest import PASSWORD, USER, Script, ServerFactory, account_for, payload

ENVELOPE = Envelope("sender@example.org", ("to@example.com",))
CLEAR_TEXT_AUTH = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
SettingsFactory = Callable[..., Settings]


def data(message_id: str = "m1", **fields: object) -> bytes:
    message = from_payload(payload(message_id, **fields))
    return build_message(message, now=time.time(), message_key=message_id)


# -- target policy ---------------------------------------------------------------


async def test_untrusted_account_at_a_loopback_address_is_refused(
    smtp_server: ServerFactory, settings_factory: SettingsFactory
) -> None:
    """Default policy: a tenant's account may not point at 127.0.0.1; the message
    fails for good with the policy's reason and no connection is made."""
    server = await smtp_server()
    pool = SmtpPool(settings_factory(allow_private_targets=False))
    with pytest.raises(SmtpNotPossible) as caught:
        await pool.send(account_for(server), ENVELOPE, data())
    verdict = classify(caught.value)
    assert isinstance(verdict, Permanent)
    assert verdict.reason.startswith("target refused: ") and "127.0.0.1" in verdict.reason
    assert server.connections == 0
    await pool.close()


@pytest.mark.parametrize(("allow", "trusted"), [(False, True), (True, False)])
async def test_trusted_account_or_allowed_private_targets_connect(
    smtp_server: ServerFactory, settings_factory: SettingsFactory, allow: bool, trusted: bool
) -> None:
    """An account saved by the admin (trusted), or GMP_ALLOW_PRIVATE_TARGETS, may."""
    server = await smtp_server()
    pool = SmtpPool(settings_factory(allow_private_targets=allow))
    await pool.send(account_for(server, target_trusted=trusted), ENVELOPE, data())
    assert len(server.received) == 1
    await pool.close()


@pytest.fixture(scope="module")
def localhost_only() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server certificate for the name ``localhost`` only, and a client trusting it."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


@pytest.mark.parametrize(("host", "verified"), [("localhost", True), ("127.0.0.1", False)])
async def test_tls_verifies_the_account_host_not_the_resolved_address(
    smtp_server: ServerFactory,
    settings_factory: SettingsFactory,
    localhost_only: tuple[ssl.SSLContext, ssl.SSLContext],
    host: str,
    verified: bool,
) -> None:
    """The socket goes to the checked address; the certificate is still checked
    against the name the account gave."""
    server_tls, client_tls = localhost_only
    server = await smtp_server(implicit_tls=server_tls)
    pool = SmtpPool(settings_factory(), ssl_context=client_tls, implicit_tls_ports={server.port})
    account = account_for(server, host=host, use_tls=True)
    if verified:
        await pool.send(account, ENVELOPE, data())
        assert len(server.received) == 1
    else:
        with pytest.raises(MailerError, match="tls"):
            await pool.send(account, ENVELOPE, data())
        assert server.received == []
    await pool.close()


# -- credentials -------------------------------------------------------------------


@CLEAR_TEXT_AUTH
@pytest.mark.parametrize("use_tls", [None, True])
async def test_auth_is_not_sent_over_clear_text_by_default(
    smtp_server: ServerFactory, settings_factory: SettingsFactory, use_tls: bool | None
) -> None:
    """A server without STARTTLS that asks for AUTH: the password is not sent unless
    the account says use_tls false; the message fails with a clear reason."""
    server = await smtp_server(auth=True)
    pool = SmtpPool(settings_factory(smtp_timeout=2.0))
    account = account_for(server, use_tls=use_tls, user=USER, password=PASSWORD)
    with pytest.raises(MailerError) as caught:
        await pool.send(account, ENVELOPE, data())
    if use_tls is None:
        assert isinstance(caught.value, SmtpNotPossible)
        assert "not encrypted" in caught.value.reason and "use_tls" in caught.value.reason
    assert server.received == []
    assert not any(
        session.session and session.session.authenticated for session in server._sessions
    )
    await pool.close()


@CLEAR_TEXT_AUTH
async def test_clear_text_auth_when_the_account_asks_for_it(
    smtp_server: ServerFactory, settings_factory: SettingsFactory
) -> None:
    """use_tls false, explicitly: AUTH in clear text, and the message goes."""
    server = await smtp_server(auth=True)
    pool = SmtpPool(settings_factory())
    account = account_for(server, use_tls=False, user=USER, password=PASSWORD)
    await pool.send(account, ENVELOPE, data())
    assert len(server.received) == 1
    await pool.close()


# -- server text -----------------------------------------------------------------------


async def test_reply_with_invalid_bytes_becomes_a_storable_reason(
    smtp_server: ServerFactory, settings_factory: SettingsFactory
) -> None:
    """Raw 0xFF 0xFE in a DATA reply: the reason is valid text, class kept (4yz)."""
    server = await smtp_server(Script(data_reply=b"451 4.7.1 try later \xff\xfe\x00"))
    pool = SmtpPool(settings_factory())
    with pytest.raises(SmtpRejected) as caught:
        await pool.send(account_for(server), ENVELOPE, data())
    reason = classify(caught.value).reason
    assert is_storable(reason)
    assert reason == "451 4.7.1 try later \ufffd\ufffd"
    await pool.close()


@pytest.fixture
async def rude_greeting() -> AsyncIterator[int]:
    """A server whose greeting refuses with a banner naming its internals."""

    async def greet(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"554 5.7.1 mx7.corp.internal ESMTP Exim 4.96 \xff no service\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_greeting_banner_is_not_echoed(
    rude_greeting: int, settings_factory: SettingsFactory
) -> None:
    """Connect stage: the reason keeps code and enhanced status, not the banner."""
    pool = SmtpPool(settings_factory())
    account = Account(id="acc", tenant_id="t1", host="127.0.0.1", port=rude_greeting)
    with pytest.raises(SmtpRejected) as caught:
        await pool.send(account, ENVELOPE, data())
    assert caught.value.stage is Stage.CONNECT
    verdict = classify(caught.value)
    assert isinstance(verdict, Permanent) and verdict.reason == "554 5.7.1"
    await pool.close()


# -- SMTPUTF8 ------------------------------------------------------------------------------

UTF8_ENVELOPE = Envelope("sender@example.org", ("jörg@example.com",))


async def test_non_ascii_local_part_goes_with_smtputf8(
    smtp_server: ServerFactory, settings_factory: SettingsFactory
) -> None:
    """RFC 6531: MAIL FROM carries SMTPUTF8 and the address arrives as UTF-8."""
    server = await smtp_server(smtputf8=True)
    pool = SmtpPool(settings_factory())
    message = data(to=["Jörg <jörg@example.com>"])
    await pool.send(account_for(server), UTF8_ENVELOPE, message)
    received = server.received[0]
    assert received.rcpt_tos == ["jörg@example.com"]
    assert "SMTPUTF8" in [option.upper() for option in received.mail_options]
    await pool.close()


async def test_non_ascii_local_part_fails_clearly_without_smtputf8(
    smtp_server: ServerFactory, settings_factory: SettingsFactory
) -> None:
    """A server without SMTPUTF8 cannot take the address: a permanent, clear failure
    before MAIL FROM."""
    server = await smtp_server()
    pool = SmtpPool(settings_factory())
    with pytest.raises(SmtpNotPossible) as caught:
        await pool.send(account_for(server), UTF8_ENVELOPE, data(to=["jörg@example.com"]))
    assert "SMTPUTF8" in caught.value.reason
    assert isinstance(classify(caught.value), Permanent)
    assert server.received == [] and server.data_commands == 0
    await pool.close()


class _HeloOnly(SMTP):
    """An old server: EHLO is not implemented (RFC 5321 §3.2 allows the client HELO)."""

    async def smtp_EHLO(self, hostname: str) -> None:
        await self.push("502 5.5.1 EHLO not implemented")


class _Keep:
    def __init__(self) -> None:
        self.raw: list[bytes] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: AioEnvelope) -> str:
        self.raw.append(envelope.original_content or b"")
        return "250 OK"


async def test_server_without_ehlo_gets_helo(settings_factory: SettingsFactory) -> None:
    """Extensions are asked for before MAIL; a server refusing EHLO still gets the
    message after HELO."""
    keep = _Keep()
    server = await asyncio.get_running_loop().create_server(lambda: _HeloOnly(keep), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = SmtpPool(settings_factory())
    try:
        account = Account(id="acc", tenant_id="t1", host="127.0.0.1", port=port, use_tls=False)
        await pool.send(account, ENVELOPE, data())
        assert len(keep.raw) == 1
    finally:
        await pool.close()
        server.close()
        await server.wait_closed()
