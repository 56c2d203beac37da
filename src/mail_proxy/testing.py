"""Helpers for driving a real proxy from tests, benchmarks and the example client.

``ServedProxy`` runs ``mail-proxy serve`` in a subprocess exactly as an operator
would; ``RecordingSink`` is an aiosmtpd server in a thread of its own that notes
when each message arrived; ``ReportEndpoint`` is a tenant's application receiving
client sync calls; ``FileServer`` serves attachments (files, errors, redirects,
slow answers) to be fetched by URL or from a tenant's endpoint; ``database_rows``
reads a proxy's database behind its back; ``ManualClock`` is a ``Clock`` that
moves only when told to, for the loops and workers. Nothing here is used by the server itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import psycopg
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from mail_proxy.domain.addresses import Mailbox
from mail_proxy.domain.outgoing import OutgoingMessage


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Arrival:
    """One message as the sink received it."""

    __slots__ = ("at", "mail_from", "mail_id", "raw", "recipients")

    def __init__(self, at: float, mail_from: str, recipients: list[str], raw: bytes) -> None:
        self.at = at
        self.mail_from = mail_from
        self.recipients = recipients
        self.raw = raw
        header = message_from_bytes(raw, policy=policy.default).get("X-Genro-Mail-ID")
        self.mail_id = str(header) if header is not None else None


class _RecordingHandler:
    def __init__(self, sink: RecordingSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        arrival = Arrival(
            time.time(),
            envelope.mail_from or "",
            list(envelope.rcpt_tos),
            envelope.original_content or b"",
        )
        with self._sink.lock:
            self._sink.arrivals.append(arrival)
        return "250 OK"


class RecordingSink:
    """An accept-all SMTP server on 127.0.0.1 in its own thread."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.arrivals: list[Arrival] = []
        self.lock = threading.Lock()
        self._controller = Controller(
            _RecordingHandler(self),
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="sink.test",
        )

    def __enter__(self) -> RecordingSink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)

    def wait_for(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count() >= n:
                return True
            time.sleep(0.01)
        return self.count() >= n


class ServedProxy:
    """``mail-proxy serve`` in a subprocess, with its own token and port."""

    def __init__(
        self,
        db_path: str | Path,
        *,
        token: str = "admin-test-token",
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.token = token
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._env = {
            **os.environ,
            "GMP_DB_PATH": str(db_path),
            "GMP_API_TOKEN": token,
            "GMP_HOST": "127.0.0.1",
            "GMP_PORT": str(self.port),
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> ServedProxy:
        # The child gets its own copy of the log's descriptor: ours closes once it is spawned.
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(open(self.log_path, "ab")) if self.log_path else None
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mail_proxy", "serve"],
                env=self._env,
                stdout=out or subprocess.DEVNULL,
                stderr=out or subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mail-proxy exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise TimeoutError("mail-proxy did not answer /health in time")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout)
        self.process = None
        return code

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Token": self.token}, **kwargs)

    def __enter__(self) -> ServedProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop(signal.SIGKILL if exc_type is not None else signal.SIGTERM)


class ReportEndpoint:
    """A tenant's application for client sync: a real HTTP server on 127.0.0.1 in a
    thread that acknowledges every call (``{"ok": true, "queued": 0}``, any path) and
    counts what it was told: every entry by message id, the first time each id was
    reported sent, and each call's time and size."""

    ANSWER = b'{"ok": true, "queued": 0}'

    def __init__(self) -> None:
        self.entries: Counter[str] = Counter()
        self.sent_at: dict[str, float] = {}
        self.sent_duplicates = 0
        self.calls: list[tuple[float, int]] = []
        #: (arrival time, entry) of every ``bounce`` and ``pec_*`` entry, in order.
        self.returned: list[tuple[float, dict[str, Any]]] = []
        self.lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                endpoint.record(json.loads(body or b"{}").get("delivery_report") or [])
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(endpoint.ANSWER)))
                self.end_headers()
                self.wfile.write(endpoint.ANSWER)

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def record(self, entries: list[dict[str, Any]]) -> None:
        now = time.time()
        with self.lock:
            self.calls.append((now, len(entries)))
            self.entries.update(entry["id"] for entry in entries)
            for entry in entries:
                if str(entry.get("event", "")).startswith(("bounce", "pec_")):
                    self.returned.append((now, entry))
                if entry.get("sent_ts") is None:
                    continue
                if entry["id"] in self.sent_at:
                    self.sent_duplicates += 1
                else:
                    self.sent_at[entry["id"]] = now

    def reported_sent(self) -> set[str]:
        """Ids the application was told were sent."""
        with self.lock:
            return set(self.sent_at)

    def snapshot(self) -> tuple[Counter[str], list[tuple[float, int]]]:
        """Entries per id and the calls so far, copied under the lock."""
        with self.lock:
            return Counter(self.entries), list(self.calls)

    def start(self) -> ReportEndpoint:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ReportEndpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class FileRoute:
    """How ``FileServer`` answers one path; ``auth`` is the Authorization header a
    request must carry (401 otherwise)."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/octet-stream"
    location: str | None = None
    delay: float = 0.0
    auth: str | None = None


class FileServer:
    """A real HTTP server on 127.0.0.1, in a thread, answering GET and POST by
    ``routes`` (404 for any other path). It counts requests per path (``hits``), the
    most answered at once (``peak``), and keeps each one's method, path, headers
    and body (``requests``)."""

    def __init__(self) -> None:
        self.routes: dict[str, FileRoute] = {}
        self.hits: Counter[str] = Counter()
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        self.peak = 0
        self._busy = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.answer(self, b"")

            def do_POST(self) -> None:
                server.answer(self, self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        with self.lock:
            self.hits[handler.path] += 1
            self.requests.append((handler.command, handler.path, dict(handler.headers), body))
            self._busy += 1
            self.peak = max(self.peak, self._busy)
        try:
            with contextlib.suppress(OSError):  # the client gave up (timeout tests)
                self._reply(handler)
        finally:
            with self.lock:
                self._busy -= 1

    def _reply(self, handler: BaseHTTPRequestHandler) -> None:
        route = self.routes.get(handler.path, FileRoute(status=404))
        time.sleep(route.delay)
        if route.auth is not None and handler.headers.get("Authorization") != route.auth:
            route = FileRoute(status=401)
        handler.send_response(route.status)
        if route.location is not None:
            handler.send_header("Location", route.location)
        handler.send_header("Content-Type", route.content_type)
        handler.send_header("Content-Length", str(len(route.body)))
        handler.end_headers()
        handler.wfile.write(route.body)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def database_rows(db: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows straight from a proxy's database: a SQLite file path, or a PostgreSQL URL
    whose ``?schema=`` names the schema (as the tests' ``pg_dsn`` gives)."""
    if not db.startswith(("postgresql://", "postgres://")):
        with contextlib.closing(sqlite3.connect(db)) as conn:
            return list(conn.execute(sql))
    url, _, schema = db.partition("?schema=")
    options = f"-csearch_path={schema}" if schema else ""
    with psycopg.connect(url, options=options) as conn:
        return list(conn.execute(sql))


class ManualClock:
    """A ``Clock`` that stands still until ``advance``: a test moves time past a
    back-off or a DND instead of sleeping through it. Wall time starts at the real
    time (so rows written with the system clock compare sensibly)."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._elapsed = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now + self._elapsed

    def monotonic(self) -> float:
        return self._elapsed

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self._elapsed + seconds)

    async def sleep_until(self, deadline: float) -> None:
        if deadline <= self._elapsed:
            await asyncio.sleep(0)
            return
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._order), woken))
        await woken

    async def advance(self, seconds: float) -> None:
        """Move time on, wake the sleepers whose time came, and let them run."""
        self._elapsed += seconds
        while self._sleepers and self._sleepers[0][0] <= self._elapsed:
            _, _, woken = heapq.heappop(self._sleepers)
            if not woken.done():
                woken.set_result(None)
        await asyncio.sleep(0)

    @property
    def sleepers(self) -> int:
        """Sleeps waiting for time to move (cancelled ones included until they expire)."""
        return sum(not woken.done() for _, _, woken in self._sleepers)


def outgoing(**fields: Any) -> OutgoingMessage:
    """A small valid message (tenant ``acme``, a@example.com to b@example.com), for
    tests of what is done to a message; ``fields`` override any value."""
    values: dict[str, Any] = {
        "id": "m1",
        "tenant_id": "acme",
        "account_id": "smtp",
        "sender": Mailbox("", "a@example.com"),
        "to": (Mailbox("", "b@example.com"),),
        "subject": "Quarterly",
        "message_id": "<m1@example.com>",
    }
    return OutgoingMessage(**(values | fields))


class Dovecot:
    """A throw-away Dovecot IMAP server on a free loopback port (Debian's
    ``dovecot-imapd``): its own config folder, one passwd-file user, a maildir in
    ``root``, logs in ``root/dovecot.log``. Runs as the current user; as root the
    mail processes use the ``dovecot`` system user the package creates (Dovecot
    refuses mail access as UID 0). With ``cert``/``key`` (PEM paths) it also listens
    for implicit TLS on ``tls_port``."""

    BINARY = "/usr/sbin/dovecot"

    def __init__(
        self,
        root: Path,
        *,
        user: str = "bounces",
        password: str = "secret",
        cert: Path | None = None,
        key: Path | None = None,
    ) -> None:
        self.root = root
        self.user, self.password = user, password
        self.host = "127.0.0.1"
        self.port = free_port()
        self.tls_port = free_port() if cert is not None else None
        self._cert, self._key = cert, key
        self._process: subprocess.Popen[bytes] | None = None
        self._mail: Path | None = None

    @property
    def log(self) -> Path:
        return self.root / "dovecot.log"

    def _config(self) -> Path:
        import pwd

        me = pwd.getpwuid(os.getuid()).pw_name
        internal, login = ("dovecot", "dovenull") if os.getuid() == 0 else (me, me)
        owner = pwd.getpwnam(internal)
        for folder in ("run", "state"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        # The mail processes run as ``owner`` and must reach the maildir: a folder of
        # its own outside ``root`` (whose parents may be closed to other users).
        self._mail = Path(tempfile.mkdtemp(prefix="gmp-dovecot-"))
        self._mail.chmod(0o711)
        os.chown(self._mail, owner.pw_uid, owner.pw_gid)
        users = self.root / "users"
        users.write_text(
            f"{self.user}:{{PLAIN}}{self.password}:{owner.pw_uid}:{owner.pw_gid}"
            f"::{self._mail}/{self.user}::\n"
        )
        tls = "ssl = no\n"
        imaps = "inet_listener imaps {\n    port = 0\n  }"
        if self._cert is not None and self._key is not None:
            tls = f"ssl = yes\nssl_cert = <{self._cert}\nssl_key = <{self._key}\n"
            imaps = (
                f"inet_listener imaps {{\n    address = {self.host}\n"
                f"    port = {self.tls_port}\n    ssl = yes\n  }}"
            )
        config = self.root / "dovecot.conf"
        config.write_text(
            f"""base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.log}
protocols = imap
listen = {self.host}
{tls}disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
first_valid_uid = 0
default_internal_user = {internal}
default_internal_group = {internal}
default_login_user = {login}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
  {imaps}
}}
service anvil {{
  chroot =
}}
service auth {{
  user = {me}
}}
service auth-worker {{
  user = {me}
}}
"""
        )
        return config

    def start(self, timeout: float = 15.0) -> Dovecot:
        config = self._config()
        with open(self.root / "stderr.log", "wb") as stderr:  # the child keeps its copy
            self._process = subprocess.Popen(
                [self.BINARY, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=stderr
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), 1):
                return self
            time.sleep(0.05)
        self.stop()
        problem = (self.root / "stderr.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"dovecot did not start: {problem}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._mail is not None:
            shutil.rmtree(self._mail, ignore_errors=True)
            self._mail = None

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
