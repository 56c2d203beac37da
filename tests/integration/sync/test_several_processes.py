"""Several ``mail-proxy serve`` processes on one database report each event once.

Every process runs a sync loop. Without a per-tenant lease each one read the same
unreported events and posted them: with two processes on PostgreSQL, 4,085 of 5,000
delivered messages were reported twice. These tests run real processes against a
real SMTP sink and a real HTTP application that counts what it is told, and kill
the lease holder with SIGKILL to show another process takes the tenant over.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from mail_proxy.testing import RecordingSink, ReportEndpoint, ServedProxy, database_rows

pytestmark = pytest.mark.slow

BATCH = 50
UNREPORTED = "SELECT count(*) FROM message_events WHERE reported_ts IS NULL"
LEASE_SECONDS = 2.0


@pytest.fixture
def application() -> Iterator[ReportEndpoint]:
    with ReportEndpoint() as app:
        yield app


def _start(db: str, tmp_path: Path, count: int) -> list[ServedProxy]:
    env = {
        "GMP_SECRET_KEY": Fernet.generate_key().decode(),
        "GMP_INSTANCE_DIR": str(tmp_path / "instance"),
        "GMP_LOG_LEVEL": "WARNING",
        "GMP_ALLOW_PRIVATE_TARGETS": "true",
        "GMP_SYNC_LEASE_SECONDS": str(LEASE_SECONDS),
        "GMP_REPORT_BATCH_SIZE": str(BATCH),
        "GMP_LEASE_SECONDS": "5",
        "GMP_SMTP_TIMEOUT": "3",
    }
    proxies: list[ServedProxy] = []
    try:
        for n in range(count):
            log = tmp_path / f"proxy-{n}.log"
            proxies.append(ServedProxy(db, env=env, log_path=log).start())
    except BaseException:
        _stop(proxies)
        raise
    return proxies


def _stop(proxies: list[ServedProxy]) -> None:
    for proxy in proxies:
        if proxy.process is not None:
            proxy.stop(signal.SIGKILL if proxy.process.poll() is None else signal.SIGTERM)


def _setup_and_submit(
    proxies: list[ServedProxy], smtp_port: int, sync_url: str, n: int
) -> set[str]:
    """One tenant reporting to ``sync_url``; ``n`` messages spread over the processes."""
    with proxies[0].client(timeout=10) as client:
        client.post(
            "/tenant",
            json={"id": "acme", "client_base_url": sync_url, "client_sync_path": "/sync"},
        ).raise_for_status()
        client.post(
            "/account",
            json={"id": "main", "tenant_id": "acme", "host": "127.0.0.1", "port": smtp_port,
                  "use_tls": False, "default_from": "n@acme.test"},
        ).raise_for_status()  # fmt: skip
    ids = [f"m-{i}" for i in range(n)]
    for start in range(0, n, 100):
        proxy = proxies[(start // 100) % len(proxies)]
        batch = [
            {"id": mid, "tenant_id": "acme", "to": "u@example.com", "subject": "s", "body": "b"}
            for mid in ids[start : start + 100]
        ]
        with proxy.client(timeout=30) as client:
            client.post("/commands/add-messages", json={"messages": batch}).raise_for_status()
    return set(ids)


def _wait_all_reported(db: str, app: ReportEndpoint, wanted: set[str]) -> None:
    """Until the application heard of every id and the database holds nothing unreported."""
    deadline = time.monotonic() + 60
    while True:
        seen, _ = app.snapshot()
        unreported = database_rows(
            db, "SELECT count(*) FROM message_events WHERE reported_ts IS NULL"
        )
        if wanted <= set(seen) and unreported == [(0,)]:
            return
        assert time.monotonic() < deadline, (len(set(seen) & wanted), unreported)
        time.sleep(0.05)


@pytest.fixture(params=["sqlite-2", pytest.param("postgres-2", marks=pytest.mark.postgres),
                        pytest.param("postgres-3", marks=pytest.mark.postgres)])  # fmt: skip
def database(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, int]:
    backend, count = request.param.split("-")
    if backend == "postgres":
        return str(request.getfixturevalue("pg_dsn")), int(count)
    return str(tmp_path / "shared.db"), int(count)


def test_each_event_is_reported_once_by_several_processes(
    tmp_path: Path, application: ReportEndpoint, database: tuple[str, int]
) -> None:
    """2 or 3 processes, one tenant, 600 messages submitted through all of them: the
    application hears of each message exactly once."""
    db, count = database
    with RecordingSink() as sink:
        proxies = _start(db, tmp_path, count)
        try:
            wanted = _setup_and_submit(proxies, sink.port, application.url, 600)
            _wait_all_reported(db, application, wanted)
            for proxy in proxies:
                assert proxy.stop(signal.SIGTERM) == 0
        finally:
            _stop(proxies)
    seen, calls = application.snapshot()
    duplicates = {mid: n for mid, n in seen.items() if n > 1}
    backend = "postgres" if db.startswith("postgresql") else "sqlite"
    print(
        f"{count} processes ({backend}): {sum(seen.values())} entries in "
        f"{len(calls)} calls for {len(wanted)} messages, {len(duplicates)} duplicate(s)"
    )
    assert duplicates == {}
    assert set(seen) == wanted


@pytest.mark.postgres
def test_lease_holder_killed_mid_run_another_takes_over(
    tmp_path: Path, application: ReportEndpoint, pg_dsn: str
) -> None:
    """kill -9 the process holding the tenant's reporting lease while it reports: no
    report is lost, another process goes on once the lease expires, and only what
    was in flight at the kill (at most a batch posted and one being acknowledged)
    may be heard twice."""
    with RecordingSink() as sink:
        proxies = _start(pg_dsn, tmp_path, 3)
        try:
            wanted = _setup_and_submit(proxies, sink.port, application.url, 1500)
            victim, killed_at = _kill_holder_once_reporting(pg_dsn, proxies, application)
            _wait_all_reported(pg_dsn, application, wanted)
            for proxy in proxies:
                if proxy is not victim:
                    assert proxy.stop(signal.SIGTERM) == 0
        finally:
            _stop(proxies)
    seen, calls = application.snapshot()
    duplicates = {mid: n for mid, n in seen.items() if n > 1}
    after = [at for at, size in calls if at > killed_at and size]
    takeover = after[0] - killed_at if after else float("nan")
    print(
        f"kill -9 of the lease holder: {sum(seen.values())} entries in {len(calls)} calls "
        f"for {len(wanted)} messages, {len(duplicates)} duplicate(s), next report "
        f"{takeover:.2f} s after the kill (lease {LEASE_SECONDS:g} s)"
    )
    assert set(seen) == wanted
    assert len(duplicates) <= 2 * BATCH


def _kill_holder_once_reporting(
    db: str, proxies: list[ServedProxy], app: ReportEndpoint
) -> tuple[ServedProxy, float]:
    """Once some reports arrived, SIGKILL the process named in the tenant's lease."""
    by_pid = {p.process.pid: p for p in proxies if p.process is not None}
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, "no process held the lease while reporting"
        seen, _ = app.snapshot()
        [(holder,)] = database_rows(db, "SELECT sync_lease_holder FROM tenants WHERE id = 'acme'")
        if len(seen) >= BATCH and holder is not None:
            pid = int(holder.split(":")[1])
            victim = by_pid[pid]
            os.kill(pid, signal.SIGKILL)
            killed_at = time.time()
            assert victim.process is not None
            victim.process.wait(10)
            victim.process = None
            return victim, killed_at
        time.sleep(0.01)
