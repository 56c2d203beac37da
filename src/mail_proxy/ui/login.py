"""Logging in and out, and ``/`` leading a browser to the dashboard."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from mail_proxy import __version__
from mail_proxy.api.deps import RuntimeDep, identify
from mail_proxy.errors import Unauthorized
from mail_proxy.ui.forms import read_form
from mail_proxy.ui.render import page, security_headers
from mail_proxy.ui.routing import UiRoute
from mail_proxy.ui.session import SESSION_COOKIE, PostedDep, check_origin, session_service

router = APIRouter(route_class=UiRoute, include_in_schema=False)
COOKIE_PATH = "/ui"


@router.get("/")
async def root(request: Request) -> Response:
    """A browser goes to the dashboard; a JSON client learns where things are."""
    if "text/html" in request.headers.get("accept", ""):
        return RedirectResponse("/ui", 303)
    return JSONResponse(
        {"ok": True, "service": "mail-proxy", "version": __version__, "dashboard": "/ui",
         "api_docs": "/docs"}
    )  # fmt: skip


@router.get("/ui/login")
async def login_form(request: Request, next: str = "/ui") -> Response:
    return _login_page(request, safe_next(next), None)


@router.post("/ui/login")
async def login(request: Request, runtime: RuntimeDep) -> Response:
    check_origin(request)
    form = await read_form(request)
    target = safe_next(form.text("next"))
    token = form.text("token")
    try:
        caller = await identify(runtime, token, changes=False)
    except Unauthorized:
        return _login_page(request, target, "That token is not the admin token nor a valid "
                           "tenant key.", 401)  # fmt: skip
    assert token is not None  # identify refuses a missing token
    opened = await session_service(runtime).open(caller.tenant_id, token)
    response = RedirectResponse(target, 303, headers=security_headers())
    response.set_cookie(
        SESSION_COOKIE,
        opened.session_id,
        max_age=runtime.settings.ui_session_ttl,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/ui/logout")
async def logout(posted: PostedDep, runtime: RuntimeDep) -> Response:
    await session_service(runtime).close(posted.user.session_id)
    response = RedirectResponse("/ui/login", 303, headers=security_headers())
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response


def safe_next(target: str | None) -> str:
    """Only a dashboard path: a login never sends the browser to another site."""
    if not target or not target.startswith("/ui") or "//" in target or "\\" in target:
        return "/ui"
    return target


def _login_page(
    request: Request, target: str, error: str | None, status_code: int = 200
) -> Response:
    context = {"title": "Log in", "next": target, "error": error}
    return page(request, "login.html", context, status_code)
