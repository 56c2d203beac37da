"""Fixtures for the example client: the module itself, a stand-in proxy, the client app.

The stand-in is a real HTTP server on 127.0.0.1 (uvicorn on a socket bound to port 0)
so that failures are real ones: a socket that is bound but not listening refuses
connections exactly like a stopped proxy, and ``answer_status`` makes it answer 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

CLIENT_PATH = Path(__file__).parents[2] / "examples" / "client" / "example_client.py"


def load_example_client() -> ModuleType:
    """Import examples/client/example_client.py, which is a script, not a package module."""
    if "example_client" in sys.modules:
        return sys.modules["example_client"]
    spec = importlib.util.spec_from_file_location("example_client", CLIENT_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["example_client"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def ec() -> ModuleType:
    """The example client module."""
    return load_example_client()


@dataclass
class StandInProxy:
    """Records what the client sends and answers like mail-proxy's two commands."""

    sock: socket.socket
    add_calls: list[dict[str, Any]] = field(default_factory=list)
    run_now_calls: int = 0
    tokens: list[str | None] = field(default_factory=list)
    answer_status: int = 200
    run_now_status: int = 200
    reject: dict[str, str] = field(default_factory=dict)
    run_now_gate: asyncio.Event | None = None
    on_add: Callable[[list[dict[str, Any]]], Awaitable[None]] | None = None
    server: uvicorn.Server | None = None
    task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://{host}:{port}"

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [m for call in self.add_calls for m in call["messages"]]

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/commands/add-messages")
        async def add_messages(request: Request) -> JSONResponse:
            body = await request.json()
            self.tokens.append(request.headers.get("X-API-Token"))
            if self.on_add is not None:
                await self.on_add(body["messages"])
            if self.answer_status != 200:
                return JSONResponse({"ok": False, "error": "boom"}, self.answer_status)
            self.add_calls.append(body)
            ids = [m["id"] for m in body["messages"]]
            rejected = [{"id": i, "reason": self.reject[i]} for i in ids if i in self.reject]
            return JSONResponse(
                {"ok": True, "queued": len(ids) - len(rejected), "rejected": rejected}
            )

        @app.post("/commands/run-now")
        async def run_now() -> JSONResponse:
            self.run_now_calls += 1
            if self.run_now_gate is not None:
                await self.run_now_gate.wait()
            if self.run_now_status != 200:
                return JSONResponse({"ok": False, "error": "boom"}, self.run_now_status)
            return JSONResponse({"ok": True})

        return app

    async def start(self) -> None:
        """Begin answering on the bound socket (until now connections were refused)."""
        config = uvicorn.Config(self.app(), log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self.server is not None and self.task is not None:
            self.server.should_exit = True
            await self.task


@pytest.fixture
async def proxy() -> AsyncIterator[StandInProxy]:
    """A running stand-in proxy."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    stand_in = StandInProxy(sock)
    await stand_in.start()
    yield stand_in
    await stand_in.stop()
    sock.close()


@pytest.fixture
def down_proxy() -> Iterator[StandInProxy]:
    """A stand-in that is not started: its port refuses connections like a stopped proxy."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield StandInProxy(sock)
    sock.close()


@pytest.fixture
def make_config(ec: ModuleType, tmp_path: Path) -> Callable[..., Any]:
    """Config for a client on a temporary database talking to ``url``; overrides as kwargs."""

    def make(url: str, **overrides: Any) -> Any:
        base = ec.Config(
            mail_service_url=url,
            api_token="tok-123",
            recipient_email="rcpt@example.org",
            sender_email="app@example.org",
            sender_name="Example App",
            db_path=str(tmp_path / "client.db"),
            poll_interval=3600,
        )
        return replace(base, **overrides)

    return make


@dataclass
class RunningClient:
    """The example client app inside its lifespan, reached through ASGITransport."""

    http: httpx.AsyncClient
    app: FastAPI
    db_path: str

    @property
    def core(self) -> Any:
        return self.app.state.client

    def rows(self) -> dict[str, sqlite3.Row]:
        """The local table read through a separate connection, as another process would."""
        with sqlite3.connect(self.db_path) as db:
            db.row_factory = sqlite3.Row
            return {r["id"]: r for r in db.execute("SELECT * FROM outbound_emails")}


@pytest.fixture
def start_client(ec: ModuleType) -> Callable[[Any], Any]:
    """Return an async context manager factory running the client app for a config."""

    @contextlib.asynccontextmanager
    async def run(config: Any) -> AsyncIterator[RunningClient]:
        app = ec.create_app(config)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://client") as http:
                yield RunningClient(http, app, config.db_path)

    return run
