"""ASGI middleware: request guards (size, NUL) and the command (audit) log.

Both are plain ASGI rather than ``BaseHTTPMiddleware`` to keep the hot path of
``add-messages`` cheap. The guard reads the whole body up front (bounded by
``max_body_bytes``), so an oversized request gets 413 whatever its Content-Length
claims. The command log records every state-changing call after the app decided
its status and before the answer leaves, so a client that saw the answer can find
its audit entry.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import parse_qs

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mail_proxy.api.errors import error_response
from mail_proxy.api.redact import mask_secrets

log = structlog.get_logger(__name__)

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NUL_ERROR = "NUL characters are not allowed in requests"
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
MAX_LOGGED_BODY = 1024 * 1024


class RequestGuardMiddleware:
    """413 for request bodies above ``max_bytes``; 400 for NUL characters.

    NUL is refused in the path, the query and JSON strings (``\\u0000``) because
    PostgreSQL text cannot store it and no field of the protocol needs it.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if b"%00" in scope.get("raw_path", b"") or b"%00" in scope.get("query_string", b""):
            await _refuse(scope, receive, send, 400, NUL_ERROR)
            return
        if scope["method"] not in STATE_CHANGING:
            await self.app(scope, receive, send)
            return
        if self._declared_length(scope) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if b"\\u0000" in body and _JSON_NUL.search(body):
            await _refuse(scope, receive, send, 400, NUL_ERROR)
            return
        await self.app(scope, _replay(body, receive), send)

    @staticmethod
    def _declared_length(scope: Scope) -> int:
        for name, value in scope["headers"]:
            if name == b"content-length":
                return int(value) if value.isdigit() else 0
        return 0

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        log.info("request_too_large", path=scope.get("path"), limit=self.max_bytes)
        error = f"Request body larger than the limit of {self.max_bytes} bytes"
        await _refuse(scope, receive, send, 413, error)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, error: str) -> None:
    await error_response(status, error)(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class CommandLogMiddleware:
    """Writes one command-log entry per state-changing request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in STATE_CHANGING:
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})
        chunks: list[bytes] = []

        async def teeing_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        async def logging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                await _record(scope, b"".join(chunks), message["status"])
            await send(message)

        await self.app(scope, teeing_receive, logging_send)


async def _record(scope: Scope, raw: bytes, status: int) -> None:
    runtime = scope["app"].state.runtime
    body = _logged_body(raw)
    state: dict[str, Any] = scope["state"]
    path = scope["path"]
    query = scope.get("query_string", b"").decode("latin-1")
    try:
        await runtime.store.log_command(
            ts=time.time(),
            method=scope["method"],
            path=f"{path}?{query}" if query else path,
            actor=state.get("actor", "anonymous"),
            tenant_id=_tenant_of(scope, query, body, state),
            status_code=status,
            body=body,
        )
    except Exception:
        log.exception("command_log_failed", path=path, method=scope["method"])


def _logged_body(raw: bytes) -> dict[str, Any] | None:
    if not raw:
        return None
    if len(raw) > MAX_LOGGED_BODY:
        return {"omitted": f"{len(raw)} bytes"}
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {"omitted": f"{len(raw)} bytes, not JSON"}
    masked = mask_secrets(parsed)
    return masked if isinstance(masked, dict) else {"value": masked}


def _tenant_of(
    scope: Scope, query: str, body: dict[str, Any] | None, state: dict[str, Any]
) -> str | None:
    """The tenant a call acted on: path, then query, then body, then the token's."""
    candidates: list[Any] = [scope.get("path_params", {}).get("tenant_id")]
    candidates += parse_qs(query).get("tenant_id", [])[:1]
    if body is not None:
        candidates.append(body.get("tenant_id"))
        if scope["path"] == "/tenant":
            candidates.append(body.get("id"))
    candidates.append(state.get("tenant_id"))
    return next((c for c in candidates if isinstance(c, str) and c), None)
