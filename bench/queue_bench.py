"""Queue throughput against a same-run baseline, on SQLite and PostgreSQL.

Run by hand:  .venv/bin/python bench/queue_bench.py [--backend sqlite|postgres|both] [--runs 3]

1. enqueue: 20,000 messages through ``Intake.enqueue`` in batches of 100, against the
   same rows inserted with the plain driver's ``executemany`` (sqlite3 / psycopg),
   one commit per batch in both. Target: store/baseline >= 0.5.
2. claim-and-finish: lease 100 at a time and finish them as sent with ``finish_many``
   until the queue is empty. Target on SQLite: >= 5,000 msgs/s.
3. scale: one claim of 100 with 1,000,000 rows in ``messages`` (all but 1,000 finished)
   against the same claim with 1,000 rows. Target: ratio <= 2.

Each figure is the median of ``--runs`` runs. PostgreSQL comes from
``GMP_TEST_PG_DSN`` (default postgresql://postgres@127.0.0.1:5432/test); the benchmark
works in a schema of its own and drops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import psycopg
from _common import PG_SERIES, SQLITE_SERIES, pg_schema
from cryptography.fernet import Fernet

from mail_proxy.domain.models import NewMessage, Sent
from mail_proxy.ports import Store
from mail_proxy.settings import Settings
from mail_proxy.storage import open_store

MESSAGES = 20_000
BATCH = 100
BIG_TABLE = 1_000_000
ACTIVE_ROWS = 1_000
CLAIM_SAMPLES = 30
NOW = 1_700_000_000.0
KEY = Fernet.generate_key().decode()
INSERT_SQL = (
    "INSERT INTO messages (tenant_id, id, account_id, priority, status, payload, batch_code,"
    " deferred_ts, attempts, created_at, updated_at) VALUES ({})"
)


def payload(i: int) -> dict[str, Any]:
    return {
        "from": "sender@example.com",
        "to": [f"user{i}@example.com"],
        "subject": f"Message {i}",
        "body": "Hello, this is a benchmark message body of a realistic small size. " * 4,
    }


def batches() -> Iterator[list[NewMessage]]:
    for start in range(0, MESSAGES, BATCH):
        yield [
            NewMessage("bench", f"m{i}", f"smtp{i % 10}", 2, payload(i))
            for i in range(start, start + BATCH)
        ]


def row(message: NewMessage) -> tuple[Any, ...]:
    """The columns the store writes for a new message, as the baseline writes them."""
    return (
        message.tenant_id, message.id, message.account_id, message.priority, "pending",
        json.dumps(message.payload, separators=(",", ":")), None, None, 0, NOW, NOW,
    )  # fmt: skip


# -- backends ---------------------------------------------------------------------------
class Backend:
    """Where a run's database lives and how the plain driver reaches it."""

    name = ""

    @contextmanager
    def fresh(self) -> Iterator[str]:
        """Yield a ``db_path`` for an empty database; remove it afterwards."""
        raise NotImplementedError

    def baseline_insert(self, db_path: str, all_batches: list[list[NewMessage]]) -> float:
        raise NotImplementedError

    def fill(self, db_path: str, finished: int, active: int) -> None:
        raise NotImplementedError


class SqliteBackend(Backend):
    name = "sqlite"

    @contextmanager
    def fresh(self) -> Iterator[str]:
        with tempfile.TemporaryDirectory() as folder:
            yield str(Path(folder) / "bench.db")

    def _connect(self, db_path: str) -> sqlite3.Connection:
        conn = sqlite3.connect(db_path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def baseline_insert(self, db_path: str, all_batches: list[list[NewMessage]]) -> float:
        conn = self._connect(db_path)
        sql = INSERT_SQL.format(", ".join("?" * 11))
        started = time.perf_counter()
        for batch in all_batches:
            conn.executemany(sql, [row(m) for m in batch])
            conn.commit()
        elapsed = time.perf_counter() - started
        conn.close()
        return elapsed

    def fill(self, db_path: str, finished: int, active: int) -> None:
        conn = self._connect(db_path)
        conn.execute(_FILL_SQL.format(series=SQLITE_SERIES), {"n": finished + active, "a": active})
        conn.commit()
        conn.close()


class PostgresBackend(Backend):
    name = "postgres"

    @contextmanager
    def fresh(self) -> Iterator[str]:
        with pg_schema() as dsn:
            yield dsn

    def _connect(self, db_path: str) -> psycopg.Connection[Any]:
        base, schema = db_path.rsplit("schema=", 1)
        return psycopg.connect(base.rstrip("?&"), options=f"-csearch_path={schema}")

    def baseline_insert(self, db_path: str, all_batches: list[list[NewMessage]]) -> float:
        conn = self._connect(db_path)
        sql = INSERT_SQL.format(", ".join(["%s"] * 11))
        started = time.perf_counter()
        for batch in all_batches:
            with conn.cursor() as cursor:
                cursor.executemany(sql, [row(m) for m in batch])  # type: ignore[arg-type]
            conn.commit()
        elapsed = time.perf_counter() - started
        conn.close()
        return elapsed

    def fill(self, db_path: str, finished: int, active: int) -> None:
        with self._connect(db_path) as conn:
            sql = _FILL_SQL.format(series=PG_SERIES).replace(":n", "%(n)s").replace(":a", "%(a)s")
            conn.execute(sql, {"n": finished + active, "a": active})  # type: ignore[arg-type]
            conn.execute("ANALYZE messages")


# The last ``:a`` rows stay pending; the rest are finished history.
_FILL_SQL = """
{series}
INSERT INTO messages (tenant_id, id, account_id, priority, status, payload, attempts,
                      created_at, updated_at, smtp_ts)
SELECT 'bench', 'f' || i, 'smtp' || (i - (i / 10) * 10), 2,
       CASE WHEN i > :n - :a THEN 'pending' ELSE 'sent' END,
       '{{"subject":"x"}}', 0, 1700000000.0, 1700000000.0,
       CASE WHEN i > :n - :a THEN NULL ELSE 1700000000.0 END
FROM s
"""


# -- measurements ----------------------------------------------------------------------------
@asynccontextmanager
async def opened(db_path: str) -> AsyncIterator[Store]:
    store = await open_store(Settings(db_path=db_path, secret_key=KEY))
    try:
        yield store
    finally:
        await store.close()


async def enqueue_ratio(backend: Backend) -> tuple[float, float]:
    """(store msgs/s, baseline msgs/s) for 20,000 messages in batches of 100."""
    all_batches = list(batches())
    with backend.fresh() as db_path:
        async with opened(db_path) as store:
            started = time.perf_counter()
            for batch in all_batches:
                await store.intake.enqueue(batch, NOW)
            store_time = time.perf_counter() - started
    with backend.fresh() as db_path:
        async with opened(db_path):
            pass  # the same migrated schema, then the plain driver alone
        baseline_time = backend.baseline_insert(db_path, all_batches)
    return MESSAGES / store_time, MESSAGES / baseline_time


async def claim_and_finish(backend: Backend) -> float:
    """Messages per second through claim(100) + finish_many until the queue is empty."""
    with backend.fresh() as db_path:
        async with opened(db_path) as store:
            for batch in batches():
                await store.intake.enqueue(batch, NOW)
            started = time.perf_counter()
            done = 0
            while claimed := await store.queue.claim(
                now=NOW, lease_seconds=60, limit=100, per_account=100
            ):
                sent = Sent(ts=NOW)
                await store.queue.finish_many([(c.record.pk, c.lease_token, sent) for c in claimed])
                done += len(claimed)
            elapsed = time.perf_counter() - started
    assert done == MESSAGES, done
    return done / elapsed


async def claim_time(backend: Backend, total_rows: int) -> float:
    """Median seconds of one claim of 100 with ``total_rows`` rows, 1,000 of them due."""
    with backend.fresh() as db_path:
        async with opened(db_path):
            pass
        backend.fill(db_path, total_rows - ACTIVE_ROWS, ACTIVE_ROWS)
        async with opened(db_path) as store:
            samples = []
            for _ in range(CLAIM_SAMPLES):
                started = time.perf_counter()
                claimed = await store.queue.claim(
                    now=NOW, lease_seconds=60, limit=100, per_account=100
                )
                samples.append(time.perf_counter() - started)
                assert len(claimed) == 100
                await store.queue.release([(c.record.pk, c.lease_token) for c in claimed])
    return statistics.median(samples)


def median_of(runs: int, measure: Callable[[], Any]) -> Any:
    results = [asyncio.run(measure()) for _ in range(runs)]
    if isinstance(results[0], tuple):
        return tuple(statistics.median(values) for values in zip(*results, strict=True))
    return statistics.median(results)


def report(backend: Backend, runs: int) -> None:
    store_rate, base_rate = median_of(runs, lambda: enqueue_ratio(backend))
    drain_rate = median_of(runs, lambda: claim_and_finish(backend))
    small = median_of(runs, lambda: claim_time(backend, ACTIVE_ROWS))
    large = median_of(runs, lambda: claim_time(backend, BIG_TABLE))
    print(f"\n== {backend.name} (median of {runs} runs)")
    print(f"enqueue           store {store_rate:>9,.0f} msgs/s   baseline {base_rate:>9,.0f} msgs/s"
          f"   ratio {store_rate / base_rate:.2f}   (target >= 0.50)")  # fmt: skip
    target = "   (target >= 5,000 on sqlite)" if backend.name == "sqlite" else ""
    print(f"claim+finish      {drain_rate:>9,.0f} msgs/s{target}")
    print(f"claim of 100      {small * 1000:.2f} ms at {ACTIVE_ROWS:,} rows, "
          f"{large * 1000:.2f} ms at {BIG_TABLE:,} rows   ratio {large / small:.2f}"
          "   (target <= 2.00)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    chosen = {"sqlite": [SqliteBackend()], "postgres": [PostgresBackend()]}
    for backend in chosen.get(args.backend, [SqliteBackend(), PostgresBackend()]):
        report(backend, args.runs)


if __name__ == "__main__":
    main()
