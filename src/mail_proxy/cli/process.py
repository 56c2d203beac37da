"""Starting and stopping a local instance: ``mail-proxy serve`` with its folder.

``start`` becomes (execs) and ``start --background`` spawns the command a
container runs (``python -m mail_proxy serve``) with the instance's folder,
database and port, so an instance behaves exactly like a served proxy. ``serve``
writes and removes the pid file itself (``--pid-file``): the file exists exactly
while it serves, and one left behind by a killed process is recognised as stale.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import NoReturn

import httpx

from mail_proxy.cli.home import DEFAULT_PORT, Instance, InstanceError, pid_alive

# The admin token of the instance is its admin.token file; a GMP_API_TOKEN or
# GMP_DB_PATH of the caller's shell must not replace the instance's own.
_NOT_INHERITED = ("GMP_API_TOKEN", "GMP_DB_PATH", "GMP_DATABASE_URL", "GMP_INSTANCE_DIR")


def port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def first_free_port(host: str, start: int = DEFAULT_PORT, tries: int = 100) -> int:
    """The first port from ``start`` on that nothing listens on (the reference's
    behaviour: a second instance gets 8001 instead of failing on 8000)."""
    for port in range(start, start + tries):
        if port_free(host, port):
            return port
    raise InstanceError(f"no free port between {start} and {start + tries - 1}: use --port")


def serve_command(instance: Instance, host: str, port: int, dev_sink: bool) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "mail_proxy",
        "serve",
        "--host",
        host,
        "--port",
        str(port),
        "--db",
        str(instance.database),
        "--instance-dir",
        str(instance.path),
        "--pid-file",
        str(instance.pid_file),
    ]
    return [*command, "--dev-sink"] if dev_sink else command


def child_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in _NOT_INHERITED}


def run_foreground(command: list[str]) -> NoReturn:
    """Become ``serve`` (exec): signals from the terminal or a process manager reach
    the proxy itself, and the pid file names the process that was started."""
    os.execve(command[0], command, child_env())


def spawn_background(instance: Instance, command: list[str]) -> subprocess.Popen[bytes]:
    """Detached (own session, output to server.log) so closing the terminal keeps it."""
    fd = os.open(instance.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        return subprocess.Popen(
            command,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            start_new_session=True,
        )
    finally:
        os.close(fd)


def wait_healthy(instance: Instance, child: subprocess.Popen[bytes], timeout: float) -> None:
    """Until ``/health`` answers; a child that exits first is reported with its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise InstanceError(
                f"instance {instance.name!r} exited at start (code {child.returncode}); "
                f"see {instance.log}: {last_line(instance)}"
            )
        try:
            if httpx.get(f"{instance.url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise InstanceError(
        f"instance {instance.name!r} did not answer in {timeout:.0f}s; see {instance.log}"
    )


def last_line(instance: Instance) -> str:
    try:
        lines = instance.log.read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return "(no log)"
    return lines[-1][:300] if lines else "(empty log)"


def stop_process(pid: int, force: bool, timeout: float) -> bool:
    """SIGTERM (graceful: serve finishes what it sends) or SIGKILL; True once gone."""
    try:
        os.kill(pid, signal.SIGKILL if force else signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    return False
