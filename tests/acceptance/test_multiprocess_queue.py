"""Two ``mail-proxy serve`` processes on one PostgreSQL queue, while the application
keeps resubmitting the same ids with new content.

A resubmission either replaces a message nobody is sending, or is rejected as being
sent / already sent. Checking the lease on an unlocked snapshot once let a claim by
the other process slip in between check and replace: the lease was wiped, the message
claimed again, and sent twice.
"""

from __future__ import annotations

import signal
import threading
import time
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from mail_proxy.storage.intake import ALREADY_SENT, BEING_SENT
from mail_proxy.testing import RecordingSink, ServedProxy

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

IDS = [f"r-{i}" for i in range(200)]
SUBMITTERS = 4
STORM_SECONDS = 4.0


def _subject(raw: bytes) -> str:
    return str(message_from_bytes(raw, policy=policy.default)["Subject"])


def test_resubmitted_ids_are_sent_once_with_their_last_content(tmp_path: Path, pg_dsn: str) -> None:
    """Every id is delivered exactly once, with the content of its last accepted
    submission; every other submission is rejected as being or already sent."""
    env = {
        "GMP_SECRET_KEY": Fernet.generate_key().decode(),
        "GMP_INSTANCE_DIR": str(tmp_path),
        "GMP_LOG_LEVEL": "WARNING",
    }
    with RecordingSink() as sink, ServedProxy(pg_dsn, env=env) as one:
        with one.client(timeout=10) as client:
            client.post("/tenant", json={"id": "acme", "name": "Acme"}).raise_for_status()
            client.post(
                "/account",
                json={"id": "main", "tenant_id": "acme", "host": "127.0.0.1",
                      "port": sink.port, "use_tls": False, "default_from": "n@acme.test"},
            ).raise_for_status()  # fmt: skip
        with ServedProxy(pg_dsn, env=env) as two:
            last_accepted, rejections = _storm([one, two])
            deadline = time.monotonic() + 60
            while {a.mail_id for a in list(sink.arrivals)} != set(IDS):
                assert time.monotonic() < deadline, "a message was never delivered"
                time.sleep(0.1)
            # both drain what they hold: a duplicate in flight arrives before they exit
            assert two.stop(signal.SIGTERM) == 0
        assert one.stop(signal.SIGTERM) == 0

    arrivals = {mid: [_subject(a.raw) for a in sink.arrivals if a.mail_id == mid] for mid in IDS}
    assert {mid: subjects for mid, subjects in arrivals.items() if len(subjects) != 1} == {}
    assert {mid: subjects[0] for mid, subjects in arrivals.items()} == last_accepted
    assert set(rejections) <= {ALREADY_SENT, BEING_SENT}
    print(f"resubmission storm: {sum(rejections.values())} rejections {rejections}")


def _storm(proxies: list[ServedProxy]) -> tuple[dict[str, str], dict[str, int]]:
    """Several submitters, each owning a share of the ids (so that "last" is well
    defined per id), resubmit their ids not yet sent round after round, through each
    process in turn; the messages fall due a second or two into the storm, and the
    dispatchers claim them a few at a time (per-account concurrency) while it goes
    on. Returns the subject last accepted per id and the count of each rejection."""
    due = int(time.time()) + 2
    results: list[tuple[dict[str, str], dict[str, int]]] = []
    threads = [
        threading.Thread(target=lambda s=share: results.append(_submit(proxies, s, due)))
        for share in (IDS[n::SUBMITTERS] for n in range(SUBMITTERS))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == SUBMITTERS, "a submitter failed"
    last_accepted: dict[str, str] = {}
    rejections: dict[str, int] = {}
    for accepted, rejected in results:
        last_accepted |= accepted
        for reason, count in rejected.items():
            rejections[reason] = rejections.get(reason, 0) + count
    return last_accepted, rejections


def _submit(
    proxies: list[ServedProxy], ids: list[str], due: int
) -> tuple[dict[str, str], dict[str, int]]:
    clients = [proxy.client(timeout=30) for proxy in proxies]
    last_accepted: dict[str, str] = {}
    rejections: dict[str, int] = {}
    open_ids = list(ids)
    version = 0
    end = time.monotonic() + STORM_SECONDS
    try:
        while open_ids and time.monotonic() < end:
            version += 1
            batch = [
                {"id": mid, "tenant_id": "acme", "to": "user@example.com",
                 "subject": f"{mid} v{version}", "body": "Body",
                 "deferred_ts": due + index % 2}
                for index, mid in enumerate(open_ids)
            ]  # fmt: skip
            answer = clients[version % len(clients)].post(
                "/commands/add-messages", json={"messages": batch}
            )
            # 400 when every message of the call was rejected, with the same body
            assert answer.status_code in (200, 400), answer.text
            rejected = {r["id"]: r["reason"] for r in answer.json()["rejected"]}
            for message in batch:
                mid = message["id"]
                if mid in rejected:
                    rejections[rejected[mid]] = rejections.get(rejected[mid], 0) + 1
                else:
                    last_accepted[mid] = message["subject"]
            open_ids = [mid for mid in open_ids if rejected.get(mid) != ALREADY_SENT]
    finally:
        for client in clients:
            client.close()
    return last_accepted, rejections


def test_an_idle_process_is_woken_by_another_process_enqueue(tmp_path: Path, pg_dsn: str) -> None:
    """Process A only serves the API (GMP_DISPATCH=false); B delivers and would look
    for work only once a minute: the messages A queues arrive within seconds, through
    PostgreSQL's notification, and A delivers nothing itself."""
    env = {
        "GMP_SECRET_KEY": Fernet.generate_key().decode(),
        "GMP_INSTANCE_DIR": str(tmp_path),
        "GMP_LOG_LEVEL": "WARNING",
        "GMP_SEND_LOOP_INTERVAL": "60",
    }
    api_only = ServedProxy(pg_dsn, env=env | {"GMP_DISPATCH": "false"})
    with RecordingSink() as sink, api_only as one, ServedProxy(pg_dsn, env=env) as two:
        with one.client(timeout=10) as client:
            client.post("/tenant", json={"id": "acme", "name": "Acme"}).raise_for_status()
            client.post(
                "/account",
                json={"id": "main", "tenant_id": "acme", "host": "127.0.0.1",
                      "port": sink.port, "use_tls": False, "default_from": "n@acme.test"},
            ).raise_for_status()  # fmt: skip
            for round_ in range(3):
                started = time.monotonic()
                message = {"id": f"w-{round_}", "tenant_id": "acme", "to": ["x@example.com"],
                           "subject": "wake", "body": "b"}  # fmt: skip
                client.post("/commands/add-messages", json={"messages": [message]})
                while f"w-{round_}" not in {a.mail_id for a in list(sink.arrivals)}:
                    assert time.monotonic() - started < 20, "the idle process was not woken"
                    time.sleep(0.02)
        assert two.stop(signal.SIGTERM) == 0
