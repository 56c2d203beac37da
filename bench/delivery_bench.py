"""Delivery benchmark: real `mail-proxy serve` processes pushing messages into an SMTP sink.

One command prints, on SQLite and PostgreSQL, side by side with a plain aiosmtplib
loop measured in the same run against the same sink (its own process):

- delivery: N messages enqueued by one client in batches of 100 while the proxy
  delivers; messages/s from the first POST to the last arrival, as a ratio of the
  plain loop on 4 connections measured just before each run (column "plain");
  lost and duplicates are the worst of the runs, not the median;
- enqueue while delivering: messages/s the client got in over the same run (from
  the first POST to the last answer), while delivery went on;
- 1, 2 (or more) proxy processes on one database (the client spreads its batches
  over them): where throughput stops growing with processes;
- the sink offers PIPELINING (RFC 2920) unless ``--no-pipelining``; the plain loop
  (aiosmtplib) never pipelines, the proxy does when offered;
- one message at idle: POST start -> arrival at the sink, without and with run-now,
  against the plain loop's single send (connect, EHLO, MAIL, RCPT, DATA, QUIT) from
  start to arrival;
- PostgreSQL wake-up across processes: a message queued through an API-only process
  (GMP_DISPATCH=false) and sent by an idle other process (its poll set to a minute,
  so only LISTEN/NOTIFY can wake it quickly): POST start -> arrival;
- with an application endpoint: SMTP arrival -> delivery report, each reported once;
- the server's peak memory per N (flat with N).

Every figure is the median of ``--runs`` runs.

    .venv/bin/python bench/delivery_bench.py [--sizes 1000,5000,50000] [--runs 3]
        [--backends sqlite,postgres] [--processes 1,2] [--report-n 5000]
        [--no-pipelining]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import tempfile
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import httpx
from _common import (
    SinkProcess,
    median,
    message,
    percentile,
    pg_schema,
    server_peak_rss_mb,
    setup_tenant,
    wait_until,
)

from mail_proxy.testing import ReportEndpoint, ServedProxy

BATCH = 100
PLAIN_N = 5000  # messages of each plain-loop measurement
LOSS = ("lost", "duplicates")
PIPELINING = True  # the sink offers RFC 2920 PIPELINING, as Postfix, Exim and big providers do
QUIET = {"GMP_LOG_LEVEL": "WARNING"}


def _email(i: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "bench@example.com"
    msg["To"] = f"rcpt{i % 50}@example.com"
    msg["X-Genro-Mail-ID"] = f"plain-{i}"
    msg["Subject"] = f"Benchmark message {i}"
    msg.set_content("Hello from the benchmark.\n" * 4)
    return msg


# -- the plain loop ----------------------------------------------------------------


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


async def _plain_single(sink: SinkProcess, tries: int) -> list[float]:
    """One message at a time, each on a new connection: start -> arrival."""
    latency = []
    for i in range(tries):
        data = _email(i).as_bytes()
        t0 = time.time()
        await aiosmtplib.send(
            data,
            sender="bench@example.com",
            recipients=["x@example.com"],
            hostname="127.0.0.1",
            port=sink.port,
            start_tls=False,
        )
        sink.wait_for(i + 1, timeout=10)
        latency.append(sink.arrivals[i].at - t0)
        await asyncio.sleep(0.05)
    return latency


def baseline(n: int, single_tries: int) -> dict[str, float]:
    with SinkProcess(pipelining=PIPELINING) as sink:
        single = asyncio.run(_plain_single(sink, single_tries))
    with SinkProcess(pipelining=PIPELINING) as sink:
        one = asyncio.run(_plain_loop(sink.port, n, 1))
        four = asyncio.run(_plain_loop(sink.port, n, 4))
    return {
        "plain_1conn": one,
        "plain_4conn": four,
        "single_p50_ms": percentile(single, 50) * 1000,
        "single_p99_ms": percentile(single, 99) * 1000,
    }


# -- databases and processes -------------------------------------------------------


@contextlib.contextmanager
def database(backend: str) -> Iterator[str]:
    """A fresh SQLite file or PostgreSQL schema, removed afterwards."""
    if backend != "sqlite":
        with pg_schema() as dsn:
            yield dsn
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield str(Path(tmp) / "bench.db")


@contextlib.contextmanager
def proxies(db: str, count: int, env: dict[str, str] | None = None) -> Iterator[list[ServedProxy]]:
    """``count`` served processes on one database; the first creates the schema."""
    started: list[ServedProxy] = []
    try:
        for _ in range(count):
            started.append(ServedProxy(db, env=QUIET | (env or {})).start())
        yield started
    finally:
        for proxy in started:
            proxy.stop()


# -- delivery under load -----------------------------------------------------------


def proxy_run(backend: str, n: int, processes: int, with_app: bool) -> dict[str, float]:
    with (
        database(backend) as db,
        SinkProcess(pipelining=PIPELINING) as sink,
        ReportEndpoint() as app,
        proxies(db, processes) as served,
    ):
        setup_tenant(served[0], sink.port, sync_url=app.url if with_app else None)
        clients = [proxy.client(timeout=60) for proxy in served]
        messages = [message(i) for i in range(n)]
        sent_at: dict[str, float] = {}
        t0 = time.time()
        for start, client in zip(range(0, n, BATCH), itertools.cycle(clients), strict=False):
            chunk = messages[start : start + BATCH]
            at = time.time()
            client.post("/commands/add-messages", json={"messages": chunk}).raise_for_status()
            sent_at.update((m["id"], at) for m in chunk)
        enqueued = time.time() - t0
        for client in clients:
            client.close()
        if not sink.wait_for(n, timeout=max(120.0, n / 50)):
            raise RuntimeError(f"only {sink.count()} of {n} arrived")
        arrivals = sink.arrivals
        elapsed = max(a.at for a in arrivals) - t0
        latency = [a.at - sent_at[a.mail_id] for a in arrivals if a.mail_id in sent_at]
        ids = {a.mail_id for a in arrivals}
        result = {
            "msgs_per_s": n / elapsed,
            "enqueue_per_s": n / enqueued,
            "latency_p50_ms": percentile(latency, 50) * 1000,
            "latency_p99_ms": percentile(latency, 99) * 1000,
            "lost": float(len(set(sent_at) - ids)),
            "duplicates": float(len(arrivals) - len(ids)),
        }
        if with_app:
            wait_until(lambda: len(app.sent_at) >= n, timeout=120)
            arrived = {a.mail_id: a.at for a in arrivals}
            report = [app.sent_at[mid] - arrived[mid] for mid in app.sent_at]
            result |= {
                "report_p50_ms": percentile(report, 50) * 1000,
                "report_p99_ms": percentile(report, 99) * 1000,
                "reported": float(len(app.sent_at)),
                "report_duplicates": float(app.sent_duplicates),
            }
        result["server_peak_rss_mb"] = max(server_peak_rss_mb(p) for p in served)
    return result


def paired_run(backend: str, n: int, processes: int) -> dict[str, float]:
    """A proxy run with the plain 4-connection loop measured just before it, into a
    sink of the same kind. The host's speed drifts over a long benchmark (a shared
    VM: the plain loop was seen anywhere from 1,900 to 3,100 msg/s in one hour); the
    ratio of two neighbouring measurements does not drift with it."""
    with SinkProcess(pipelining=PIPELINING) as sink:
        plain = asyncio.run(_plain_loop(sink.port, PLAIN_N, 4))
    result = proxy_run(backend, n, processes, with_app=False)
    return result | {"plain_4conn": plain, "ratio": result["msgs_per_s"] / plain}


# -- one message at a time ---------------------------------------------------------


def _one_at_a_time(
    client: httpx.Client, sink: SinkProcess, tries: int, *, with_run_now: bool, warmup: int = 10
) -> dict[bool, list[float]]:
    """POST start -> arrival for messages sent one after another into an idle proxy,
    by whether run-now followed the POST. ``with_run_now``: every other message is
    followed by run-now, so both kinds see the same moments of a shared VM whose
    speed drifts within seconds (two blocks one after the other did not). The first
    ``warmup`` (connection set-up, first use of each path) are not counted."""
    latency: dict[bool, list[float]] = {False: [], True: []}
    first = sink.count()
    for i in range(warmup + tries * (2 if with_run_now else 1)):
        run_now = with_run_now and i % 2 == 1
        t0 = time.time()
        client.post(
            "/commands/add-messages", json={"messages": [message(i, "idle")]}
        ).raise_for_status()
        if run_now:
            client.post("/commands/run-now").raise_for_status()
        if not sink.wait_for(first + i + 1, timeout=10):
            raise RuntimeError("idle message did not arrive")
        if i >= warmup:
            latency[run_now].append(sink.arrivals[first + i].at - t0)
        time.sleep(0.05)
    return latency


def idle_latency(backend: str, tries: int) -> dict[str, float]:
    with (
        database(backend) as db,
        SinkProcess(pipelining=PIPELINING) as sink,
        proxies(db, 1) as (proxy,),
    ):
        setup_tenant(proxy, sink.port)
        with proxy.client(timeout=10) as client:
            latency = _one_at_a_time(client, sink, tries, with_run_now=True)
    plain, with_run_now = latency[False], latency[True]
    return {
        "idle_p50_ms": percentile(plain, 50) * 1000,
        "idle_p99_ms": percentile(plain, 99) * 1000,
        "run_now_p50_ms": percentile(with_run_now, 50) * 1000,
        "run_now_p99_ms": percentile(with_run_now, 99) * 1000,
    }


def cross_process_wake(tries: int) -> dict[str, float]:
    """PostgreSQL: queued through an API-only process, sent by an idle other one."""
    with (
        database("postgres") as db,
        SinkProcess(pipelining=PIPELINING) as sink,
        proxies(db, 1, {"GMP_DISPATCH": "false"}) as (front,),
        proxies(db, 1, {"GMP_SEND_LOOP_INTERVAL": "60"}),
        front.client(timeout=10) as client,
    ):
        setup_tenant(front, sink.port)
        latency = _one_at_a_time(client, sink, tries, with_run_now=False)[False]
    return {
        "wake_p50_ms": percentile(latency, 50) * 1000,
        "wake_p99_ms": percentile(latency, 99) * 1000,
    }


# -- the report --------------------------------------------------------------------


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: median([run[key] for run in runs]) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,50000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--processes", default="1,2", help="process counts to run each N with")
    parser.add_argument("--idle-tries", type=int, default=100)
    parser.add_argument(
        "--report-n",
        type=int,
        default=5000,
        help="N of the run that also times delivery reports (0: skip)",
    )
    parser.add_argument(
        "--no-pipelining",
        action="store_true",
        help="the sink does not offer PIPELINING (the proxy then waits for each reply)",
    )
    args = parser.parse_args()
    global PIPELINING
    PIPELINING = not args.no_pipelining
    sizes = [int(s) for s in args.sizes.split(",")]
    backends = args.backends.split(",")
    counts = [int(p) for p in args.processes.split(",")]

    base = _medians([baseline(PLAIN_N, args.idle_tries) for _ in range(args.runs)])
    plain1, plain4 = base["plain_1conn"], base["plain_4conn"]
    print(f"sink offers PIPELINING: {'yes' if PIPELINING else 'no'}")
    print(
        f"plain aiosmtplib loop: 1 conn {plain1:.0f} msg/s, 4 conn {plain4:.0f} msg/s; "
        f"single send start->arrival p50 {base['single_p50_ms']:.1f} ms "
        f"p99 {base['single_p99_ms']:.1f} ms"
    )
    print(
        f"{'backend':9} {'procs':>5} {'N':>6} {'msg/s':>6} {'x4conn':>6} {'plain':>6} "
        f"{'enq/s':>6} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'lost':>4} {'dup':>4} {'RSS MiB':>7}"
    )
    for backend in backends:
        for processes in counts:
            for n in sizes:
                runs = [paired_run(backend, n, processes) for _ in range(args.runs)]
                r = _medians(runs)
                # A loss or duplicate in any run counts, not the median run's.
                r["lost"], r["duplicates"] = (max(run[k] for run in runs) for k in LOSS)
                print(
                    f"{backend:9} {processes:>5} {n:>6} {r['msgs_per_s']:>6.0f} "
                    f"{r['ratio']:>6.2f} {r['plain_4conn']:>6.0f} {r['enqueue_per_s']:>6.0f} "
                    f"{r['latency_p50_ms']:>7.0f} {r['latency_p99_ms']:>7.0f} "
                    f"{r['lost']:>4.0f} {r['duplicates']:>4.0f} {r['server_peak_rss_mb']:>7.0f}",
                    flush=True,
                )

    single_p99 = base["single_p99_ms"]
    for backend in backends:
        idle = _medians([idle_latency(backend, args.idle_tries) for _ in range(args.runs)])
        print(
            f"{backend} one message at idle: p50 {idle['idle_p50_ms']:.1f} ms, "
            f"p99 {idle['idle_p99_ms']:.1f} ms (x{idle['idle_p99_ms'] / single_p99:.1f} of the "
            f"plain single send's p99); with run-now p50 {idle['run_now_p50_ms']:.1f} ms, "
            f"p99 {idle['run_now_p99_ms']:.1f} ms",
            flush=True,
        )
    if "postgres" in backends:
        wake = _medians([cross_process_wake(args.idle_tries) for _ in range(args.runs)])
        print(
            f"postgres wake-up across processes (API-only A -> idle B): "
            f"p50 {wake['wake_p50_ms']:.1f} ms, p99 {wake['wake_p99_ms']:.1f} ms"
        )

    if args.report_n:
        for backend in backends:
            med = _medians(
                [proxy_run(backend, args.report_n, 1, with_app=True) for _ in range(args.runs)]
            )
            print(
                f"{backend} reports N={args.report_n}: arrival->report p50 "
                f"{med['report_p50_ms']:.0f} ms p99 {med['report_p99_ms']:.0f} ms, reported "
                f"{med['reported']:.0f}, duplicate reports {med['report_duplicates']:.0f}"
            )


if __name__ == "__main__":
    main()
