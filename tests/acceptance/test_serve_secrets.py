"""What a served process writes to its output: never a body, a password or a stale token."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mail_proxy.testing import RecordingSink, ServedProxy, free_port

pytestmark = pytest.mark.slow

BODY = "BODY-MARKER-5f1c do not log me"
PASSWORD = "SMTP-PASSWORD-MARKER-77a2"
ATTACHMENT = base64.b64encode(b"ATTACHMENT-MARKER-0c9e").decode()


def test_admin_token_is_printed_only_when_first_generated(tmp_path: Path) -> None:
    """The first start shows the new token; later starts name its file instead."""
    log = tmp_path / "serve.log"
    proxy = ServedProxy(tmp_path / "q.db", token="", log_path=log)
    with proxy:
        token = (tmp_path / "admin.token").read_text().strip()
    first = log.read_text()
    assert token in first
    assert (tmp_path / "admin.token").stat().st_mode & 0o777 == 0o600
    log.write_text("")
    with proxy:
        pass
    second = log.read_text()
    assert token not in second
    assert "admin token: in" in second and "admin.token" in second


def test_debug_logging_writes_no_body_attachment_or_password(tmp_path: Path) -> None:
    """GMP_LOG_LEVEL=DEBUG through a whole delivery: the log holds none of the content."""
    log = tmp_path / "serve.log"
    env = {"GMP_LOG_LEVEL": "DEBUG", "GMP_LOG_DELIVERY_ACTIVITY": "true"}
    proxy = ServedProxy(tmp_path / "q.db", env=env, log_path=log)
    with RecordingSink() as sink, proxy, proxy.client(timeout=10) as client:
        client.post("/tenant", json={"id": "acme"}).raise_for_status()
        account = {
            "id": "main",
            "tenant_id": "acme",
            "host": "127.0.0.1",
            "port": sink.port,
            "use_tls": False,
            "password": PASSWORD,
        }
        client.post("/account", json=account).raise_for_status()
        message = {
            "id": "m1",
            "tenant_id": "acme",
            "from": "noreply@acme.test",
            "to": "user@example.com",
            "subject": "Hello",
            "body": BODY,
            "attachments": [{"filename": "a.txt", "storage_path": f"base64:{ATTACHMENT}"}],
        }
        answer = client.post("/commands/add-messages", json={"messages": [message]})
        assert answer.json()["queued"] == 1, answer.text
        assert sink.wait_for(1, timeout=20)
    assert BODY.encode() in sink.arrivals[0].raw.replace(b"=\r\n", b"")
    text = log.read_text()
    assert "debug" in text.lower()  # DEBUG was really on
    for secret in (BODY, PASSWORD, ATTACHMENT, "ATTACHMENT-MARKER"):
        assert secret not in text, f"{secret!r} leaked into the log"


def test_a_wrong_secret_key_stops_serve_with_one_line(tmp_path: Path) -> None:
    """Secrets sealed under one key, `serve` started with another: exit 1, one clear
    line, no traceback (docs/storage.md)."""
    db = tmp_path / "q.db"
    proxy = ServedProxy(db, env={"GMP_SECRET_KEY": "the first key"})
    with proxy, proxy.client(timeout=10) as client:
        client.post("/tenant", json={"id": "acme"}).raise_for_status()
        account = {"id": "a", "tenant_id": "acme", "host": "h.test", "password": "pw"}
        client.post("/account", json=account).raise_for_status()
    env = {**os.environ, "GMP_DB_PATH": str(db), "GMP_SECRET_KEY": "another key"}
    env.pop("GMP_API_TOKEN", None)
    finished = subprocess.run(
        [sys.executable, "-m", "mail_proxy", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 1
    assert "secret key differs" in finished.stderr
    assert "Traceback" not in finished.stderr
