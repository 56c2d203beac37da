"""Typed errors of the SDK, each carrying the sentence the proxy answered.

Every failure answer of the API is JSON with ``ok: false`` and ``error`` (a sentence a
person can act on); validation failures add ``fields``, and ``add-messages`` with
nothing queued adds ``rejected``. ``error_for`` turns such an answer into one of
these exceptions, so an application catches ``NotFound`` rather than comparing
status codes. Text from the server is cut to ``MAX_ERROR_CHARS``: a misbehaving
server (or a proxy in between answering an HTML page) cannot flood a log line.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from pydantic import ValidationError as PydanticValidationError

from mail_proxy.schemas import FieldError, RejectedMessage

MAX_ERROR_CHARS = 1000


class MailProxyError(Exception):
    """Any failure of a call: ``status_code`` is the HTTP status (None: no answer)."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class AuthenticationError(MailProxyError):
    """401 (missing, unknown or expired token; another tenant named) or 403 (admin only)."""


class NotFound(MailProxyError):
    """404: the tenant, account or message named does not exist (for this caller)."""


class Conflict(MailProxyError):
    """409: the request contradicts the current state (e.g. a batch under a suspended ``*``)."""


class ValidationError(MailProxyError):
    """400/422 (or 413, too large): the request was refused as written.

    ``fields`` names the failing fields (when the API could tell), ``rejected`` lists
    each refused message with its reason when ``add-messages`` queued none of them.
    """

    def __init__(
        self,
        message: str,
        status_code: int | None = None,
        *,
        fields: list[FieldError] | None = None,
        rejected: list[RejectedMessage] | None = None,
    ) -> None:
        super().__init__(message, status_code)
        self.fields = fields or []
        self.rejected = rejected or []


class ServerUnavailable(MailProxyError):
    """503, or no answer at all (refused, dropped, timed out) once the retries are spent."""


class RequestTimeout(ServerUnavailable):
    """No answer within the client's timeout. A call that changes state may have been
    applied anyway: read the state back before sending it again."""


BY_STATUS: dict[int, type[MailProxyError]] = {
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFound,
    409: Conflict,
    503: ServerUnavailable,
}


def _cut(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + "…"


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _message(response: httpx.Response, body: dict[str, Any]) -> str:
    error = body.get("error") or body.get("detail")
    if isinstance(error, str) and error:
        return _cut(error)
    text = response.text.strip()
    return _cut(f"HTTP {response.status_code}" + (f": {text}" if text else ""))


def _listed(model: type[FieldError] | type[RejectedMessage], items: Any) -> list[Any]:
    """Items of a list the server sent, those that read as ``model`` (others skipped)."""
    found: list[Any] = []
    for item in items if isinstance(items, list) else []:
        try:
            found.append(model.model_validate(item))
        except PydanticValidationError:
            continue
    return found


def error_for(response: httpx.Response) -> MailProxyError:
    """The exception a failure answer (status ≥ 400) stands for."""
    body = _body(response)
    message = _message(response, body)
    status = response.status_code
    if status in (400, 413, 422):
        return ValidationError(
            message,
            status,
            fields=_listed(FieldError, body.get("fields")),
            rejected=_listed(RejectedMessage, body.get("rejected")),
        )
    return BY_STATUS.get(status, MailProxyError)(message, status)
