"""The served process driven as an operator would: subprocess, socket, signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mail_proxy.testing import RecordingSink, ReportEndpoint, ServedProxy, database_rows, free_port

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

pytestmark = pytest.mark.slow


def _setup(proxy: ServedProxy, smtp_port: int, sync_url: str | None = None) -> None:
    tenant: dict[str, Any] = {"id": "acme", "name": "Acme"}
    if sync_url is not None:
        tenant |= {"client_base_url": sync_url, "client_sync_path": "/sync"}
    with proxy.client(timeout=10) as client:
        client.post("/tenant", json=tenant).raise_for_status()
        client.post(
            "/account",
            json={
                "id": "main",
                "tenant_id": "acme",
                "host": "127.0.0.1",
                "port": smtp_port,
                "use_tls": False,
                "default_from": "noreply@acme.test",
            },
        ).raise_for_status()


def _messages(n: int, prefix: str = "m") -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}-{i}",
            "tenant_id": "acme",
            "to": f"user{i}@example.com",
            "subject": f"Hello {i}",
            "body": "Body",
        }
        for i in range(n)
    ]


def test_serve_delivers_and_stops_gracefully(tmp_path: Path) -> None:
    """A real `mail-proxy serve` answers over a socket, delivers, and exits 0 on SIGTERM."""
    with RecordingSink() as sink, ServedProxy(tmp_path / "q.db") as proxy:
        assert httpx.get(f"{proxy.url}/health").json() == {"ok": True}
        _setup(proxy, sink.port)
        with proxy.client() as client:
            answer = client.post("/commands/add-messages", json={"messages": _messages(3)})
            assert answer.json()["queued"] == 3
            assert sink.wait_for(3, timeout=10)
            status = client.get("/status").json()
            assert status["ok"] is True and status["active"] is True
        assert proxy.stop(signal.SIGTERM) == 0
    assert sorted(a.mail_id or "" for a in sink.arrivals) == ["m-0", "m-1", "m-2"]


def test_python_dash_m_runs_the_same_cli() -> None:
    """`python -m mail_proxy serve --help` is the same command as `mail-proxy serve`."""
    out = subprocess.run(
        [sys.executable, "-m", "mail_proxy", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--dev-sink" in out and "--port" in out


SENT_WITHOUT_EVENT = (
    "SELECT count(*) FROM messages m WHERE m.status = 'sent' AND NOT EXISTS"
    " (SELECT 1 FROM message_events e WHERE e.message_pk = m.pk AND e.type = 'sent')"
)


@pytest.fixture(params=BACKENDS)
def crash_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_dsn"))
    return str(tmp_path / "crash.db")


def test_kill_9_loses_nothing(tmp_path: Path, crash_db: str) -> None:
    """kill -9 during a busy dispatch, restart on the same database: every message is
    delivered and reported to the tenant; at the moment of the kill no message was
    ``sent`` without its event (both are one transaction); a message arrives twice
    only if the SMTP server had accepted it before the kill while its outcome was not
    yet committed."""
    total = 1500
    env = {
        "GMP_LEASE_SECONDS": "10",
        "GMP_SMTP_TIMEOUT": "3",
        "GMP_LOG_LEVEL": "WARNING",
        "GMP_ALLOW_PRIVATE_TARGETS": "true",
        "GMP_INSTANCE_DIR": str(tmp_path / "instance"),
    }
    with RecordingSink() as sink, ReportEndpoint() as app:
        proxy = ServedProxy(crash_db, env=env).start()
        try:
            _setup(proxy, sink.port, app.url)
            messages = _messages(total)
            with proxy.client(timeout=30) as client:
                for start in range(0, total, 100):
                    batch = messages[start : start + 100]
                    client.post("/commands/add-messages", json={"messages": batch})
            assert sink.wait_for(200, timeout=30)
        finally:
            proxy.stop(signal.SIGKILL)
        time.sleep(0.5)  # a DATA that completed as the process died is recorded by now
        arrived_before_kill = {a.mail_id for a in list(sink.arrivals)}
        sent_in_db = {
            row[0]
            for row in database_rows(crash_db, "SELECT id FROM messages WHERE status = 'sent'")
        }
        assert database_rows(crash_db, SENT_WITHOUT_EVENT) == [(0,)]
        assert len(arrived_before_kill) < total, "the kill came too late to prove anything"

        wanted = {f"m-{i}" for i in range(total)}
        with ServedProxy(crash_db, env=env) as restarted:
            # count distinct ids: duplicates must not end the wait early
            deadline = time.monotonic() + 90
            while {
                a.mail_id for a in list(sink.arrivals)
            } != wanted or app.reported_sent() != wanted:
                assert time.monotonic() < deadline, "a message was lost or never reported"
                time.sleep(0.1)
            assert restarted.stop() == 0

    ids = [a.mail_id for a in sink.arrivals]
    duplicates = {mid for mid in ids if ids.count(mid) > 1}
    assert duplicates <= arrived_before_kill - sent_in_db
    backend = "postgres" if crash_db.startswith("postgresql") else "sqlite"
    print(
        f"kill -9 ({backend}): {len(duplicates)} duplicate(s) out of {total}, "
        f"{len(arrived_before_kill)} had arrived before the kill, {len(sent_in_db)} were "
        "committed as sent, 0 sent without event"
    )
    assert dict(
        database_rows(crash_db, "SELECT status, count(*) FROM messages GROUP BY status")
    ) == {"sent": total}
    assert database_rows(crash_db, SENT_WITHOUT_EVENT) == [(0,)]


def test_dev_sink_newcomer_path(tmp_path: Path) -> None:
    """`serve --dev-sink` prints the token and the curl lines; a mail sent to the demo
    tenant shows up at GET /dev/messages."""
    port, sink_port = free_port(), free_port()
    env = {
        **os.environ,
        "GMP_DB_PATH": str(tmp_path / "dev.db"),
        "GMP_PORT": str(port),
        "GMP_DEV_SINK_PORT": str(sink_port),
    }
    env.pop("GMP_API_TOKEN", None)
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mail_proxy", "serve", "--dev-sink"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, log.read_text()
            time.sleep(0.05)
        token = (tmp_path / "admin.token").read_text().strip()
        banner = log.read_text()
        assert token in banner and "/dev/messages" in banner and "curl" in banner
        headers = {"X-API-Token": token}
        answer = httpx.post(
            f"{base}/commands/add-messages",
            headers=headers,
            json={
                "messages": [
                    {
                        "id": "hello-1",
                        "tenant_id": "demo",
                        "to": "you@example.com",
                        "subject": "Hello",
                        "body": "Hi",
                    }
                ]
            },
        )
        assert answer.json()["queued"] == 1, answer.text
        seen: list[dict[str, Any]] = []
        for _ in range(200):
            seen = httpx.get(f"{base}/dev/messages", headers=headers).json()["messages"]
            if seen:
                break
            time.sleep(0.05)
        assert seen and seen[0]["subject"] == "Hello" and seen[0]["mail_id"] == "hello-1"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
