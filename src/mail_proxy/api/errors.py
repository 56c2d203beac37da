"""The one place where failures become HTTP answers.

Every error body is ``{"ok": false, "error": "...", "detail": "..."}``, ``detail``
repeating ``error`` for clients that read FastAPI's usual key (validation errors
add ``fields``). ``STATUS_OF`` gives each ``MailProxyError`` class its status code
(the exceptions themselves know nothing of HTTP); request validation is 422 with
the failing field locations (never their values, which may hold secrets); anything
unexpected is a 500 ``internal error`` with the traceback in the server log only.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mail_proxy.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    MailProxyError,
    NotFound,
    StorageUnavailable,
    TargetRefused,
    TooLarge,
    Unauthorized,
)
from mail_proxy.schemas import ErrorResponse, FieldError

log = structlog.get_logger(__name__)

STATUS_OF: dict[type[MailProxyError], int] = {
    MailProxyError: 500,
    NotFound: 404,
    Conflict: 409,
    InvalidInput: 400,
    Unauthorized: 401,
    Forbidden: 403,
    TooLarge: 413,
    TargetRefused: 400,
    StorageUnavailable: 503,
}
"""HTTP status of each error class; a subclass not listed takes its nearest listed base."""

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in (
        (400, "The request cannot be carried out as given."),
        (401, "Missing or unknown token, or a token naming another tenant."),
        (403, "A tenant token on an admin-only endpoint."),
        (404, "No such tenant, account or message."),
        (409, "The current state forbids the change."),
        (413, "Request body or batch too large."),
        (422, "Invalid input; `fields` names what failed."),
        (503, "The database is unavailable; retry later."),
    )
}
"""Documented on every operation so that error answers match the OpenAPI schema."""


def status_of(exc: MailProxyError) -> int:
    """The status of the nearest class of ``exc``'s MRO in ``STATUS_OF``.

    The walk (rather than one lookup) lets a new subclass, e.g. ``WrongTenant`` under
    ``Unauthorized``, answer like its base without a line of its own here.
    """
    return next(STATUS_OF[cls] for cls in type(exc).__mro__ if cls in STATUS_OF)


def error_response(status_code: int, error: str, **extra: Any) -> JSONResponse:
    body = ErrorResponse(error=error, detail=error, **extra).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status_code)


async def _mail_proxy_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MailProxyError)
    status = status_of(exc)
    if status >= 500:
        log.warning("request_failed", path=request.url.path, error=type(exc).__name__)
    fields = [FieldError(field=exc.field, message=exc.message)] if exc.field else None
    return error_response(status, exc.message, fields=fields)


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = [FieldError(field=_location(e["loc"]), message=e["msg"]) for e in exc.errors()]
    names = sorted({f.field for f in fields})
    log.info("request_invalid", path=request.url.path, fields=names)
    return error_response(422, "Invalid request: " + ", ".join(names), fields=fields)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    response = error_response(exc.status_code, str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(MailProxyError, _mail_proxy_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)


class UnhandledErrorMiddleware:
    """Turns an unexpected exception into a 500 JSON answer without a trace."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled_error", path=scope.get("path"), method=scope.get("method"))
            if not started:
                await error_response(500, "internal error")(scope, receive, send)
