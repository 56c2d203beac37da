"""Attachment test kit: a real HTTP file server on 127.0.0.1 started by the tests.

``FileServer`` serves scripted routes from a thread (``http.server``): a file, a
status, a redirect, a slow answer; it counts requests per path and keeps the
headers and bodies it was sent, so tests check auth and single fetches.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/octet-stream"
    location: str | None = None
    delay: float = 0.0
    auth: str | None = None  # the Authorization header required (401 otherwise)


class FileServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.answer(self, b"")

            def do_POST(self) -> None:
                server.answer(self, self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        path = handler.path
        with self.lock:
            self.hits[path] += 1
            self.requests.append((handler.command, path, dict(handler.headers), body))
        route = self.routes.get(path, Route(status=404))
        time.sleep(route.delay)
        if route.auth is not None and handler.headers.get("Authorization") != route.auth:
            route = Route(status=401)
        handler.send_response(route.status)
        if route.location is not None:
            handler.send_header("Location", route.location)
        handler.send_header("Content-Type", route.content_type)
        handler.send_header("Content-Length", str(len(route.body)))
        handler.end_headers()
        try:
            handler.wfile.write(route.body)
        except OSError:
            return  # the client gave up (timeout tests)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def files() -> Iterator[FileServer]:
    server = FileServer()
    yield server
    server.close()


# The delivery kit (real aiosmtpd servers, a running dispatcher, a queue over a
# real SQLite store), for the end-to-end tests of this folder.
from tests.integration.delivery.conftest import (  # noqa: E402, F401
    ca,
    client_tls,
    queue,
    server_tls,
    smtp_server,
    start_dispatcher,
)
