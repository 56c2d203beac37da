"""Client sync calls over HTTP with httpx: one pooled client, signed, bounded in time.

One ``httpx.AsyncClient`` serves every tenant so connections to an application are
reused between calls (HTTP/1.1 keep-alive, RFC 9112 section 9.3). Each call is
bounded as a whole by ``sync_timeout`` (not only per read), so an endpoint that
trickles bytes cannot hold a sync slot longer than that; the answer is capped
in size for the same reason. Redirects are not followed: a sync endpoint that
moved is a configuration error to see in the metrics, not to chase with a body.

Before each call the host is resolved and judged by the operator's target policy
(``mail_proxy.network.call_permitted``, shared with attachment fetches), so a
tenant cannot aim the proxy at its own network.
"""

from __future__ import annotations

import asyncio

import httpx

from mail_proxy import __version__
from mail_proxy.domain import signature
from mail_proxy.errors import TargetRefused
from mail_proxy.network import auth_headers, call_permitted, target_policy
from mail_proxy.settings import Settings
from mail_proxy.sync.client import (
    FailureKind,
    SyncClient,
    SyncFailure,
    SyncResult,
    SyncTarget,
    judge_answer,
)

MAX_ANSWER_BYTES = 1024 * 1024


class HttpSyncClient(SyncClient):
    """The production ``SyncClient``: POSTs JSON over one shared connection pool."""

    def __init__(self, settings: Settings) -> None:
        self._timeout = settings.sync_timeout
        self._policy = target_policy(settings)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.sync_timeout),
            limits=httpx.Limits(
                max_connections=max(settings.sync_concurrency * 2, 10),
                max_keepalive_connections=max(settings.sync_concurrency * 2, 10),
            ),
            follow_redirects=False,
            headers={"User-Agent": f"mail-proxy/{__version__}"},
        )

    async def send(self, target: SyncTarget, body: bytes, now: float) -> SyncResult:
        headers = {"Content-Type": "application/json", **auth_headers(target.auth)}
        if target.signing_secret:
            headers[signature.HEADER] = signature.sign(target.signing_secret, int(now), body)
        try:
            async with asyncio.timeout(self._timeout):
                return await self._post_checked(target, body, headers)
        except TargetRefused as exc:
            # A name that did not resolve is a connection failure like any other;
            # only an address the policy refuses is a refusal.
            unresolved = isinstance(exc.__cause__, OSError)
            kind = FailureKind.CONNECTION if unresolved else FailureKind.TARGET_REFUSED
            return SyncFailure(kind, str(exc))
        except (TimeoutError, httpx.TimeoutException):
            return SyncFailure(FailureKind.TIMEOUT, f"no answer within {self._timeout:g} s")
        except httpx.InvalidURL:
            return SyncFailure(FailureKind.INVALID_URL, "the sync URL is not a valid URL")
        except httpx.UnsupportedProtocol:
            return SyncFailure(FailureKind.INVALID_URL, "the sync URL is not http(s)")
        except httpx.HTTPError as exc:
            return SyncFailure(FailureKind.CONNECTION, type(exc).__name__)

    async def _post_checked(
        self, target: SyncTarget, body: bytes, headers: dict[str, str]
    ) -> SyncResult:
        """Resolve and check the host, then POST (see ``call_permitted``)."""

        async def post(url: httpx.URL, pinned: dict[str, str]) -> SyncResult:
            return await self._post(url, body, headers | pinned)

        return await call_permitted(httpx.URL(target.url), self._policy, target.trusted, post)

    async def _post(self, url: httpx.URL, body: bytes, headers: dict[str, str]) -> SyncResult:
        request = self._client.build_request("POST", url, content=body, headers=headers)
        response = await self._client.send(request, stream=True)
        try:
            answer = await _read_capped(response)
        finally:
            await response.aclose()
        if answer is None:
            return SyncFailure(FailureKind.INVALID_ANSWER, "answer too large", response.status_code)
        return judge_answer(response.status_code, answer)

    async def aclose(self) -> None:
        await self._client.aclose()


async def _read_capped(response: httpx.Response) -> bytes | None:
    """The answer body, or None once it passes ``MAX_ANSWER_BYTES``."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
