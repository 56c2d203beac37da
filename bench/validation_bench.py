"""Does one large add-messages batch freeze the proxy? `/health` latency meanwhile.

Against a served proxy on SQLite (dispatcher paused), one client POSTs the largest
batch allowed (default 1,000 messages x 20 recipients = GMP_MAX_BATCH_RECIPIENTS)
with IDN addresses on distinct domains, the costliest case for address checks,
while another thread calls `GET /health` back to back. Reported: the batch's
duration and /health p50/p99/max during it; the baseline is /health p50/p99 on the
same server at idle. Target: every /health answer within 100 ms.

    .venv/bin/python bench/validation_bench.py [--messages 1000] [--recipients 20]
        [--domains 0 (0 = one per address)] [--runs 3]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from _common import TENANT, median, percentile, setup_tenant

from mail_proxy.testing import ServedProxy, free_port


def batch(messages: int, recipients: int, domains: int) -> list[dict[str, Any]]:
    def domain(n: int) -> str:
        return f"bürö{n % domains if domains else n}.example"

    return [
        {
            "id": f"v-{i}",
            "tenant_id": TENANT,
            "to": [f"user{i}.{r}@{domain(i * recipients + r)}" for r in range(recipients)],
            "subject": "Validation benchmark",
            "body": "Hello",
        }
        for i in range(messages)
    ]


class HealthProbe(threading.Thread):
    """Calls /health back to back; keeps (start, latency) of each answer."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=120) as client:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                client.get("/health").raise_for_status()
                self.samples.append((t0, time.perf_counter() - t0))

    def between(self, start: float, end: float) -> list[float]:
        return [lat for t0, lat in self.samples if start <= t0 <= end]


def one_run(messages: int, recipients: int, domains: int) -> dict[str, float]:
    payload = {"messages": batch(messages, recipients, domains)}
    with tempfile.TemporaryDirectory() as tmp:
        proxy = ServedProxy(
            Path(tmp) / "bench.db",
            env={
                "GMP_SCHEDULER_ACTIVE": "false",
                "GMP_LOG_LEVEL": "WARNING",
                "GMP_MAX_BATCH_RECIPIENTS": str(messages * recipients),
            },
        )
        with proxy:
            setup_tenant(proxy, free_port())
            probe = HealthProbe(proxy.url)
            probe.start()
            time.sleep(1.0)
            idle_end = time.perf_counter()
            with proxy.client(timeout=600) as client:
                t0 = time.perf_counter()
                answer = client.post("/commands/add-messages", json=payload)
                t1 = time.perf_counter()
            probe.stop.set()
            probe.join()
            answer.raise_for_status()
            assert answer.json()["queued"] == messages, answer.text[:300]
    idle = probe.between(0, idle_end)
    busy = probe.between(t0, t1)
    return {
        "batch_s": t1 - t0,
        "idle_health_p50_ms": percentile(idle, 50) * 1000,
        "idle_health_p99_ms": percentile(idle, 99) * 1000,
        "busy_health_n": float(len(busy)),
        "busy_health_p50_ms": percentile(busy, 50) * 1000,
        "busy_health_p99_ms": percentile(busy, 99) * 1000,
        "busy_health_max_ms": max(busy, default=float("nan")) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--recipients", type=int, default=20)
    parser.add_argument("--domains", type=int, default=0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [one_run(args.messages, args.recipients, args.domains) for _ in range(args.runs)]
    for i, run in enumerate(runs, 1):
        print(f"run {i}: " + ", ".join(f"{k}={v:.1f}" for k, v in run.items()))
    print(f"median of {args.runs} runs:")
    for key in runs[0]:
        print(f"  {key:20s} {median([run[key] for run in runs]):10.1f}")


if __name__ == "__main__":
    main()
