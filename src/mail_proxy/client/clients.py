"""``MailProxyClient`` (blocking) and ``AsyncMailProxyClient`` (asyncio).

Both are the same ``Api`` (every method defined once in ``mail_proxy.client.api``)
bound to a different runner. The proxy's address and token come from the arguments
or, when omitted, from ``GMP_API_URL`` and ``GMP_API_TOKEN`` — the latter is the
name the proxy itself reads its admin token from, so a shell set up for ``serve``
is set up for the SDK. Without either the client talks to ``DEFAULT_URL`` (the
proxy's default port) without a token (enough for ``health()``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypedDict, Unpack

import httpx

from mail_proxy import __version__
from mail_proxy.client.api import Api
from mail_proxy.client.calls import RetryPolicy
from mail_proxy.client.runners import AsyncRunner, SyncRunner

DEFAULT_URL = "http://localhost:8000"
URL_ENV = "GMP_API_URL"
TOKEN_ENV = "GMP_API_TOKEN"


class Options(TypedDict, total=False):
    """Keyword options of both clients.

    ``timeout`` bounds each request in seconds (default 10); ``retries`` is how many
    times a call is tried again after a connection failure (default 3; see
    ``mail_proxy.client.calls`` for which calls); ``backoff`` the first wait in
    seconds, doubled at each retry (default 0.5).
    """

    timeout: float
    retries: int
    backoff: float


@dataclass(frozen=True)
class Connection:
    """Where and how both clients connect: resolved once from arguments and environment."""

    url: str
    token: str | None
    timeout: float
    policy: RetryPolicy

    @classmethod
    def resolve(cls, url: str | None, token: str | None, options: Options) -> Connection:
        base = (url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
        if httpx.URL(base).scheme not in ("http", "https"):
            raise ValueError(f"The proxy URL must start with http:// or https://, not {base!r}")
        policy = RetryPolicy(options.get("retries", 3), options.get("backoff", 0.5))
        key = token if token is not None else os.environ.get(TOKEN_ENV)
        return cls(base, key or None, options.get("timeout", 10.0), policy)

    def http_args(self) -> dict[str, Any]:
        """Arguments of ``httpx.Client`` and ``httpx.AsyncClient`` alike."""
        headers = {"User-Agent": f"mail-proxy-sdk/{__version__}"}
        if self.token:
            headers["X-API-Token"] = self.token
        return {"base_url": self.url, "headers": headers, "timeout": httpx.Timeout(self.timeout)}


class MailProxyClient(Api[SyncRunner]):
    """A blocking client: ``with MailProxyClient(url, token) as proxy: proxy.status()``.
    Options (``timeout``, ``retries``, ``backoff``): see ``Options``."""

    def __init__(
        self, url: str | None = None, token: str | None = None, **options: Unpack[Options]
    ) -> None:
        self.connection = Connection.resolve(url, token, options)
        self._http = httpx.Client(**self.connection.http_args())
        super().__init__(SyncRunner(self._http, self.connection.policy))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncMailProxyClient(Api[AsyncRunner]):
    """The asyncio client: ``async with AsyncMailProxyClient(url, token) as proxy:
    await proxy.status()``. Same arguments and methods as ``MailProxyClient``."""

    def __init__(
        self, url: str | None = None, token: str | None = None, **options: Unpack[Options]
    ) -> None:
        self.connection = Connection.resolve(url, token, options)
        self._http = httpx.AsyncClient(**self.connection.http_args())
        super().__init__(AsyncRunner(self._http, self.connection.policy))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
