"""Fetching attachments over HTTP: bounded in time, size and redirects, under the
operator's target policy.

``http_url`` attachments are GET from the URL the tenant gave; ``endpoint`` ones
are POSTed to the tenant's own application. Either way the tenant steers the
request, so every hop goes through ``mail_proxy.network.call_permitted`` (the same
code the client sync uses): private, loopback, link-local and metadata addresses
are refused unless the operator allowed them or the tenant is ``target_trusted``.

Bounds: ``GMP_ATTACHMENT_FETCH_TIMEOUT`` for connecting and for each read;
``GMP_ATTACHMENT_MAX_MB`` checked against ``Content-Length`` and again while the
body streams in (the body is never buffered past the cap; it is spooled to a
temporary file beyond 1 MB); ``GMP_ATTACHMENT_MAX_REDIRECTS`` hops for GET, each
re-checked, with the credentials dropped when a hop leaves the original origin
(RFC 9110 §15.4 leaves that to the client; sending them on would hand a tenant's
token to whatever host a redirect names). POSTs follow no redirect: a 307 would
resend the body elsewhere.

Status codes (RFC 9110 §15): 2xx is the file; 408, 429 and 5xx mean "later"
(``AttachmentUnavailable``); any other answer, a redirect too many and a refused
address mean "never" (``AttachmentRefused``).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import httpx

from mail_proxy import __version__
from mail_proxy.attachments.errors import AttachmentRefused, AttachmentUnavailable
from mail_proxy.errors import TargetRefused
from mail_proxy.network import call_permitted, target_policy
from mail_proxy.settings import Settings

SPOOL_IN_MEMORY = 1024 * 1024
_LATER = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class Fetched:
    """A file as served: its bytes and the MIME type the server named, if any."""

    content: bytes
    mime_type: str | None


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    url: httpx.URL
    headers: dict[str, str]
    body: bytes | None = None


class HttpFetcher:
    """One pooled client for every attachment fetch of the process."""

    def __init__(self, settings: Settings) -> None:
        self._policy = target_policy(settings)
        self._max = settings.attachment_max_bytes
        self._redirects = settings.attachment_max_redirects
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.attachment_fetch_timeout),
            limits=httpx.Limits(max_connections=settings.attachment_fetch_concurrency * 2),
            follow_redirects=False,
            headers={"User-Agent": f"mail-proxy/{__version__}"},
        )

    async def get(self, url: str, headers: dict[str, str], trusted: bool, name: str) -> Fetched:
        return await self._fetch(_Request("GET", _parse(url, name), headers), trusted, name)

    async def post(
        self, url: str, body: bytes, headers: dict[str, str], trusted: bool, name: str
    ) -> Fetched:
        request = _Request("POST", _parse(url, name), headers, body)
        return await self._fetch(request, trusted, name)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _fetch(self, request: _Request, trusted: bool, name: str) -> Fetched:
        hops = self._redirects if request.method == "GET" else 0
        while True:
            answer = await self._hop(request, trusted, name)
            if isinstance(answer, Fetched):
                return answer
            if hops <= 0:
                raise AttachmentRefused(f"attachment {name}: redirected too many times")
            hops -= 1
            request = _redirected(request, answer)

    async def _hop(self, request: _Request, trusted: bool, name: str) -> Fetched | httpx.URL:
        async def call(url: httpx.URL, pinned: dict[str, str]) -> Fetched | httpx.URL:
            return await self._send(request, url, pinned, name)

        try:
            return await call_permitted(request.url, self._policy, trusted, call)
        except TargetRefused as exc:
            if isinstance(exc.__cause__, OSError):  # did not resolve: DNS may be back soon
                raise AttachmentUnavailable(f"attachment {name}: {exc}") from None
            raise AttachmentRefused(f"attachment {name}: {exc}") from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL):
            raise AttachmentRefused(f"attachment {name}: not a valid http(s) URL") from None
        except httpx.TimeoutException:
            reason = f"attachment {name}: the server did not answer in time"
            raise AttachmentUnavailable(reason) from None
        except httpx.HTTPError as exc:
            reason = f"attachment {name}: connection failed ({type(exc).__name__})"
            raise AttachmentUnavailable(reason) from None

    async def _send(
        self, request: _Request, url: httpx.URL, pinned: dict[str, str], name: str
    ) -> Fetched | httpx.URL:
        built = self._client.build_request(
            request.method, url, content=request.body, headers=request.headers | pinned
        )
        response = await self._client.send(built, stream=True)
        try:
            return await self._answer(request, response, name)
        finally:
            await response.aclose()

    async def _answer(
        self, request: _Request, response: httpx.Response, name: str
    ) -> Fetched | httpx.URL:
        status = response.status_code
        if 200 <= status < 300:
            return Fetched(await self._body(response, name), response.headers.get("content-type"))
        location = response.headers.get("location")
        if status in (301, 302, 303, 307, 308) and location:
            try:
                return request.url.join(location)
            except httpx.InvalidURL:
                reason = f"attachment {name}: redirected to an invalid URL"
                raise AttachmentRefused(reason) from None
        if status >= 500 or status in _LATER:
            raise AttachmentUnavailable(f"attachment {name}: the server answered {status}")
        raise AttachmentRefused(f"attachment {name}: the server answered {status}")

    async def _body(self, response: httpx.Response, name: str) -> bytes:
        """The body, aborted once past the cap; spooled to disk beyond 1 MB so that
        the chunks are not held twice while they are joined."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max:
            raise AttachmentRefused(f"attachment {name}: larger than {self._max} bytes")
        size = 0
        with tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY) as spool:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self._max:
                    raise AttachmentRefused(f"attachment {name}: larger than {self._max} bytes")
                spool.write(chunk)
            spool.seek(0)
            return spool.read()


def _parse(url: str, name: str) -> httpx.URL:
    try:
        return httpx.URL(url)
    except httpx.InvalidURL:
        raise AttachmentRefused(f"attachment {name}: not a valid http(s) URL") from None


def _redirected(request: _Request, target: httpx.URL) -> _Request:
    """The next hop: a GET to ``target``, without credentials when the origin changes."""
    headers = request.headers
    if (target.scheme, target.host, target.port) != (
        request.url.scheme,
        request.url.host,
        request.url.port,
    ):
        headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    return _Request("GET", target, headers)
