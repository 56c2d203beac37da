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
from types import TracebackType
from typing import Self

import httpx

from mail_proxy import __version__
from mail_proxy.client.api import Api
from mail_proxy.client.calls import RetryPolicy
from mail_proxy.client.runners import AsyncRunner, SyncRunner

DEFAULT_URL = "http://localhost:8000"
URL_ENV = "GMP_API_URL"
TOKEN_ENV = "GMP_API_TOKEN"


def _settings(
    url: str | None, token: str | None, timeout: float
) -> tuple[str, dict[str, str], httpx.Timeout]:
    """Base URL, headers and timeout shared by both clients."""
    base = (url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
    if httpx.URL(base).scheme not in ("http", "https"):
        raise ValueError(f"The proxy URL must start with http:// or https://, not {base!r}")
    key = token if token is not None else os.environ.get(TOKEN_ENV)
    headers = {"User-Agent": f"mail-proxy-sdk/{__version__}"}
    if key:
        headers["X-API-Token"] = key
    return base, headers, httpx.Timeout(timeout)


class MailProxyClient(Api[SyncRunner]):
    """A blocking client: ``with MailProxyClient(url, token) as proxy: proxy.status()``.

    ``timeout`` bounds each request (seconds); ``retries`` is how many times a call
    is tried again after a connection failure (see ``mail_proxy.client.calls`` for
    which calls), waiting ``backoff`` seconds and doubling.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        base, headers, limit = _settings(url, token, timeout)
        self.url = base
        self._http = httpx.Client(base_url=base, headers=headers, timeout=limit)
        super().__init__(SyncRunner(self._http, RetryPolicy(retries, backoff)))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncMailProxyClient(Api[AsyncRunner]):
    """The asyncio client: ``async with AsyncMailProxyClient(url, token) as proxy:
    await proxy.status()``. Same arguments and methods as ``MailProxyClient``."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        base, headers, limit = _settings(url, token, timeout)
        self.url = base
        self._http = httpx.AsyncClient(base_url=base, headers=headers, timeout=limit)
        super().__init__(AsyncRunner(self._http, RetryPolicy(retries, backoff)))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
