"""A real instance driven only through the command line: start, tenant, account,
.eml files sent to a real SMTP server, the queue read back, a remote registration,
the REPL through a pseudo-terminal, stop."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from tests.cli.conftest import Cli, parsed

from mail_proxy.testing import RecordingSink

pytestmark = pytest.mark.slow


def _eml(path: Path, subject: str, to: str = "bob@example.com") -> Path:
    message = EmailMessage()
    message["From"] = "Alice <alice@acme.test>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(f"Body of {subject}")
    path.write_bytes(bytes(message))
    return path


def _setup(cli: Cli, name: str, smtp_port: int) -> None:
    added = cli(name, "tenants", "add", "--id", "acme", "--name", "ACME")
    assert added.returncode == 0, added.stderr
    account = cli(
        name, "acme", "accounts", "add", "--id", "main", "--host", "127.0.0.1",
        "--port", str(smtp_port), "--no-tls", "--default-from", "noreply@acme.test",
    )  # fmt: skip
    assert account.returncode == 0, account.stderr


def _wait_sent(cli: Cli, name: str, count: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + 20
    while True:
        rows = parsed(cli(name, "acme", "messages", "list", "--status", "sent", "--json"))
        if len(rows) >= count or time.monotonic() > deadline:
            return list(rows)
        time.sleep(0.3)


def test_start_tenant_account_send_list_stop(cli: Cli, running: str, tmp_path: Path) -> None:
    with RecordingSink() as sink:
        _setup(cli, running, sink.port)
        assert [t["id"] for t in parsed(cli(running, "tenants", "list", "--json"))] == ["acme"]
        [account] = parsed(cli(running, "acme", "accounts", "list", "--json"))
        assert account["port"] == sink.port and "password" not in account

        sent = cli(running, "acme", "send", str(_eml(tmp_path / "one.eml", "Single")))
        assert sent.returncode == 0, sent.stderr
        folder = tmp_path / "outbox"
        folder.mkdir()
        for i in range(3):
            _eml(folder / f"m{i}.eml", f"Folder {i}")
        _eml(folder / "bad.eml", "Bad", to="not-an-address")
        batch = cli(running, "acme", "send", str(folder))
        assert batch.returncode == 1  # one file refused: said, and the status says it
        assert "rejected bad.eml" in batch.stderr and "queued 3 of 4" in batch.stderr

        rows = _wait_sent(cli, running, 4)
        assert sorted(str(r["subject"]) for r in rows) == [
            "Folder 0", "Folder 1", "Folder 2", "Single",
        ]  # fmt: skip
        assert sink.wait_for(4, timeout=10)
        assert {a.mail_id for a in sink.arrivals} == {str(r["id"]) for r in rows}

        csv_out = cli(running, "acme", "messages", "list", "--csv").stdout.splitlines()
        assert csv_out[0].startswith("pk,id,status") and len(csv_out) == 5
        counts = parsed(cli(running, "stats", "--json"))
        assert counts["messages"]["sent"] == 4 and counts["tenants"] == 1
        info = parsed(cli(running, "acme", "info", "--json"))
        assert info["id"] == "acme" and info["accounts"] == 1
        log = parsed(cli(running, "command-log", "--json"))
        assert {"POST /tenant", "POST /account"} <= {f"{e['method']} {e['path']}" for e in log}
        assert cli(running, "acme", "run-now").returncode == 0
        held = parsed(cli(running, "acme", "suspend", "--batch", "news", "--json"))
        assert held["suspended_batches"] == ["news"] and held["batch_code"] == "news"
        assert parsed(cli(running, "acme", "activate", "--json"))["suspended_batches"] == []

    assert cli("stop", running).returncode == 0
    [row] = parsed(cli("list", "--json"))
    assert row["state"] == "stopped"


def test_a_remote_instance_is_managed_with_the_same_commands(cli: Cli, running: str) -> None:
    url = parsed(cli("status", running, "--json"))["url"]
    token = cli(running, "token").stdout
    registered = cli("remote", "far", "--url", url, "--token-stdin", input=token)
    assert registered.returncode == 0, registered.stderr
    assert cli("far", "tenants", "add", "--id", "beta").returncode == 0
    assert [t["id"] for t in parsed(cli(running, "tenants", "list", "--json"))] == ["beta"]
    assert parsed(cli("status", "far", "--json"))["state"] == "remote"
    refused = cli("stop", "far")
    assert refused.returncode == 1 and "remote proxy" in refused.stderr
    assert cli("use", "far", "beta").returncode == 0
    assert parsed(cli("accounts", "list", "--json")) == []
    assert cli("far", "tenants", "delete", "beta", "--force").returncode == 0
    assert cli("delete", "far", "--force").returncode == 0
    assert [r["name"] for r in parsed(cli("list", "--json"))] == [running]


def _read_until(fd: int, marker: bytes, timeout: float = 30) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} in {seen.decode(errors='replace')!r}"
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 4096)
            assert chunk, f"the REPL closed early: {seen.decode(errors='replace')!r}"
            seen += chunk
    return seen


class Terminal:
    """The command in a pseudo-terminal that is its controlling terminal, as in a
    person's shell: prompts are shown there and passwords typed without echo."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become the command
            os.execve(sys.executable, [sys.executable, "-m", "mail_proxy", *args], env)

    def expect(self, marker: bytes, timeout: float = 30) -> bytes:
        return _read_until(self.fd, marker, timeout)

    def type(self, line: bytes) -> None:
        os.write(self.fd, line + b"\n")

    def wait(self, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.05)
        raise TimeoutError("the command did not exit")

    def close(self) -> None:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(self.pid, os.WNOHANG) == (0, 0):
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
        os.close(self.fd)


def test_accounts_add_prompts_at_a_terminal(
    cli_env: dict[str, str], cli: Cli, running: str
) -> None:
    assert cli(running, "tenants", "add", "--id", "acme").returncode == 0
    terminal = Terminal(cli_env, running, "acme", "accounts", "add")
    try:
        for prompt, answer in [
            (b"Account id: ", b"main"),
            (b"SMTP host: ", b"smtp.acme.example"),
            (b"SMTP port [587]: ", b""),
            (b"SMTP user: ", b"mailer"),
            (b"SMTP password: ", b"s3cret-pass"),
        ]:
            terminal.expect(prompt)
            terminal.type(answer)
        assert b"s3cret-pass" not in terminal.expect(b"saved")  # typed without echo
        assert terminal.wait() == 0
    finally:
        terminal.close()
    [account] = parsed(cli(running, "acme", "accounts", "list", "--json"))
    assert (account["id"], account["host"], account["port"]) == ("main", "smtp.acme.example", 587)
    assert account["user"] == "mailer" and account["has_password"] is True


def test_connect_opens_a_repl_with_a_ready_client(
    cli_env: dict[str, str], cli: Cli, running: str
) -> None:
    assert cli(running, "tenants", "add", "--id", "acme").returncode == 0
    repl = Terminal(cli_env, running, "connect")
    try:
        repl.expect(b">>> ")
        repl.type(b"[t.id for t in proxy.tenants.list().tenants]")
        assert b"['acme']" in repl.expect(b">>> ")
        repl.type(b"proxy.status().active")
        assert b"True" in repl.expect(b">>> ")
        repl.type(b"exit()")
        assert repl.wait() == 0
    finally:
        repl.close()
