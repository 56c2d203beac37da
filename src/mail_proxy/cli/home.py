"""Instances on this machine: one folder each under ``GMP_HOME`` (``~/.mail-proxy``).

A folder holds ``config.json`` (host, port, or the URL of a remote proxy), the
SQLite database, ``secret.key`` (made by the proxy), ``admin.token``, ``pid`` and
``server.log``. The folder is the whole instance: deleting it deletes the
instance, copying it moves it. Everything is created private to the user
(folders 0700, files 0600) because the token and the key open the proxy and its
stored SMTP passwords.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

HOME_ENV = "GMP_HOME"
ADMIN_TOKEN_FILE = "admin.token"
CONFIG_FILE = "config.json"
CONTEXT_FILE = "context.json"
DATABASE_FILE = "mail_proxy.db"
PID_FILE = "pid"
LOG_FILE = "server.log"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000

# A name is also a folder and a command-line word: no separators, no leading dot or dash.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class InstanceError(Exception):
    """Something about an instance folder that the user must act on (one sentence)."""


class State(Enum):
    RUNNING = "running"
    STOPPED = "stopped"
    STALE = "stopped (stale pid file)"
    REMOTE = "remote"


def home() -> Path:
    """The folder of all instances: ``GMP_HOME`` or ``~/.mail-proxy``."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".mail-proxy").expanduser()


def private_dir(path: Path) -> Path:
    """``path`` and any missing parent up to it, each 0700."""
    if not path.is_dir():
        private_dir(path.parent)
        path.mkdir(mode=0o700, exist_ok=True)
    return path


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, readable by the owner only from the first byte."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    tmp.replace(path)


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InstanceError(
            f"{name!r} is not a valid name: use letters, digits, '.', '_' or '-' (up to 64)"
        )
    return name


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (signal 0 checks without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Instance:
    """One instance folder; reading it never creates anything."""

    name: str
    path: Path

    @classmethod
    def named(cls, name: str) -> Instance:
        return cls(check_name(name), home() / name)

    @property
    def exists(self) -> bool:
        return (self.path / CONFIG_FILE).is_file()

    def config(self) -> dict[str, Any]:
        if not self.exists:
            raise InstanceError(
                f"no instance named {self.name!r} in {home()} "
                f"(create it with: mail-proxy start {self.name})"
            )
        loaded: dict[str, Any] = json.loads((self.path / CONFIG_FILE).read_text())
        return loaded

    def save_config(self, config: dict[str, Any]) -> None:
        private_dir(self.path)
        write_private(self.path / CONFIG_FILE, json.dumps(config, indent=2) + "\n")

    @property
    def remote_url(self) -> str | None:
        url = self.config().get("url")
        return str(url) if url else None

    @property
    def url(self) -> str:
        """Where the proxy answers: the remote URL, or the local host and port."""
        if self.remote_url:
            return self.remote_url.rstrip("/")
        config = self.config()
        host = config["host"]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{shown}:{config['port']}"

    @property
    def database(self) -> Path:
        return self.path / DATABASE_FILE

    @property
    def log(self) -> Path:
        return self.path / LOG_FILE

    @property
    def pid_file(self) -> Path:
        return self.path / PID_FILE

    @property
    def token_file(self) -> Path:
        return self.path / ADMIN_TOKEN_FILE

    def token(self) -> str:
        self.config()
        if not self.token_file.is_file():
            raise InstanceError(
                f"instance {self.name!r} has no token yet (start it once: "
                f"mail-proxy start {self.name})"
            )
        return self.token_file.read_text().strip()

    def save_token(self, token: str) -> None:
        private_dir(self.path)
        write_private(self.token_file, token + "\n")

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def state(self) -> State:
        if self.remote_url:
            return State.REMOTE
        pid = self.pid()
        if pid is None:
            return State.STOPPED
        return State.RUNNING if pid_alive(pid) else State.STALE

    def delete(self) -> None:
        shutil.rmtree(self.path)


def all_instances() -> list[Instance]:
    root = home()
    if not root.is_dir():
        return []
    return [
        Instance(path.name, path)
        for path in sorted(root.iterdir())
        if (path / CONFIG_FILE).is_file() and _NAME.match(path.name)
    ]


@dataclass(frozen=True)
class Context:
    """The instance and tenant that ``mail-proxy use`` chose, so commands may omit them."""

    instance: str | None = None
    tenant: str | None = None

    @classmethod
    def load(cls) -> Context:
        path = home() / CONTEXT_FILE
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text())
        return cls(data.get("instance"), data.get("tenant"))

    def save(self) -> None:
        private_dir(home())
        body = {"instance": self.instance, "tenant": self.tenant}
        write_private(home() / CONTEXT_FILE, json.dumps(body) + "\n")
