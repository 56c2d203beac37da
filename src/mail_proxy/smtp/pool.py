"""A pool of reused SMTP sessions per account.

Opening an SMTP session costs several round trips (greeting, EHLO, STARTTLS,
EHLO again, AUTH); reusing it for many transactions (RFC 5321 §3.3 allows any
number per session) is most of the speed of bulk delivery. aiosmtplib opens a
session; ``SmtpSession`` then carries its transactions (pipelined when the server
offers PIPELINING, RFC 2920). Rules:

- a connection serves one transaction at a time: it is taken out of the idle list
  for a send and put back afterwards;
- it lives at most the account's ``ttl`` seconds, then it is closed with QUIT;
- a connection that broke is discarded; a pooled connection found dead when the
  next transaction starts (the server closed it while idle: 421 or a reset before
  MAIL FROM was accepted) is replaced and the send tried once more, since nothing
  was delivered yet (never once the message content was written);
- after a refused MAIL/RCPT the envelope is cleared with RSET (RFC 5321 §4.1.1.5)
  so the session can carry the next message;
- changed account settings (host, credentials, TLS) retire the old connections.

TLS: port 465 (or any port in ``implicit_tls_ports``) speaks TLS from the first
byte (RFC 8314 §3.3); ``use_tls`` true elsewhere requires STARTTLS (RFC 3207);
``use_tls`` unset upgrades when the server offers STARTTLS; ``use_tls`` false
stays in clear text. Certificates are verified against the system trust store
unless an ``ssl_context`` is given. The timeout of connect and of each command is
the account's ``timeout`` capped by ``GMP_SMTP_TIMEOUT``.

Where it connects: the account's host is resolved when a connection opens and
every address is judged by the operator's target policy (``GMP_ALLOW_PRIVATE_TARGETS``;
an account saved by the admin is trusted); the socket goes to an address that was
checked, while TLS still verifies the certificate against the account's host name.
A refused target fails the message with the policy's reason.

Credentials never travel in clear text by default: AUTH over a connection that is
not encrypted (no STARTTLS offered) is refused unless the account says
``use_tls: false`` explicitly (RFC 8314 §3 prefers TLS for submission).

Server text is outside input: every reply and error text passes through
``storable()`` before it can become a reason, and a greeting or EHLO refusal is
reported by its code (and enhanced status) only, not by its banner.

A message whose envelope needs SMTPUTF8 (RFC 6531) is sent with that MAIL
parameter when the server offers it, and fails with a clear reason when not.

The pool does not limit how many connections an account opens: the dispatcher
bounds concurrent sends per account, and the pool never holds more connections
than there were concurrent sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import cast

import aiosmtplib
import structlog

from mail_proxy.domain.mime import Envelope
from mail_proxy.domain.models import Account
from mail_proxy.domain.smtp_replies import Reply, Stage, without_banner
from mail_proxy.domain.text import storable
from mail_proxy.errors import TargetRefused
from mail_proxy.network import resolve_permitted, target_policy
from mail_proxy.settings import Settings
from mail_proxy.smtp.base import (
    Mailer,
    MailerError,
    SendResult,
    SmtpNotPossible,
    SmtpRejected,
    SmtpUnavailable,
)
from mail_proxy.smtp.session import SmtpSession

log = structlog.get_logger(__name__)

_QUIT_TIMEOUT = 2.0
_CLOSING = 421  # RFC 5321 §3.8: the server is closing the transmission channel
_CREDENTIALS_INVALID = 535  # RFC 4954 §6
_DETAIL_LIMIT = 300


@dataclass(eq=False)
class _Connection:
    session: SmtpSession
    config: tuple[object, ...]
    created: float
    reused: bool = False


@dataclass
class _AccountPool:
    config: tuple[object, ...]
    idle: list[_Connection] = field(default_factory=list)


def _config_of(account: Account) -> tuple[object, ...]:
    """What a connection depends on: a change means new connections."""
    return (
        account.host,
        account.port,
        account.user,
        account.password,
        account.use_tls,
        account.timeout,
        account.target_trusted,
    )


class SmtpPool(Mailer):
    """``Mailer`` over per-account pools of persistent aiosmtplib sessions."""

    def __init__(
        self,
        settings: Settings,
        *,
        ssl_context: ssl.SSLContext | None = None,
        implicit_tls_ports: Collection[int] = (465,),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._ssl_context = ssl_context
        self._tls_loading: asyncio.Future[ssl.SSLContext] | None = None
        self._implicit_tls_ports = frozenset(implicit_tls_ports)
        self._policy = target_policy(settings)
        self._clock = clock
        self._pools: dict[tuple[str, str], _AccountPool] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._local_hostname: str | None = None
        self._closed = False

    # -- the port ----------------------------------------------------------------

    async def send(self, account: Account, envelope: Envelope, message: bytes) -> SendResult:
        if self._closed:
            raise SmtpUnavailable("closed", "the mailer is shut down")
        pool = self._pool_for(account)
        connection = await self._acquire(pool, account)
        try:
            result = await self._transaction(connection, envelope, message)
        except MailerError as error:
            # A reused session that died while idle delivered nothing: try a fresh one.
            # Once the content went out the server may have taken it: no second copy.
            if not (connection.reused and _stale(error)) or connection.session.content_written:
                raise
            log.debug("smtp_stale_connection_replaced", account_id=account.id)
            connection = await self._open(account, pool.config)
            result = await self._transaction(connection, envelope, message)
        finally:
            self._release(pool, connection, account)
        return result

    async def close(self) -> None:
        self._closed = True
        for pool in self._pools.values():
            for connection in pool.idle:
                self._retire(connection)
            pool.idle.clear()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    async def check(self, account: Account) -> None:
        """Connect, secure and log in as a send would, then say QUIT: raises the
        ``MailerError`` a send would have met (the dashboard's connection test)."""
        connection = await self._open(account, _config_of(account))
        self._retire(connection)

    def idle_connections(self, account: Account) -> int:
        """How many sessions of ``account`` wait for reuse (for tests and stats)."""
        pool = self._pools.get((account.tenant_id, account.id))
        return len(pool.idle) if pool else 0

    # -- connections -----------------------------------------------------------------

    def _pool_for(self, account: Account) -> _AccountPool:
        key, config = (account.tenant_id, account.id), _config_of(account)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _AccountPool(config)
        elif pool.config != config:
            for connection in pool.idle:
                self._retire(connection)
            pool.idle.clear()
            pool.config = config
        return pool

    async def _acquire(self, pool: _AccountPool, account: Account) -> _Connection:
        while pool.idle:
            connection = pool.idle.pop()
            if self._usable(connection, account):
                connection.reused = True
                return connection
            self._retire(connection)
        return await self._open(account, pool.config)

    def _usable(self, connection: _Connection, account: Account) -> bool:
        age = self._clock() - connection.created
        return connection.session.is_connected and age < account.ttl

    def _release(self, pool: _AccountPool, connection: _Connection, account: Account) -> None:
        keep = (
            not self._closed
            and connection.config == pool.config
            and self._usable(connection, account)
        )
        if keep:
            pool.idle.append(connection)
        else:
            self._retire(connection)

    def _retire(self, connection: _Connection) -> None:
        """Say QUIT (RFC 5321 §4.1.1.10) in the background, or just drop a dead link."""
        if not connection.session.is_connected:
            connection.session.close()
            return
        task = asyncio.create_task(_quit(connection.session))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _open(self, account: Account, config: tuple[object, ...]) -> _Connection:
        implicit = account.port in self._implicit_tls_ports and account.use_tls is not False
        timeout = min(account.timeout, self._settings.smtp_timeout)
        local_hostname = await self._hostname()
        tls_context = await self._tls_context(account)
        sock = await self._socket(account, timeout)
        try:
            client = aiosmtplib.SMTP(
                hostname=account.host.strip("[]"),  # what TLS verifies, not where we connect
                sock=sock,
                local_hostname=local_hostname,
                timeout=timeout,
                use_tls=implicit,
                start_tls=None if implicit else account.use_tls,
                tls_context=tls_context,
            )
        except BaseException:
            sock.close()
            raise
        try:
            await client.connect()
            if account.user:
                _refuse_clear_text_auth(client, account)
                await _authenticate(client, account.user, account.password or "")
            await _greet(client)  # the extensions (SIZE, PIPELINING…) before MAIL
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            client.close()
            raise _translate(exc, Stage.CONNECT) from exc
        except BaseException:
            client.close()
            raise
        log.debug("smtp_connected", account_id=account.id, host=account.host, port=account.port)
        transport = cast(asyncio.Transport, client.transport)
        session = SmtpSession(transport, dict(client.esmtp_extensions), timeout)
        return _Connection(session, config, self._clock())

    async def _socket(self, account: Account, seconds: float) -> socket.socket:
        """A TCP connection to an address of the account's host that the target
        policy permits (resolved now, so what was checked is what is used)."""
        try:
            addresses = await resolve_permitted(
                account.host, account.port, self._policy, trusted=account.target_trusted
            )
        except TargetRefused as refused:
            reason = storable(str(refused), _DETAIL_LIMIT)
            if isinstance(refused.__cause__, OSError):  # the name did not resolve now
                raise SmtpUnavailable("dns", reason) from refused
            raise SmtpNotPossible(f"target refused: {reason}") from refused
        failure: OSError | None = None
        for address in addresses:
            try:
                return await _connect(address.strip("[]"), account.port, seconds)
            except OSError as exc:
                failure = exc
        raise _translate(failure or OSError("no address"), Stage.CONNECT)

    async def _tls_context(self, account: Account) -> ssl.SSLContext | None:
        """The client TLS context, or None for an account that never uses TLS.

        Loading the system's CA store takes some 40 ms of CPU: done on the loop it
        delayed every message of the first connections after a start, TLS or not. So
        it is loaded only when TLS may be used, once, in a thread, and connections
        opened meanwhile wait for that one load."""
        if account.use_tls is False:
            return None
        if self._ssl_context is None:
            if self._tls_loading is None:
                self._tls_loading = asyncio.ensure_future(
                    asyncio.to_thread(ssl.create_default_context)
                )
            self._ssl_context = await asyncio.shield(self._tls_loading)
        return self._ssl_context

    async def _hostname(self) -> str:
        """EHLO name (RFC 5321 §4.1.1.1): this host's FQDN, looked up once."""
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        return self._local_hostname

    # -- one transaction ------------------------------------------------------------

    async def _transaction(
        self, connection: _Connection, envelope: Envelope, message: bytes
    ) -> SendResult:
        session = connection.session
        try:
            return await session.transaction(envelope, message)
        except SmtpRejected as rejected:
            await _reset_after(session, rejected)
            raise
        except SmtpUnavailable:
            session.close()
            raise
        except asyncio.CancelledError:
            session.close()  # mid-transaction: the session state is unknown
            raise


async def _greet(client: aiosmtplib.SMTP) -> None:
    """EHLO if the session has not said it, so the extensions (SIZE, SMTPUTF8) are
    known before MAIL; HELO for a server that refuses EHLO (RFC 5321 §3.2)."""
    if not client.is_ehlo_or_helo_needed:
        return
    try:
        await client.ehlo()
    except aiosmtplib.SMTPHeloError:
        if not client.is_connected:
            raise
        await client.helo()


def _reply(code: int, text: str) -> Reply:
    """A server reply made storable: its text may hold any bytes, any length."""
    return Reply(code, storable(text, _DETAIL_LIMIT))


async def _connect(address: str, port: int, seconds: float) -> socket.socket:
    """A connected non-blocking TCP socket to ``address`` (a checked IP literal)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        async with asyncio.timeout(seconds):
            await asyncio.get_running_loop().sock_connect(sock, (address, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _refuse_clear_text_auth(client: aiosmtplib.SMTP, account: Account) -> None:
    """No credentials over an unencrypted link unless the account asked for it."""
    if account.use_tls is False or client.get_transport_info("sslcontext") is not None:
        return
    raise SmtpNotPossible(
        f"AUTH refused: the connection to {account.host} is not encrypted (the server "
        "offers no STARTTLS); set use_tls to false on the account to allow sending "
        "credentials in clear text"
    )


async def _reset_after(session: SmtpSession, rejected: SmtpRejected) -> None:
    """Clear a refused envelope so the session can be reused, or drop the session."""
    if rejected.reply.code == _CLOSING:
        session.close()
        return
    if rejected.stage is Stage.DATA:
        return
    if not await session.reset():
        session.close()


async def _authenticate(client: aiosmtplib.SMTP, user: str, password: str) -> None:
    """AUTH (RFC 4954) with the server's mechanisms in aiosmtplib's order of
    preference; 535 (credentials invalid) ends it, another mechanism won't help."""
    await _greet(client)  # after STARTTLS the server's extensions must be asked again
    if not client.supports_extension("auth"):
        raise aiosmtplib.SMTPException("the server offers no AUTH (is TLS required?)")
    failure: aiosmtplib.SMTPAuthenticationError | None = None
    for mechanism in client.supported_auth_methods:
        method = getattr(client, f"auth_{mechanism.replace('-', '')}")
        try:
            await method(user, password)
            return
        except aiosmtplib.SMTPAuthenticationError as exc:
            if exc.code == _CREDENTIALS_INVALID:
                raise
            failure = exc
    raise failure or aiosmtplib.SMTPException("no AUTH mechanism in common with the server")


def _stale(error: MailerError) -> bool:
    """A reused session that died while idle: nothing was sent, try a fresh one."""
    if isinstance(error, SmtpUnavailable):
        return error.kind == "disconnected"
    return (
        isinstance(error, SmtpRejected)
        and error.reply.code == _CLOSING
        and (error.stage is Stage.MAIL)
    )


def _translate(exc: BaseException, stage: Stage) -> MailerError:
    """aiosmtplib's and the socket's exceptions in the port's terms."""
    detail = storable(str(exc), _DETAIL_LIMIT)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return SmtpRejected(_reply(exc.code, exc.message), Stage.AUTH)
    if isinstance(exc, aiosmtplib.SMTPHeloError):
        return SmtpRejected(without_banner(exc.code, exc.message), Stage.HELO)
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        return SmtpRejected(without_banner(exc.code, exc.message), Stage.CONNECT)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return SmtpRejected(_reply(exc.code, exc.message), stage)
    if isinstance(exc, ssl.SSLError | ssl.CertificateError) or isinstance(
        exc.__cause__, ssl.SSLError
    ):
        return SmtpUnavailable("tls", detail)
    if isinstance(exc, TimeoutError):
        return SmtpUnavailable("timeout", detail or "no answer in time")
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return SmtpUnavailable("disconnected", detail)
    if isinstance(exc, aiosmtplib.SMTPConnectError | OSError):
        return SmtpUnavailable("connection", detail)
    return SmtpUnavailable("smtp error", detail)


async def _quit(session: SmtpSession) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(session.quit(), _QUIT_TIMEOUT)
    session.close()
