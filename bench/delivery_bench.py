"""Delivery benchmark: a real `mail-proxy serve` pushing messages into an SMTP sink.

For each N it enqueues N messages (batches of 100, no rate limits) and measures
messages/s from the first enqueue to the last arrival at the sink, enqueue→arrival
latency p50/p99, and the server's peak memory. With an application endpoint for
the tenant it also times SMTP arrival → delivery report at the application
(p50/p99) and checks every message is reported exactly once.

Same-run baseline: the same messages sent straight to the same sink by a plain
aiosmtplib loop on 1 and on 4 connections (the physical limit). It also measures
idle latency: one message enqueued alone, without run-now, 100 times.

    .venv/bin/python bench/delivery_bench.py [--sizes 1000,5000,50000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
from _common import (
    SinkProcess,
    median,
    message,
    percentile,
    post_batches,
    server_peak_rss_mb,
    setup_tenant,
    wait_until,
)

from mail_proxy.testing import ReportEndpoint, ServedProxy


def _email(i: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "bench@example.com"
    msg["To"] = f"rcpt{i % 50}@example.com"
    msg["Subject"] = f"Benchmark message {i}"
    msg.set_content("Hello from the benchmark.\n" * 4)
    return msg


async def _plain_loop(port: int, n: int, connections: int) -> float:
    """Messages/s of a bare aiosmtplib loop with messages rendered beforehand: the
    limit of the sink and the SMTP exchange alone."""
    rendered = [(f"rcpt{i % 50}@example.com", _email(i).as_bytes()) for i in range(n)]
    counter = iter(rendered)

    async def sender() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await smtp.connect()
        for rcpt, data in counter:
            await smtp.sendmail("bench@example.com", [rcpt], data)
        await smtp.quit()

    t0 = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(connections)))
    return n / (time.perf_counter() - t0)


def baseline(n: int) -> dict[str, float]:
    with SinkProcess() as sink:
        one = asyncio.run(_plain_loop(sink.port, n, 1))
        four = asyncio.run(_plain_loop(sink.port, n, 4))
    return {"plain_1conn": one, "plain_4conn": four}


def proxy_run(n: int, with_app: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, SinkProcess() as sink, ReportEndpoint() as app:
        proxy = ServedProxy(Path(tmp) / "bench.db", env={"GMP_LOG_LEVEL": "WARNING"})
        with proxy:
            setup_tenant(proxy, sink.port, sync_url=app.url if with_app else None)
            messages = [message(i) for i in range(n)]
            t0 = time.time()
            with proxy.client(timeout=60) as client:
                batches = post_batches(client, messages)
            if not sink.wait_for(n, timeout=max(60.0, n / 50)):
                raise RuntimeError(f"only {sink.count()} of {n} arrived")
            elapsed = max(a.at for a in sink.arrivals) - t0
            enqueued_at = {mid: at for at, ids in batches for mid in ids}
            latency = [a.at - enqueued_at[a.mail_id] for a in sink.arrivals if a.mail_id]
            result = {
                "msgs_per_s": n / elapsed,
                "latency_p50_ms": percentile(latency, 50) * 1000,
                "latency_p99_ms": percentile(latency, 99) * 1000,
                "duplicates_at_sink": float(n - len({a.mail_id for a in sink.arrivals})),
            }
            if with_app:
                wait_until(lambda: len(app.sent_at) >= n, timeout=60)
                arrived = {a.mail_id: a.at for a in sink.arrivals}
                report = [app.sent_at[mid] - arrived[mid] for mid in app.sent_at]
                result |= {
                    "report_p50_ms": percentile(report, 50) * 1000,
                    "report_p99_ms": percentile(report, 99) * 1000,
                    "reported": float(len(app.sent_at)),
                    "report_duplicates": float(app.sent_duplicates),
                }
            result["server_peak_rss_mb"] = server_peak_rss_mb(proxy)
    return result


def idle_latency(tries: int, warmup: int = 10) -> dict[str, float]:
    """One message at a time into an idle proxy, without run-now. The first
    ``warmup`` messages (SMTP connection set-up, first use of every code path) are
    sent but not counted: the figure is for a proxy that has been running."""
    with tempfile.TemporaryDirectory() as tmp, SinkProcess() as sink:
        proxy = ServedProxy(Path(tmp) / "bench.db", env={"GMP_LOG_LEVEL": "WARNING"})
        with proxy, proxy.client(timeout=10) as client:
            setup_tenant(proxy, sink.port)
            lat: list[float] = []
            for i in range(warmup + tries):
                t0 = time.time()
                client.post(
                    "/commands/add-messages", json={"messages": [message(i, "idle")]}
                ).raise_for_status()
                if not sink.wait_for(i + 1, timeout=10):
                    raise RuntimeError("idle message did not arrive")
                if i >= warmup:
                    lat.append(sink.arrivals[i].at - t0)
                time.sleep(0.05)
    return {"idle_p50_ms": percentile(lat, 50) * 1000, "idle_p99_ms": percentile(lat, 99) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,50000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--report-n",
        type=int,
        default=5000,
        help="N of the run that also times delivery reports (0: skip)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    base = [baseline(5000) for _ in range(args.runs)]
    plain1 = median([b["plain_1conn"] for b in base])
    plain4 = median([b["plain_4conn"] for b in base])
    print(f"baseline plain aiosmtplib: 1 conn {plain1:.0f} msg/s, 4 conn {plain4:.0f} msg/s")

    results: dict[int, dict[str, float]] = {}
    for n in sizes:
        runs = [proxy_run(n, with_app=False) for _ in range(args.runs)]
        results[n] = {k: median([r[k] for r in runs]) for k in runs[0]}
        r = results[n]
        print(
            f"N={n}: {r['msgs_per_s']:.0f} msg/s (x{r['msgs_per_s'] / plain4:.2f} of 4-conn, "
            f"x{r['msgs_per_s'] / plain1:.2f} of 1-conn), enqueue->arrival "
            f"p50 {r['latency_p50_ms']:.0f} ms p99 {r['latency_p99_ms']:.0f} ms, "
            f"duplicates {r['duplicates_at_sink']:.0f}, peak RSS {r['server_peak_rss_mb']:.0f} MiB"
        )
    if len(sizes) > 1:
        lo, hi = results[min(sizes)], results[max(sizes)]
        print(
            f"flatness: N={max(sizes)} / N={min(sizes)} throughput "
            f"= {hi['msgs_per_s'] / lo['msgs_per_s']:.2f}, peak RSS ratio "
            f"{hi['server_peak_rss_mb'] / lo['server_peak_rss_mb']:.2f}"
        )

    idle = [idle_latency(100) for _ in range(args.runs)]
    print(
        f"idle single message: p50 {median([i['idle_p50_ms'] for i in idle]):.1f} ms, "
        f"p99 {median([i['idle_p99_ms'] for i in idle]):.1f} ms"
    )

    if args.report_n:
        runs = [proxy_run(args.report_n, with_app=True) for _ in range(args.runs)]
        med = {k: median([r[k] for r in runs]) for k in runs[0]}
        print(
            f"reports N={args.report_n}: arrival->report p50 {med['report_p50_ms']:.0f} ms "
            f"p99 {med['report_p99_ms']:.0f} ms, reported {med['reported']:.0f}, "
            f"duplicate reports {med['report_duplicates']:.0f}"
        )


if __name__ == "__main__":
    main()
