"""How fast the example client answers and how soon its mail arrives (run by hand).

Starts a real SMTP sink, ``mail-proxy serve`` and the example client (both as
subprocesses, the way a user runs them), then makes 100 single
``POST /send-test-email`` calls one after the other and reports p50/p99 of

- the example client's response time (targets: p99 < 50 ms),
- creation → arrival at the SMTP sink (target: p99 < 500 ms),

and, as the same-run baseline, the response time of a direct
``POST /commands/add-messages`` to the proxy, with the client/baseline ratio.

    .venv/bin/python bench/example_client_bench.py [--sends 100] [--pause 0.05]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from mail_proxy.testing import RecordingSink, ServedProxy, free_port

ROOT = Path(__file__).resolve().parents[1]
CLIENT = ROOT / "examples" / "client" / "example_client.py"
SYNC = "/email/mailproxy/mp_endpoint/proxy_sync"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def summary(name: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"{name:<34} p50 {percentile(ms, 50):7.1f} ms   p99 {percentile(ms, 99):7.1f} ms"
        f"   max {max(ms):7.1f} ms   (n={len(ms)})"
    )


def create_tenant(proxy: ServedProxy, client_url: str, sink_port: int) -> dict[str, str]:
    with proxy.client(timeout=10) as admin:
        tenant = (
            admin.post(
                "/tenant",
                json={
                    "id": "bench",
                    "client_base_url": client_url,
                    "client_sync_path": SYNC,
                },
            )
            .raise_for_status()
            .json()
        )
        admin.post(
            "/account",
            json={
                "id": "sink",
                "tenant_id": "bench",
                "host": "127.0.0.1",
                "port": sink_port,
                "use_tls": False,
            },
        ).raise_for_status()
    return {"api_key": tenant["api_key"], "secret": tenant["tenant"]["signing_secret"]}


def write_config(folder: Path, proxy_url: str, port: int, keys: dict[str, str]) -> Path:
    path = folder / "example_config.ini"
    path.write_text(
        f"[mail_service]\nurl = {proxy_url}\napi_token = {keys['api_key']}\n"
        "[test]\nrecipient_email = bench@example.org\nsender_email = app@example.org\n"
        "account_id = sink\n"
        f"[database]\npath = {folder / 'client.db'}\n"
        f"[server]\nhost = 127.0.0.1\nport = {port}\n"
        f"[proxy_sync]\nsigning_secret = {keys['secret']}\n"
    )
    return path


def wait_until_up(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer")


def baseline(proxy: ServedProxy, api_key: str, sends: int, pause: float) -> list[float]:
    """Direct add-messages calls: what the proxy alone costs per single message."""
    times = []
    with httpx.Client(base_url=proxy.url, headers={"X-API-Token": api_key}) as http:
        for i in range(sends):
            message = {
                "id": f"baseline-{i}",
                "to": "bench@example.org",
                "from": "app@example.org",
                "subject": "baseline",
                "body": "x",
                "account_id": "sink",
            }
            started = time.perf_counter()
            http.post("/commands/add-messages", json={"messages": [message]}).raise_for_status()
            times.append(time.perf_counter() - started)
            time.sleep(pause)
    return times


def measure(
    client_url: str, sink: RecordingSink, sends: int, pause: float
) -> tuple[list[float], list[float]]:
    created: dict[str, float] = {}
    responses = []
    with httpx.Client(base_url=client_url) as http:
        for _ in range(sends):
            at = time.time()
            started = time.perf_counter()
            answer = http.post("/send-test-email").raise_for_status().json()
            responses.append(time.perf_counter() - started)
            assert answer["status"] == "success", answer
            created[answer["messages"][0]] = at
            time.sleep(pause)
    deadline = time.monotonic() + 60
    while len(arrived := arrival_times(sink, created)) < sends:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(arrived)} of {sends} mails arrived")
        time.sleep(0.05)
    return responses, [arrived[i] - created[i] for i in created]


def arrival_times(sink: RecordingSink, wanted: dict[str, float]) -> dict[str, float]:
    with sink.lock:
        return {a.mail_id: a.at for a in sink.arrivals if a.mail_id in wanted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=100)
    parser.add_argument(
        "--pause",
        type=float,
        default=0.05,
        help="seconds between two sends: each send alone, as an application sending "
        "one mail at a time (0: back to back, the machine saturated by the work each "
        "send sets off)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, RecordingSink() as sink:
        folder = Path(tmp)
        with ServedProxy(folder / "proxy.db", log_path=folder / "proxy.log") as proxy:
            port = free_port()
            client_url = f"http://127.0.0.1:{port}"
            keys = create_tenant(proxy, client_url, sink.port)
            config = write_config(folder, proxy.url, port, keys)
            client = subprocess.Popen(
                [sys.executable, str(CLIENT), "--config", str(config)],
                cwd=folder,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                wait_until_up(f"{client_url}/stats")
                base = baseline(proxy, keys["api_key"], args.sends, args.pause)
                responses, arrivals = measure(client_url, sink, args.sends, args.pause)
            finally:
                client.terminate()
                client.wait(10)
    print(summary("baseline: proxy add-messages", base))
    print(summary("example client response", responses))
    print(summary("creation -> arrival at sink", arrivals))
    ratio = statistics.median(responses) / statistics.median(base)
    print(f"client response / proxy add-messages (p50 ratio): {ratio:.2f}x")


if __name__ == "__main__":
    main()
