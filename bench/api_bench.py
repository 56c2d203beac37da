"""API acceptance benchmark: how fast a real `mail-proxy serve` takes messages in.

Measures, against a served proxy on SQLite with the dispatcher paused (so only
acceptance is timed): messages/s for 20,000 messages POSTed in batches of 100 by
4 concurrent clients, p50/p99 latency of a batch request and of a single-message
request at idle. The same-run baseline is `GET /health` on the same server: the
cost of an HTTP round trip through the same stack, doing no work.

    .venv/bin/python bench/api_bench.py [--runs 3] [--messages 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _common import median, message, percentile, setup_tenant

from mail_proxy.testing import ServedProxy, free_port


async def _batch_load(url: str, token: str, total: int, clients: int) -> tuple[float, list[float]]:
    batches = [
        [message(i, "b") for i in range(start, min(start + 100, total))]
        for start in range(0, total, 100)
    ]
    queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    latencies: list[float] = []

    async def worker() -> None:
        async with httpx.AsyncClient(
            base_url=url, headers={"X-API-Token": token}, timeout=60
        ) as client:
            while not queue.empty():
                batch = queue.get_nowait()
                t0 = time.perf_counter()
                answer = await client.post("/commands/add-messages", json={"messages": batch})
                latencies.append(time.perf_counter() - t0)
                answer.raise_for_status()
                assert answer.json()["queued"] == len(batch), answer.text

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return total / (time.perf_counter() - t0), latencies


def _single_latencies(proxy: ServedProxy, n: int) -> tuple[list[float], list[float]]:
    singles: list[float] = []
    health: list[float] = []
    with proxy.client(timeout=10) as client:
        for i in range(n):
            t0 = time.perf_counter()
            client.get("/health").raise_for_status()
            health.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            client.post(
                "/commands/add-messages", json={"messages": [message(i, "s")]}
            ).raise_for_status()
            singles.append(time.perf_counter() - t0)
    return singles, health


def one_run(total: int, clients: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        proxy = ServedProxy(
            Path(tmp) / "bench.db",
            env={"GMP_SCHEDULER_ACTIVE": "false", "GMP_LOG_LEVEL": "WARNING"},
        )
        with proxy:
            setup_tenant(proxy, free_port())
            singles, health = _single_latencies(proxy, 300)
            rate, batch_lat = asyncio.run(_batch_load(proxy.url, proxy.token, total, clients))
    return {
        "batch_msgs_per_s": rate,
        "batch_p50_ms": percentile(batch_lat, 50) * 1000,
        "batch_p99_ms": percentile(batch_lat, 99) * 1000,
        "single_p50_ms": percentile(singles, 50) * 1000,
        "single_p99_ms": percentile(singles, 99) * 1000,
        "health_p50_ms": percentile(health, 50) * 1000,
        "health_p99_ms": percentile(health, 99) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    runs = [one_run(args.messages, args.clients) for _ in range(args.runs)]
    for i, run in enumerate(runs, 1):
        print(f"run {i}: " + ", ".join(f"{k}={v:.1f}" for k, v in run.items()))
    med = {key: median([run[key] for run in runs]) for key in runs[0]}
    print(f"median of {args.runs} runs:")
    for key, value in med.items():
        print(f"  {key:18s} {value:10.1f}")
    print(
        "  single/health p50 ratio "
        f"{med['single_p50_ms'] / med['health_p50_ms']:.2f}  (cost of queuing one message "
        "over a bare round trip)"
    )


if __name__ == "__main__":
    main()
