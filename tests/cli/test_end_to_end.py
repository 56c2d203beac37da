"""A real instance driven only through the command line: start, tenant, account,
.eml files sent to a real SMTP server, the queue read back, a remote registration,
the REPL through a pseudo-terminal, stop."""

from __future__ import annotations

import os
import pty
import select
import subprocess
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


def test_connect_opens_a_repl_with_a_ready_client(
    cli_env: dict[str, str], cli: Cli, running: str
) -> None:
    assert cli(running, "tenants", "add", "--id", "acme").returncode == 0
    leader, follower = pty.openpty()
    repl = subprocess.Popen(
        [sys.executable, "-m", "mail_proxy", running, "connect"],
        env=cli_env,
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    try:
        _read_until(leader, b">>> ")
        os.write(leader, b"[t.id for t in proxy.tenants.list().tenants]\n")
        assert b"['acme']" in _read_until(leader, b">>> ")
        os.write(leader, b"proxy.status().active\n")
        assert b"True" in _read_until(leader, b">>> ")
        os.write(leader, b"exit()\n")
        assert repl.wait(timeout=20) == 0
    finally:
        if repl.poll() is None:
            repl.kill()
        os.close(leader)
