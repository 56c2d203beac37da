"""The dashboard's route class: failures become pages, not JSON.

The API answers errors in JSON (``api.errors``); a person in a browser gets the
same status and sentence in a page, and a missing session becomes a redirect to
the login page that comes back afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from mail_proxy.api.errors import status_of
from mail_proxy.errors import MailProxyError
from mail_proxy.ui.render import page, security_headers
from mail_proxy.ui.session import LoginRequired

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class UiRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await handle(request)
            except LoginRequired:
                return login_redirect(request)
            except MailProxyError as exc:
                return error_page(request, status_of(exc), str(exc))
            except RequestValidationError as exc:
                return error_page(request, 400, _first_problem(exc))

        return handler


def login_redirect(request: Request) -> Response:
    target = request.url.path if request.method == "GET" else "/ui"
    if request.method == "GET" and request.url.query:
        target += "?" + request.url.query
    headers = security_headers()
    return RedirectResponse(f"/ui/login?next={quote(target, safe='')}", 303, headers=headers)


def error_page(request: Request, status_code: int, message: str) -> Response:
    context = {"title": f"Error {status_code}", "status_code": status_code, "message": message}
    return page(request, "error.html", context, status_code)


def _first_problem(exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "Invalid request"
    where = ".".join(str(part) for part in errors[0].get("loc", ()) if part != "query")
    return f"Invalid {where}: {errors[0].get('msg', 'invalid value')}"
