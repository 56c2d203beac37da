"""Shared pieces of the benchmarks: a served proxy with one tenant, percentiles, medians.

Benchmarks are run by hand (`.venv/bin/python bench/<name>.py`) and print
figures next to a baseline measured in the same run; they are never part of the
test suite.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg

from mail_proxy.testing import ServedProxy, free_port

TENANT = "bench"
ACCOUNT = "bench-smtp"


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile; enough for latency summaries."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def setup_tenant(proxy: ServedProxy, smtp_port: int, *, sync_url: str | None = None) -> None:
    """Create the bench tenant and its default account (pointing at ``smtp_port``)."""
    tenant: dict[str, Any] = {"id": TENANT, "name": "Benchmark"}
    if sync_url is not None:
        tenant |= {"client_base_url": sync_url, "client_sync_path": "/sync"}
    with proxy.client(timeout=10) as client:
        client.post("/tenant", json=tenant).raise_for_status()
        client.post(
            "/account",
            json={
                "id": ACCOUNT,
                "tenant_id": TENANT,
                "host": "127.0.0.1",
                "port": smtp_port,
                "use_tls": False,
                "is_default": True,
                "default_from": "bench@example.com",
            },
        ).raise_for_status()


def message(i: int, prefix: str = "m") -> dict[str, Any]:
    return {
        "id": f"{prefix}-{i}",
        "tenant_id": TENANT,
        "to": [f"rcpt{i % 50}@example.com"],
        "subject": f"Benchmark message {i}",
        "body": "Hello from the benchmark.\n" * 4,
    }


class Arrival:
    __slots__ = ("at", "mail_id")

    def __init__(self, at: float, mail_id: str) -> None:
        self.at = at
        self.mail_id = mail_id


class SinkProcess:
    """``sink_server.py`` in a subprocess: the SMTP peer does not share our GIL."""

    def __init__(self, *, pipelining: bool = False) -> None:
        self.port = free_port()
        self._pipelining = pipelining
        self._dir = tempfile.TemporaryDirectory()
        self._path = Path(self._dir.name) / "arrivals"
        self._path.touch()
        self._reader = self._path.open("rb")
        self._seen = 0
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> SinkProcess:
        script = str(Path(__file__).with_name("sink_server.py"))
        self._process = subprocess.Popen(
            [sys.executable, script, str(self.port), str(self._path)]
            + (["--pipelining"] if self._pipelining else []),
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        if self._process.stdout.readline().strip() != "ready":
            self.__exit__()
            raise RuntimeError(f"the sink did not start (exit {self._process.returncode})")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
        self._reader.close()
        self._dir.cleanup()

    @property
    def arrivals(self) -> list[Arrival]:
        with self._path.open() as lines:
            return [Arrival(float(at), mid) for at, mid in (line.split() for line in lines)]

    def count(self) -> int:
        """Lines written so far, reading only what is new (polling must stay cheap)."""
        self._seen += self._reader.read().count(b"\n")
        return self._seen

    def wait_for(self, n: int, timeout: float) -> bool:
        return wait_until(lambda: self.count() >= n, timeout, step=0.005)


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def server_peak_rss_mb(proxy: ServedProxy) -> float:
    """Peak resident memory (VmHWM) of the served process, in MiB."""
    assert proxy.process is not None
    with open(f"/proc/{proxy.process.pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def post_batches(
    client: httpx.Client, messages: list[dict[str, Any]], size: int = 100
) -> list[tuple[float, list[str]]]:
    """POST in batches; returns (send time, ids) per batch."""
    sent: list[tuple[float, list[str]]] = []
    for start in range(0, len(messages), size):
        chunk = messages[start : start + size]
        at = time.time()
        client.post("/commands/add-messages", json={"messages": chunk}).raise_for_status()
        sent.append((at, [m["id"] for m in chunk]))
    return sent


PG_DSN = os.environ.get("GMP_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
#: Row generators for bulk fills, ``:n`` rows numbered from 1 in a column ``i``.
SQLITE_SERIES = "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n)"
PG_SERIES = "WITH s(i) AS (SELECT generate_series(1, :n))"


@contextmanager
def pg_schema() -> Iterator[str]:
    """A throw-away PostgreSQL schema for one run; yields the DSN that selects it."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')  # type: ignore[arg-type]
    try:
        yield f"{PG_DSN}{'&' if '?' in PG_DSN else '?'}schema={schema}"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')  # type: ignore[arg-type]
