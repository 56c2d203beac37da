"""ASGI middleware: request guards (size, NUL, nesting, text) and the command (audit) log.

Both are plain ASGI rather than ``BaseHTTPMiddleware`` to keep the hot path of
``add-messages`` cheap. The guard reads the whole body up front (bounded by
``max_body_bytes``), so an oversized request gets 413 whatever its Content-Length
claims. JSON nested deeper than ``MAX_JSON_DEPTH`` is refused before anything
parses it: Python's recursive parsers would otherwise stop with ``RecursionError``
far from any handler. The command log records every authenticated state-changing
call after the app decided its status and before the answer leaves, so a client
that saw the answer can find its audit entry; anonymous calls are not recorded, so
nobody without a token can grow the table.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any
from urllib.parse import parse_qs

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mail_proxy.api.deps import STATE_CHANGING
from mail_proxy.api.errors import error_response
from mail_proxy.api.redact import mask_secrets
from mail_proxy.domain.text import storable, storable_json
from mail_proxy.domain.validation import unstorable_field

log = structlog.get_logger(__name__)

NUL_ERROR = "NUL characters are not allowed in requests"
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
MAX_JSON_DEPTH = 32
DEPTH_ERROR = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
_NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(b'[]{}"')))
_INNERMOST = re.compile(rb"\[\]|\{\}")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
OFF_LOOP_BYTES = 64 * 1024
PER_MESSAGE_TEXT = frozenset({"/commands/add-messages"})
"""Paths whose items judge their own text (one bad message is rejected, not the batch)."""


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
        refusal = _body_refusal(body, scope["path"])
        if refusal is not None:
            await _refuse(scope, receive, send, 400, refusal)
            return
        await self.app(scope, _replay(body, receive), send)

    @staticmethod
    def _declared_length(scope: Scope) -> int:
        """The Content-Length claimed, 0 when absent or not ASCII digits (the body decides)."""
        for name, value in scope["headers"]:
            if name == b"content-length":
                return int(value) if value.isascii() and value.isdigit() else 0
        return 0

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        log.info("request_too_large", path=scope.get("path"), limit=self.max_bytes)
        error = f"Request body larger than the limit of {self.max_bytes} bytes"
        await _refuse(scope, receive, send, 413, error)


def _body_refusal(body: bytes, path: str) -> str | None:
    """Why a JSON body is refused before parsing, or None.

    Each check costs a byte search unless the body holds what it looks for.
    """
    if b"\\u0000" in body and _JSON_NUL.search(body):
        return NUL_ERROR
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and too_deep(body, MAX_JSON_DEPTH):
        return DEPTH_ERROR
    if path not in PER_MESSAGE_TEXT and _SURROGATE_ESCAPE.search(body):
        return _unstorable_text(body)
    return None


def too_deep(body: bytes, limit: int) -> bool:
    """Whether JSON ``body`` nests arrays/objects deeper than ``limit``.

    Escaped backslashes and quotes are dropped, so that every remaining ``"``
    opens or closes a string; then everything but brackets and quotes; then what
    lies between quotes (brackets inside strings do not nest). Innermost
    ``[]``/``{}`` pairs are then removed once per level: whatever is left after
    ``limit`` rounds was deeper. Each step is a C-level pass: a 1 MiB batch costs
    ~7 ms, and only a few brackets per message survive the first steps.
    """
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = unescaped.translate(None, _NOT_STRUCTURE)
    brackets = b"".join(structure.split(b'"')[::2])
    for _ in range(limit):
        if not brackets:
            return False
        brackets, removed = _INNERMOST.subn(b"", brackets)
        if not removed:
            return False  # unbalanced: the JSON parser will say what is wrong
    return bool(brackets)


def _unstorable_text(body: bytes) -> str | None:
    """A lone UTF-16 surrogate (``"\\ud800"``) cannot be stored as UTF-8: name where."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None  # the route's own parsing reports malformed JSON
    field = unstorable_field(parsed)
    if field is None:
        return None
    return f"Invalid text in {field or 'the body'}: not valid Unicode (lone surrogate)"


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
    """Writes one command-log entry per authenticated state-changing request.

    The body kept is masked (``redact.mask_secrets``), made storable and cut at
    ``max_body_bytes`` with ``"truncated": true``, so one entry stays small
    whatever the request held.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

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
            if message["type"] == "http.response.start" and "actor" in scope["state"]:
                await _record(scope, await self._body(b"".join(chunks)), message["status"])
            await send(message)

        await self.app(scope, teeing_receive, logging_send)

    async def _body(self, raw: bytes) -> dict[str, Any] | None:
        """Parsing and masking a large body takes a while: off the event loop then."""
        if len(raw) > OFF_LOOP_BYTES:
            return await asyncio.to_thread(logged_body, raw, self.max_body_bytes)
        return logged_body(raw, self.max_body_bytes)


async def _record(scope: Scope, body: dict[str, Any] | None, status: int) -> None:
    runtime = scope["app"].state.runtime
    state: dict[str, Any] = scope["state"]
    path = scope["path"]
    query = scope.get("query_string", b"").decode("latin-1")
    try:
        await runtime.store.audit.record(
            ts=time.time(),
            method=scope["method"],
            path=storable(f"{path}?{query}" if query else path),
            actor=state["actor"],
            tenant_id=_tenant_of(scope, query, body, state),
            status_code=status,
            body=body,
        )
    except Exception:
        log.exception("command_log_failed", path=path, method=scope["method"])


def logged_body(raw: bytes, limit: int) -> dict[str, Any] | None:
    """What the command log keeps of a request body: masked, storable, at most ``limit``.

    A body that does not fit is kept as its first ``limit`` bytes of masked JSON text
    under ``head``, with ``truncated`` and the full ``bytes`` count.
    """
    if not raw:
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {"omitted": f"{len(raw)} bytes, not JSON"}
    masked = storable_json(mask_secrets(parsed), limit=None)
    body = masked if isinstance(masked, dict) else {"value": masked}
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    if len(text.encode()) <= limit:
        return body
    head = text.encode()[:limit].decode(errors="ignore")
    return {"truncated": True, "bytes": len(raw), "head": head}


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
    found = next((c for c in candidates if isinstance(c, str) and c), None)
    return None if found is None else storable(found, limit=255)
