"""Dashboard page times with 1,000,000 messages, on SQLite and PostgreSQL.

Run by hand:  .venv/bin/python bench/ui_bench.py [--backend sqlite|postgres|both] [--rows N]

Creates 10 tenants, then fills ``messages`` with ``--rows`` rows in one SQL statement
(10 accounts, ~94% sent, 3% pending, 2% deferred, 1% failed, a batch code on every tenth row,
created one every half second up to now), then loads each page through the ASGI app
with a logged-in session, as a browser would: the messages page first page, filtered
by status, by tenant and status, a middle page by keyset, by batch code, by id, an
empty time range and two text searches (a common one; one matching a single row,
which reads the whole table), and the overview with its live part. Prints p50 and
p99 over ``--loads`` loads (10 for the single-row text search). The first page with
no filter is the same-run baseline the others compare with.

PostgreSQL comes from ``GMP_TEST_PG_DSN`` (default
postgresql://postgres@127.0.0.1:5432/test), in a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
from _common import PG_SERIES, SQLITE_SERIES, pg_schema
from cryptography.fernet import Fernet

from mail_proxy.api import create_app
from mail_proxy.domain.models import Tenant
from mail_proxy.runtime import Runtime
from mail_proxy.settings import Settings
from mail_proxy.storage import open_store

ADMIN = "bench-admin"
KEY = Fernet.generate_key().decode()
EMPTY_RANGE = "since=2001-01-01T00:00&until=2001-01-02T00:00"

_FILL = """
{series}
INSERT INTO messages (tenant_id, id, account_id, priority, status, payload, batch_code,
                      attempts, created_at, updated_at, smtp_ts, error)
SELECT 't' || (i % 10), 'm' || i, 'smtp' || (i % 10), 2,
       CASE WHEN i % 100 = 0 THEN 'error' WHEN i % 100 < 3 THEN 'deferred'
            WHEN i % 100 < 6 THEN 'pending' ELSE 'sent' END,
       '{{"from":"Billing <billing@example.com>","to":["user' || i || '@client.example"],'
       || '"subject":"Invoice ' || i || '","body":"Dear customer, your invoice is attached.",'
       || '"content_type":"plain","headers":{{}},"attachments":[]}}',
       CASE WHEN i % 10 = 0 THEN 'batch' || (i / 10000) ELSE NULL END,
       1, :now - (:n - i) * 0.5, :now - (:n - i) * 0.5,
       CASE WHEN i % 100 >= 6 THEN :now - (:n - i) * 0.5 ELSE NULL END,
       CASE WHEN i % 100 = 0 THEN '550 mailbox unavailable'
            WHEN i % 100 < 3 THEN '421 try again later' ELSE NULL END
FROM s
"""


@contextmanager
def database(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield str(Path(folder) / "ui.db")
        return
    with pg_schema() as dsn:
        yield dsn


def fill(backend: str, db_path: str, rows: int, now: float) -> float:
    started = time.perf_counter()
    params = {"n": rows, "now": now}
    if backend == "sqlite":
        conn = sqlite3.connect(db_path)
        conn.execute(_FILL.format(series=SQLITE_SERIES), params)
        conn.commit()
        conn.close()
    else:
        base, schema = db_path.rsplit("schema=", 1)
        sql = _FILL.format(series=PG_SERIES).replace("%", "%%")
        for name in ("now", "n"):  # the longer name first: ":n" is in ":now"
            sql = sql.replace(f":{name}", f"%({name})s")
        with psycopg.connect(base.rstrip("?&"), options=f"-csearch_path={schema}") as conn:
            conn.execute(sql, params)  # type: ignore[arg-type]
            conn.execute("ANALYZE messages")
    return time.perf_counter() - started


def cases(rows: int) -> list[tuple[str, str, int]]:
    """(what, path, loads): each path as a browser asks for it."""
    return [
        ("messages: first page", "/ui/messages", 50),
        ("messages: status=error", "/ui/messages?status=error", 50),
        ("messages: tenant+status", "/ui/messages?tenant=t3&status=deferred", 50),
        ("messages: middle page (keyset)", f"/ui/messages?before={rows // 2}", 50),
        ("messages: batch code", f"/ui/messages?batch=batch{rows // 20000}", 50),
        ("messages: by id", f"/ui/messages?id=m{rows // 3}", 50),
        ("messages: empty time range", f"/ui/messages?{EMPTY_RANGE}", 50),
        ("messages: text, common", "/ui/messages?q=invoice+99", 50),
        ("messages: text, one row", f"/ui/messages?q=user{rows // 7}@", 10),
        ("message page", f"/ui/message?tenant=t{(rows // 3) % 10}&id=m{rows // 3}", 50),
        ("overview", "/ui", 50),
        ("overview: live part", "/ui/overview/live", 50),
    ]  # fmt: skip


async def measure(backend: str, rows: int, loads: int) -> list[tuple[str, float, float]]:
    now = time.time()
    with database(backend) as db_path:
        settings = Settings(db_path=db_path, secret_key=KEY, api_token=ADMIN)
        store = await open_store(settings)  # creates the schema
        for tenant in range(10):
            await store.tenants.create(Tenant(id=f"t{tenant}"), None, now)
        await store.close()
        print(f"{backend}: filled {rows:,} rows in {fill(backend, db_path, rows, now):.1f} s")
        runtime = await Runtime.open(settings)
        try:
            app = create_app(settings, runtime)
            transport = httpx.ASGITransport(app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as browser:
                login = await browser.post("/ui/login", data={"token": ADMIN})
                assert login.status_code == 303, login.text
                return [
                    (what, *await _time(browser, path, min(n, loads)))
                    for what, path, n in cases(rows)
                ]
        finally:
            await runtime.close()


async def _time(browser: httpx.AsyncClient, path: str, loads: int) -> tuple[float, float]:
    await _load(browser, path)  # warm: plans and caches, as a page already visited
    times = []
    for _ in range(loads):
        started = time.perf_counter()
        await _load(browser, path)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]


async def _load(browser: httpx.AsyncClient, path: str) -> Any:
    answer = await browser.get(path)
    assert answer.status_code == 200, (path, answer.status_code, answer.text[:200])
    return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--loads", type=int, default=50)
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = {b: asyncio.run(measure(b, args.rows, args.loads)) for b in backends}
    header = "| page | " + " | ".join(f"{b} p50 ms | {b} p99 ms" for b in backends) + " |"
    print("\n" + header)
    print("|" + " --- |" * (1 + 2 * len(backends)))
    for i, (what, _, _) in enumerate(results[backends[0]]):
        cells = " | ".join(f"{results[b][i][1]:.1f} | {results[b][i][2]:.1f}" for b in backends)
        print(f"| {what} | {cells} |")
    for b in backends:
        base = results[b][0][1]
        worst = max(results[b][1:], key=lambda r: r[1])
        print(f"{b}: slowest page {worst[0]!r} is {worst[1] / base:.1f}x the first page")


if __name__ == "__main__":
    main()
