"""Who is using the dashboard: the session cookie, its checks, and CSRF on forms.

Each request resolves the ``gmp_session`` cookie to its stored session and checks
that the token it was opened with still identifies the same caller, with the API's
own rules (``api.deps.identify_tenant``): a rotated key, an expired key or a changed
admin token ends the session. A form (every POST) must carry the session's CSRF
token and, when the browser sends one, an ``Origin`` of this site.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request

from mail_proxy.api.deps import Caller, RuntimeDep, identify_tenant
from mail_proxy.errors import Forbidden, MailProxyError
from mail_proxy.runtime import Runtime
from mail_proxy.services.sessions import SessionService, csrf_token, csrf_valid
from mail_proxy.services.tenants import hash_api_key
from mail_proxy.ui.forms import Form, read_form

SESSION_COOKIE = "gmp_session"


class LoginRequired(Exception):
    """No live session: the browser is sent to the login page."""


@dataclass(frozen=True, slots=True)
class UiUser:
    caller: Caller
    session_id: str

    @property
    def csrf(self) -> str:
        return csrf_token(self.session_id)

    @property
    def is_admin(self) -> bool:
        return self.caller.is_admin

    @property
    def tenant_id(self) -> str | None:
        return self.caller.tenant_id


def session_service(runtime: Runtime) -> SessionService:
    return SessionService(runtime.store, runtime.settings.ui_session_ttl, runtime.clock.now)


async def _user(request: Request, runtime: Runtime, *, changes: bool) -> UiUser:
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        raise LoginRequired()
    record = await session_service(runtime).resolve(session_id)
    if record is None:
        raise LoginRequired()
    if record.tenant_id is None:
        admin = runtime.settings.api_token
        if not admin or not hmac.compare_digest(hash_api_key(admin), record.credential_hash):
            raise LoginRequired()
        caller = Caller()
    else:
        try:
            caller = await identify_tenant(runtime, record.credential_hash, changes=changes)
        except Forbidden:
            raise
        except MailProxyError:
            raise LoginRequired() from None
        if caller.tenant_id != record.tenant_id:
            raise LoginRequired()
    user = UiUser(caller, session_id)
    request.state.ui_user = user
    return user


async def ui_user(request: Request, runtime: RuntimeDep) -> UiUser:
    """The logged-in user of a page (GET)."""
    return await _user(request, runtime, changes=False)


@dataclass(frozen=True, slots=True)
class Posted:
    """A form sent by a logged-in user, its CSRF token checked."""

    user: UiUser
    form: Form


async def posted(request: Request, runtime: RuntimeDep) -> Posted:
    check_origin(request)
    user = await _user(request, runtime, changes=True)
    form = await read_form(request)
    if not csrf_valid(user.session_id, form.text("csrf")):
        raise Forbidden("This form has expired or did not come from this page: reload and retry")
    # Recorded in the command log like an API call (the body is not kept: not JSON).
    request.state.actor = user.caller.actor
    request.state.tenant_id = user.tenant_id
    return Posted(user, form)


def check_origin(request: Request) -> None:
    """A browser names the page that sent a form; another site's is refused."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    if urlsplit(origin).netloc != request.headers.get("host", ""):
        raise Forbidden("Forms are accepted only from this dashboard's own pages")


UserDep = Annotated[UiUser, Depends(ui_user)]
PostedDep = Annotated[Posted, Depends(posted)]
