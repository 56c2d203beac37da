"""Crash drill: several proxy processes drain one queue while one is killed with -9.

    .venv/bin/python bench/drill_bench.py --backend postgres --processes 3 --messages 5000
    .venv/bin/python bench/drill_bench.py --backend sqlite --processes 1 --messages 1500

Each process is a real ``mail-proxy serve`` on one database (a fresh PostgreSQL
schema, or one SQLite file); the SMTP sink runs in a process of its own and the
application endpoint counts each report entry. When a share of the mail has
arrived, the first process is killed with SIGKILL (and, with one process, started
again on the same database). The drill then waits for every id to arrive and be
reported, and prints what an operator wants to know:

- lost: ids that never reached the sink (must be 0);
- sent rows without a ``sent`` event, and sent rows never reported (must be 0);
- SMTP duplicates: sends whose acceptance was not yet committed at the kill;
- report duplicates: entries the application received more than once.
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import psycopg
from _common import SinkProcess, message, post_batches, setup_tenant, wait_until

from mail_proxy.testing import ReportEndpoint, ServedProxy, database_rows

PG_DSN = os.environ.get("GMP_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def _database(backend: str, folder: Path) -> tuple[str, str | None]:
    if backend == "sqlite":
        return str(folder / "drill.db"), None
    schema = f"drill_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in PG_DSN else "?"
    return f"{PG_DSN}{separator}schema={schema}", schema


def drill(backend: str, processes: int, n: int, kill_at: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db, schema = _database(backend, folder)
        env = {"GMP_SYNC_INTERVAL": "2", "GMP_LEASE_SECONDS": "5"}
        proxies = [
            ServedProxy(db, env=env, log_path=folder / f"p{i}.log") for i in range(processes)
        ]
        with SinkProcess() as sink, ReportEndpoint() as app:
            proxies[0].start()
            setup_tenant(proxies[0], sink.port, sync_url=app.url)
            for proxy in proxies[1:]:
                proxy.start()
            with proxies[0].client(timeout=30) as client:
                post_batches(client, [message(i) for i in range(n)])
            started = time.monotonic()
            wait_until(lambda: sink.count() >= int(n * kill_at), timeout=120)
            arrived_at_kill = sink.count()
            proxies[0].stop(signal.SIGKILL)
            if processes == 1:
                proxies[0].start()
            ids = {f"m-{i}" for i in range(n)}
            wait_until(lambda: ids <= {a.mail_id for a in sink.arrivals}, timeout=300)
            wait_until(lambda: len(app.sent_at) >= n, timeout=120)
            elapsed = time.monotonic() - started
            arrivals = Counter(a.mail_id for a in sink.arrivals)
            without_event = database_rows(
                db,
                "SELECT count(*) FROM messages m WHERE m.status = 'sent' AND NOT EXISTS "
                "(SELECT 1 FROM message_events e WHERE e.message_pk = m.pk AND e.type = 'sent')",
            )[0][0]
            for proxy in proxies:
                proxy.stop()
        if schema is not None:
            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return {
        "arrived_at_kill": arrived_at_kill,
        "lost": len(ids - set(arrivals)),
        "smtp_duplicates": sum(count - 1 for count in arrivals.values()),
        "sent_without_event": float(str(without_event)),
        "reported": len(app.sent_at),
        "not_reported": len(ids - set(app.sent_at)),
        "report_duplicates": app.sent_duplicates,
        "seconds": round(elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--kill-at", type=float, default=0.3, help="share arrived at the kill")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    for run in range(args.runs):
        result = drill(args.backend, args.processes, args.messages, args.kill_at)
        print(
            f"run {run + 1} {args.backend} x{args.processes}: "
            + ", ".join(f"{key}={value}" for key, value in result.items())
        )


if __name__ == "__main__":
    main()
