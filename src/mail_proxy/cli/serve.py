"""``mail-proxy serve``: the API and the background loops in one uvicorn process.

Settings come from ``GMP_*`` variables; the few options given on the command line
override them. Without ``GMP_API_TOKEN`` the admin token is kept in a file of the
instance folder, created on first start, so a restart keeps the same token. This
module loads the whole server; the command line imports it only to serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import uvicorn

from mail_proxy import __version__
from mail_proxy.api.app import create_app
from mail_proxy.cli.home import ADMIN_TOKEN_FILE, write_private
from mail_proxy.errors import MailProxyError
from mail_proxy.logs import configure
from mail_proxy.settings import Settings
from mail_proxy.storage import open_store


@dataclass(frozen=True)
class AdminToken:
    """The admin token and where it is kept (None: from GMP_API_TOKEN)."""

    value: str
    path: Path | None = None
    created: bool = False


def admin_token(settings: Settings) -> AdminToken:
    """The configured admin token, or the instance's stored one (created if absent)."""
    if settings.api_token:
        return AdminToken(settings.api_token)
    path = settings.data_dir / ADMIN_TOKEN_FILE
    if path.exists():
        return AdminToken(path.read_text().strip(), path)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    # O_EXCL + 0600 from the first byte: the token is never readable by others.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return AdminToken(token, path, created=True)


def run(overrides: dict[str, Any], pid_file: Path | None) -> None:
    """Serve with the settings of the environment and ``overrides`` until stopped."""
    settings = Settings(**overrides)
    token = admin_token(settings)
    update: dict[str, Any] = {"api_token": token.value}
    if settings.dev_sink:
        # The sink listens on loopback: tenants' accounts must be allowed to reach it.
        update["allow_private_targets"] = True
    settings = settings.model_copy(update=update)
    configure(settings.log_level, settings.log_format)
    _check_database(settings)
    _print_banner(settings, token)
    _exit_cleanly_after_shutdown()
    with _pid_written(pid_file):
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) + 5,
        )


@contextlib.contextmanager
def _pid_written(path: Path | None) -> Iterator[None]:
    """The pid file exists while this process serves: `mail-proxy stop` reads it, and
    one left behind by a killed process names a process that is gone (stale)."""
    if path is None:
        yield
        return
    write_private(path, f"{os.getpid()}\n")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _check_database(settings: Settings) -> None:
    """Open the database once before serving, so that what stops start-up (a wrong
    secret key, an unreachable server, a bad URL) is one readable line and exit
    status 1, not a traceback from inside the ASGI lifespan. It also applies the
    migrations before any request can arrive."""

    async def probe() -> None:
        store = await open_store(settings)
        await store.close()

    try:
        asyncio.run(probe())
    except MailProxyError as exc:
        raise click.ClickException(exc.message) from exc


def _exit_cleanly_after_shutdown() -> None:
    """Exit 0 once uvicorn has shut down gracefully on SIGTERM or Ctrl-C.

    uvicorn handles the signal itself, then restores these handlers and raises the
    signal again; without them the process would die of the signal after a clean
    shutdown and report failure to its supervisor.
    """
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: sys.exit(0))


def _print_banner(settings: Settings, token: AdminToken) -> None:
    """The address, and the admin token only on the start that created it.

    Later starts name the file instead: a token printed at every start ends up in
    every log collector that captures the process's output.
    """
    base = f"http://{settings.host}:{settings.port}"
    lines = [f"mail-proxy {__version__} on {base}  (database: {settings.db_path})"]
    if token.created:
        lines.append(f"admin token (kept in {token.path}): {token.value}")
    elif token.path is not None:
        lines.append(f"admin token: in {token.path}")
    if settings.dev_sink:
        shown = token.value if token.created else f"$(cat {token.path})"
        if token.path is None:
            shown = "$GMP_API_TOKEN"
        lines += _dev_sink_hints(base, shown, settings.dev_sink_port)
    click.echo("\n".join(lines), err=True)


def _dev_sink_hints(base: str, token: str, sink_port: int) -> list[str]:
    header = f'-H "X-API-Token: {token}"'
    return [
        f"dev SMTP sink on 127.0.0.1:{sink_port} with tenant 'demo' and account 'demo-smtp'."
        " Send a mail and see it arrive:",
        f"  curl -s -X POST {base}/commands/add-messages {header} "
        "-H 'Content-Type: application/json' "
        """-d '{"messages": [{"id": "hello-1", "tenant_id": "demo", """
        """"to": "you@example.com", "subject": "Hello", "body": "It works."}]}'""",
        f"  curl -s {base}/dev/messages {header}",
        f"  curl -s '{base}/messages?tenant_id=demo' {header}",
    ]
