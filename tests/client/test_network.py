"""Retries and timeouts through a real socket: a TCP relay in front of a real proxy
that misbehaves on its first connections (drops them, never answers, or says 503)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import pytest

from mail_proxy.client import RequestTimeout, ServerUnavailable
from mail_proxy.testing import ServedProxy, free_port

pytestmark = pytest.mark.slow

Mode = Literal["drop", "hang", "503"]
UNAVAILABLE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b'Content-Length: 35\r\nConnection: close\r\n\r\n{"ok": false, "error": "try later"}'
)


class FlakyRelay:
    """Relays TCP to ``target``; the first ``bad`` connections get ``mode`` instead."""

    def __init__(self, target_port: int, mode: Mode, bad: int) -> None:
        self.target_port, self.mode, self.bad = target_port, mode, bad
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            if self.connections <= self.bad:
                self._misbehave(conn)
            else:
                threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _misbehave(self, conn: socket.socket) -> None:
        conn.recv(65536)  # the whole request went out: the server might have applied it
        if self.mode == "hang":
            self._held.append(conn)
            return
        if self.mode == "503":
            conn.sendall(UNAVAILABLE)
        conn.close()

    def _relay(self, conn: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        threading.Thread(target=_pipe, args=(upstream, conn), daemon=True).start()
        _pipe(conn, upstream)

    def close(self) -> None:
        self._listener.close()
        for conn in self._held:
            conn.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with source, sink:
        while data := _recv(source):
            sink.sendall(data)


def _recv(conn: socket.socket) -> bytes:
    try:
        return conn.recv(65536)
    except OSError:
        return b""


@contextmanager
def relay(served: ServedProxy, mode: Mode, bad: int = 1) -> Iterator[FlakyRelay]:
    flaky = FlakyRelay(served.port, mode, bad)
    try:
        yield flaky
    finally:
        flaky.close()


FAST = {"backoff": 0.01}


def test_a_read_is_retried_after_a_dropped_connection(connect: Any, served: ServedProxy) -> None:
    with relay(served, "drop") as flaky:
        assert connect(url=flaky.url, **FAST).status().ok is True
    assert flaky.connections == 2


def test_add_messages_is_retried_after_a_dropped_connection(
    proxy: Any, connect: Any, served: ServedProxy, tenant_id: str
) -> None:
    """Idempotent by message id: a repeat replaces what a first delivery queued."""
    message = {"id": "r1", "to": "ann@example.com", "subject": "Hi", "body": "B"}
    with relay(served, "drop") as flaky:
        assert connect(url=flaky.url, **FAST).messages.add([message], tenant_id).queued == 1
    assert flaky.connections == 2
    assert proxy.messages.list(tenant_id).total == 1


def test_creating_a_tenant_is_not_repeated_after_a_dropped_connection(
    connect: Any, served: ServedProxy
) -> None:
    """Its API key is shown once: a repeat would answer without it."""
    with relay(served, "drop") as flaky, pytest.raises(ServerUnavailable):
        connect(url=flaky.url, **FAST).tenants.add(id="never-created")
    assert flaky.connections == 1


def test_503_on_a_read_is_retried(connect: Any, served: ServedProxy) -> None:
    with relay(served, "503") as flaky:
        assert connect(url=flaky.url, **FAST).health().ok is True
    assert flaky.connections == 2


def test_503_after_the_retries_is_server_unavailable(connect: Any, served: ServedProxy) -> None:
    with relay(served, "503", bad=3) as flaky, pytest.raises(ServerUnavailable, match="try later"):
        connect(url=flaky.url, retries=2, **FAST).health()
    assert flaky.connections == 3


def test_no_answer_in_time_is_a_request_timeout_retried_for_reads(
    connect: Any, served: ServedProxy
) -> None:
    with relay(served, "hang", bad=2) as flaky, pytest.raises(RequestTimeout):
        connect(url=flaky.url, timeout=0.3, retries=1, **FAST).status()
    assert flaky.connections == 2


def test_a_refused_connection_is_server_unavailable_after_the_retries(connect: Any) -> None:
    with pytest.raises(ServerUnavailable, match="ConnectError"):
        connect(url=f"http://127.0.0.1:{free_port()}", retries=2, **FAST).health()
