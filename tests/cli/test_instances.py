"""Instance folders and processes, without a running proxy (fast) and with one (slow)."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.cli.conftest import Cli, parsed

from mail_proxy.testing import free_port


def _dead_pid() -> int:
    """The id of a process that has exited (and been reaped): nothing answers to it."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _make_instance(home: Path, name: str, port: int = 18999) -> Path:
    folder = home / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"host": "127.0.0.1", "port": port}))
    return folder


def test_list_is_empty_without_instances(cli: Cli) -> None:
    assert parsed(cli("list", "--json")) == []


def test_a_stale_pid_file_is_detected_and_cleared(cli: Cli, gmp_home: Path) -> None:
    folder = _make_instance(gmp_home, "old")
    (folder / "pid").write_text(f"{_dead_pid()}\n")
    [row] = parsed(cli("list", "--json"))
    assert row["state"] == "stopped (stale pid file)" and row["pid"] is None
    stopped = cli("stop", "old")
    assert stopped.returncode == 0
    assert "stale pid file" in stopped.stderr and "not running" in stopped.stderr
    assert not (folder / "pid").exists()
    assert parsed(cli("status", "old", "--json"))["state"] == "stopped"


def test_commands_on_a_stopped_instance_say_so_in_one_line(cli: Cli, gmp_home: Path) -> None:
    _make_instance(gmp_home, "idle")
    done = cli("idle", "tenants", "list")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "Error: instance 'idle' is not running (mail-proxy start idle --background)"
    ]


def test_an_unknown_instance_is_one_line_and_status_1(cli: Cli) -> None:
    done = cli("ghost", "info")
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1 and "no instance named 'ghost'" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_usage_is_status_2(cli: Cli) -> None:
    assert cli("start").returncode == 2
    assert cli("list", "--no-such-option").returncode == 2
    assert cli("start", "../escape").returncode == 1


def test_destructive_commands_refuse_without_terminal_or_force(cli: Cli, gmp_home: Path) -> None:
    folder = _make_instance(gmp_home, "keep")
    refused = cli("delete", "keep", input="y\n")
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert folder.exists()
    assert cli("delete", "keep", "--force").returncode == 0
    assert not folder.exists()


def test_use_and_current_remember_the_context(cli: Cli, gmp_home: Path) -> None:
    _make_instance(gmp_home, "ctx")
    assert cli("use", "ctx", "acme").returncode == 0
    assert parsed(cli("current", "--json")) == {"instance": "ctx", "tenant": "acme"}
    # A tenant command without names goes to the chosen instance (stopped: one line).
    done = cli("accounts", "list")
    assert done.returncode == 1 and "instance 'ctx' is not running" in done.stderr
    assert cli("use", "nowhere").returncode == 1


def test_a_command_needing_a_tenant_without_context_is_usage(cli: Cli, gmp_home: Path) -> None:
    _make_instance(gmp_home, "bare")
    done = cli("bare", "accounts", "list")
    assert done.returncode == 2 and "needs a TENANT" in done.stderr


@pytest.mark.slow
def test_every_command_has_help_with_an_example(cli: Cli) -> None:
    for args in (
        [],
        ["start"],
        ["stop"],
        ["delete"],
        ["remote"],
        ["x", "token"],
        ["x", "tenants", "add"],
        ["x", "t", "accounts", "add"],
        ["x", "t", "messages", "list"],
        ["x", "t", "send"],
    ):
        done = cli(*args, "--help")
        assert done.returncode == 0, (args, done.stderr)
        assert "Example" in done.stdout, args


def test_token_is_shown_only_on_request_and_regenerated_with_force(
    cli: Cli, gmp_home: Path
) -> None:
    folder = _make_instance(gmp_home, "tok")
    (folder / "admin.token").write_text("first-token\n")
    assert cli("tok", "token").stdout.strip() == "first-token"
    assert "first-token" not in cli("status", "tok").stdout
    refused = cli("tok", "token", "--regenerate")
    assert refused.returncode == 2 and "--force" in refused.stderr
    new = cli("tok", "token", "--regenerate", "--force").stdout.strip()
    assert new != "first-token" and len(new) >= 40
    assert (folder / "admin.token").read_text().strip() == new
    assert stat.S_IMODE((folder / "admin.token").stat().st_mode) == 0o600


@pytest.mark.slow
def test_start_twice_status_restart_and_private_files(
    cli: Cli, gmp_home: Path, running: str
) -> None:
    again = cli("start", running, "--background")
    assert again.returncode == 1 and "already running" in again.stderr
    state = parsed(cli("status", running, "--json"))
    assert state["state"] == "running" and state["answers"] is True
    token = cli(running, "token").stdout.strip()
    answer = httpx.get(f"{state['url']}/status", headers={"X-API-Token": token})
    assert answer.json()["ok"] is True
    folder = gmp_home / running
    assert stat.S_IMODE(gmp_home.stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("config.json", "admin.token", "pid", "secret.key", "server.log"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    assert token not in (folder / "server.log").read_text()
    first_pid = state["pid"]
    assert cli("restart", running).returncode == 0
    assert parsed(cli("status", running, "--json"))["pid"] not in (None, first_pid)
    assert cli("stop", running).returncode == 0
    [row] = parsed(cli("list", "--json"))
    assert row["state"] == "stopped" and not (folder / "pid").exists()


def test_add_without_a_terminal_names_the_missing_option(cli: Cli, gmp_home: Path) -> None:
    _make_instance(gmp_home, "np")
    done = cli("np", "tenants", "add", input="acme\n")
    assert done.returncode == 2 and "missing option --id" in done.stderr
    done = cli("np", "acme", "accounts", "add", "--id", "main", input="smtp.example\n")
    assert done.returncode == 2 and "missing option --host" in done.stderr


@pytest.mark.slow
def test_start_in_the_foreground_is_the_proxy_itself(
    cli: Cli, cli_env: dict[str, str], gmp_home: Path
) -> None:
    """Without --background, start becomes serve: the pid file names the process a
    terminal or process manager signals, and SIGTERM stops it cleanly."""
    port = str(free_port())
    attached = subprocess.Popen(
        [sys.executable, "-m", "mail_proxy", "start", "fg", "--port", port],
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while '"answers": true' not in (state := cli("status", "fg", "--json")).stdout:
            assert time.monotonic() < deadline and attached.poll() is None, state.stderr
            time.sleep(0.2)
        assert parsed(state)["pid"] == attached.pid
        attached.send_signal(signal.SIGTERM)
        assert attached.wait(timeout=30) == 0
    finally:
        if attached.poll() is None:
            attached.kill()
            attached.wait()
    assert not (gmp_home / "fg" / "pid").exists()
