"""A real ``mail-proxy serve`` for the SDK tests, and each test run with both clients.

``proxy`` is parametrised: ``sync`` is a ``MailProxyClient``; ``async`` is an
``AsyncMailProxyClient`` whose calls run on a real asyncio loop, seen through
``Blocking`` so one test body checks both clients.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mail_proxy.client import AsyncMailProxyClient, MailProxyClient
from mail_proxy.client.runners import Resource
from mail_proxy.testing import RecordingSink, ServedProxy


class Blocking:
    """The async client, each coroutine method run to completion on ``runner``."""

    def __init__(self, target: Any, runner: asyncio.Runner) -> None:
        self._target = target
        self._runner = runner

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if isinstance(value, Resource):
            return Blocking(value, self._runner)
        if callable(value):
            return lambda *args, **kwargs: self._runner.run(value(*args, **kwargs))
        return value


@pytest.fixture
def tenant_id(proxy: Any, sink: RecordingSink) -> str:
    """A fresh tenant with a default account aimed at the recording sink."""
    tenant_id = f"t-{uuid.uuid4().hex[:10]}"
    proxy.tenants.add(id=tenant_id, name="Test")
    proxy.accounts.add(
        id="main",
        tenant_id=tenant_id,
        host="127.0.0.1",
        port=sink.port,
        use_tls=False,
        is_default=True,
        default_from="noreply@acme.test",
    )
    return tenant_id


@pytest.fixture(scope="session")
def sink() -> Iterator[RecordingSink]:
    with RecordingSink() as recording:
        yield recording


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedProxy]:
    folder: Path = tmp_path_factory.mktemp("sdk")
    env = {"GMP_TEST_MODE": "true"}
    with ServedProxy(folder / "q.db", env=env, log_path=folder / "serve.log") as proxy:
        yield proxy


ClientFactory = Callable[..., Any]


@pytest.fixture(params=["sync", "async"])
def connect(request: pytest.FixtureRequest, served: ServedProxy) -> Iterator[ClientFactory]:
    """``connect(token=..., url=..., **options)``: a client of the kind under test."""
    closers: list[Callable[[], None]] = []
    runner = asyncio.Runner()

    def make(token: str | None = served.token, url: str | None = served.url, **kw: Any) -> Any:
        if request.param == "sync":
            client = MailProxyClient(url, token, **kw)
            closers.append(client.close)
            return client
        aclient = AsyncMailProxyClient(url, token, **kw)
        closers.append(lambda: runner.run(aclient.aclose()))
        return Blocking(aclient, runner)

    yield make
    for close in closers:
        close()
    runner.close()


@pytest.fixture
def proxy(connect: ClientFactory) -> Any:
    """An admin client of the kind under test."""
    return connect()
