"""Attachments benchmark: one shared file fetched once, and the memory of a big one.

Case 1: N messages (default 1,000) that share one 1 MB ``http_url`` attachment
(with its ``content_md5``, as the protocol recommends), through a real
``mail-proxy serve`` into an SMTP sink: how many times the file server was asked
for the file (must be 1) and messages/s from the first enqueue to the last
arrival. Same-run baseline: the same N messages carrying the file inline as base64.
Each case runs ``--runs`` times (default 3); medians are printed.

Case 2: one message with a 20 MB ``http_url`` attachment: the server's peak RSS
(VmHWM) after it was delivered, next to the peak of the same server delivering
one message without attachment (same run).

    .venv/bin/python bench/attachments_bench.py [--n 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import SinkProcess, median, message, post_batches, server_peak_rss_mb, setup_tenant

from mail_proxy.testing import FileRoute, FileServer, ServedProxy

MB = 1024 * 1024
ENV = {
    "GMP_LOG_LEVEL": "WARNING",
    "GMP_ATTACHMENT_MAX_MB": "30",
    "GMP_MAX_BODY_BYTES": str(64 * MB),
}
FILE = os.urandom(MB)


def _with_attachment(i: int, spec: dict[str, Any]) -> dict[str, Any]:
    return message(i) | {"attachments": [spec]}


def delivery(n: int, spec: dict[str, Any], batch: int) -> tuple[float, int, float]:
    """(messages/s, file server hits, server peak RSS MiB) for N messages with ``spec``."""
    with tempfile.TemporaryDirectory() as tmp, SinkProcess() as sink, FileServer() as files:
        files.routes["/file.bin"] = FileRoute(body=FILE)
        spec = {**spec, "storage_path": spec["storage_path"].replace("{url}", files.url)}
        with ServedProxy(Path(tmp) / "bench.db", env=ENV) as proxy:
            setup_tenant(proxy, sink.port)
            messages = [_with_attachment(i, spec) for i in range(n)]
            t0 = time.time()
            with proxy.client(timeout=120) as client:
                post_batches(client, messages, size=batch)
            if not sink.wait_for(n, timeout=600):
                raise RuntimeError(f"only {sink.count()} of {n} messages arrived")
            rate = n / (max(a.at for a in sink.arrivals) - t0)
            return rate, files.hits["/file.bin"], server_peak_rss_mb(proxy)


def peak_rss(spec: dict[str, Any] | None, content: bytes) -> float:
    """Peak RSS (MiB) of a server that delivered one message, with ``spec`` or none."""
    with tempfile.TemporaryDirectory() as tmp, SinkProcess() as sink, FileServer() as files:
        files.routes["/big.bin"] = FileRoute(body=content)
        with ServedProxy(Path(tmp) / "bench.db", env=ENV) as proxy:
            setup_tenant(proxy, sink.port)
            one = message(0)
            if spec is not None:
                one |= {"attachments": [{**spec, "storage_path": f"{files.url}/big.bin"}]}
            with proxy.client(timeout=60) as client:
                post_batches(client, [one])
            if not sink.wait_for(1, timeout=120):
                raise RuntimeError("the message did not arrive")
            return server_peak_rss_mb(proxy)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    md5 = hashlib.md5(FILE).hexdigest()
    by_url = {"filename": "report.pdf", "storage_path": "{url}/file.bin", "content_md5": md5}
    inline = {"filename": "report.pdf", "storage_path": "base64:" + base64.b64encode(FILE).decode()}
    url_runs = [delivery(args.n, by_url, batch=100) for _ in range(args.runs)]
    inline_runs = [delivery(args.n, inline, batch=20) for _ in range(args.runs)]
    print(f"{args.n} messages sharing one 1 MB attachment, {args.runs} runs (median):")
    print(
        f"  http_url: {median([r[0] for r in url_runs]):8.1f} msg/s, file fetched "
        f"{[r[1] for r in url_runs]} times, server peak RSS "
        f"{median([r[2] for r in url_runs]):.0f} MiB"
    )
    print(
        f"  inline  : {median([r[0] for r in inline_runs]):8.1f} msg/s (same run baseline), "
        f"server peak RSS {median([r[2] for r in inline_runs]):.0f} MiB"
    )
    big = os.urandom(20 * MB)
    spec = {"filename": "big.bin", "storage_path": ""}
    with_big = [peak_rss(spec, big) for _ in range(args.runs)]
    without = [peak_rss(None, big) for _ in range(args.runs)]
    print("one message with a 20 MB http_url attachment, server peak RSS (median):")
    print(f"  {median(with_big):.0f} MiB, vs {median(without):.0f} MiB for one message without")


if __name__ == "__main__":
    main()
