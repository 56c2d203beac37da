"""Tenants and their SMTP accounts: create, edit, keys, suspensions, connection tests.

Forms are read into the API's own request models (``TenantIn``, ``AccountIn``) and
go through the same services, so a value the API refuses is refused here with the
same sentence. A new API key or signing secret is shown once, in the answer to the
form that made it, and never again.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ValidationError

from mail_proxy.api.deps import (
    Caller,
    RuntimeDep,
    account_service,
    control_service,
    tenant_service,
)
from mail_proxy.api.routes.accounts import account_from
from mail_proxy.api.routes.tenants import tenant_changes
from mail_proxy.api.targets import requester
from mail_proxy.domain.models import Account
from mail_proxy.errors import Forbidden, InvalidInput, NotFound
from mail_proxy.schemas import AccountIn, TenantIn, TenantUpdate
from mail_proxy.ui.forms import Form
from mail_proxy.ui.render import page, security_headers
from mail_proxy.ui.routing import UiRoute
from mail_proxy.ui.session import PostedDep, UiUser, UserDep

router = APIRouter(route_class=UiRoute, include_in_schema=False)
Model = TypeVar("Model", bound=BaseModel)
NOTICES = {
    "saved": "Saved.",
    "suspended": "Suspended: its messages wait until it is activated.",
    "activated": "Activated: its messages are sent again.",
    "account-saved": "Account saved.",
    "account-deleted": "Account deleted.",
}


@router.get("/ui/tenants")
async def tenants(request: Request, user: UserDep, runtime: RuntimeDep) -> Response:
    if not user.is_admin:
        return _to_tenant(str(user.tenant_id))
    listing = await tenant_service(runtime).listing()
    return page(request, "tenants.html", {"title": "Tenants", "tenants": listing})


@router.post("/ui/tenants")
async def create_tenant(request: Request, posted: PostedDep, runtime: RuntimeDep) -> Response:
    _admin(posted.user.caller)
    form = posted.form
    body = _model(TenantIn, {"id": form.required("id"), "name": form.text("name"),
                            "client_base_url": form.text("client_base_url")})  # fmt: skip
    by = requester(posted.user.caller, runtime.settings)
    saved = await tenant_service(runtime).save(body.id, tenant_changes(body), by)
    if not saved.created:
        raise InvalidInput(f"Tenant {body.id!r} exists already", field="id")
    secrets = {"API key": saved.api_key, "Signing secret": saved.view.tenant.signing_secret}
    return _secrets_page(request, body.id, secrets)


@router.get("/ui/tenants/{tenant_id}")
async def tenant(
    request: Request,
    tenant_id: str,
    user: UserDep,
    runtime: RuntimeDep,
    notice: str = "",
    account: str = "",
) -> Response:
    tenant_id = user.caller.tenant(tenant_id)
    return await _tenant_page(request, user, runtime, tenant_id, NOTICES.get(notice), account)


@router.post("/ui/tenants/{tenant_id}/edit")
async def edit_tenant(tenant_id: str, posted: PostedDep, runtime: RuntimeDep) -> Response:
    tenant_id = posted.user.caller.tenant(tenant_id)
    form = posted.form
    values: dict[str, Any] = {
        "name": form.text("name"),
        "client_base_url": form.text("client_base_url"),
        "client_sync_path": form.text("client_sync_path"),
    }
    if posted.user.is_admin:
        values["active"] = form.flag("active")
    body = _model(TenantUpdate, values)
    by = requester(posted.user.caller, runtime.settings)
    await tenant_service(runtime).update(tenant_id, tenant_changes(body), by)
    return _to_tenant(tenant_id, "saved")


@router.post("/ui/tenants/{tenant_id}/rotate-key")
async def rotate_key(
    request: Request, tenant_id: str, posted: PostedDep, runtime: RuntimeDep
) -> Response:
    tenant_id = posted.user.caller.tenant(tenant_id)
    key = await tenant_service(runtime).rotate_api_key(tenant_id, None)
    return _secrets_page(request, tenant_id, {"API key": key}, logged_out=not posted.user.is_admin)


@router.post("/ui/tenants/{tenant_id}/rotate-secret")
async def rotate_secret(
    request: Request, tenant_id: str, posted: PostedDep, runtime: RuntimeDep
) -> Response:
    tenant_id = posted.user.caller.tenant(tenant_id)
    secret = await tenant_service(runtime).rotate_signing_secret(tenant_id)
    return _secrets_page(request, tenant_id, {"Signing secret": secret})


@router.post("/ui/tenants/{tenant_id}/suspend")
async def suspend(tenant_id: str, posted: PostedDep, runtime: RuntimeDep) -> Response:
    tenant_id = posted.user.caller.tenant(tenant_id)
    await control_service(runtime).suspend(tenant_id, posted.form.text("batch_code"))
    return _to_tenant(tenant_id, "suspended")


@router.post("/ui/tenants/{tenant_id}/activate")
async def activate(tenant_id: str, posted: PostedDep, runtime: RuntimeDep) -> Response:
    tenant_id = posted.user.caller.tenant(tenant_id)
    await control_service(runtime).activate(tenant_id, posted.form.text("batch_code"))
    return _to_tenant(tenant_id, "activated")


@router.post("/ui/tenants/{tenant_id}/accounts")
async def save_account(tenant_id: str, posted: PostedDep, runtime: RuntimeDep) -> Response:
    tenant_id = posted.user.caller.tenant(tenant_id)
    service = account_service(runtime)
    account_id = posted.form.required("id")
    try:
        stored: Account | None = await service.get(tenant_id, account_id)
    except NotFound:
        stored = None
    body = _model(AccountIn, _account_values(posted.form, stored))
    by = requester(posted.user.caller, runtime.settings)
    await service.save(account_from(body, tenant_id), by)
    return _to_tenant(tenant_id, "account-saved")


@router.post("/ui/tenants/{tenant_id}/accounts/{account_id}/delete")
async def delete_account(
    tenant_id: str, account_id: str, posted: PostedDep, runtime: RuntimeDep
) -> Response:
    tenant_id = posted.user.caller.tenant(tenant_id)
    await account_service(runtime).delete(tenant_id, account_id)
    return _to_tenant(tenant_id, "account-deleted")


@router.post("/ui/tenants/{tenant_id}/accounts/{account_id}/test")
async def test_account(
    request: Request, tenant_id: str, account_id: str, posted: PostedDep, runtime: RuntimeDep
) -> Response:
    tenant_id = posted.user.caller.tenant(tenant_id)
    problem = await account_service(runtime).check_connection(tenant_id, account_id)
    result = (account_id, problem)
    return await _tenant_page(request, posted.user, runtime, tenant_id, None, "", result)


async def _tenant_page(
    request: Request,
    user: UiUser,
    runtime: RuntimeDep,
    tenant_id: str,
    notice: str | None,
    edit_account: str,
    test_result: tuple[str, str | None] | None = None,
) -> Response:
    view = await tenant_service(runtime).get(tenant_id)
    accounts = await account_service(runtime).listing(tenant_id)
    editing = next((a for a in accounts if a.id == edit_account), None)
    context = {
        "title": f"Tenant {tenant_id}",
        "t": view.tenant,
        "suspended": view.suspended_batches,
        "accounts": accounts,
        "editing": editing,
        "notice": notice,
        "test_result": test_result,
    }
    return page(request, "tenant.html", context)


def _account_values(form: Form, stored: Account | None) -> dict[str, Any]:
    """The stored account's fields (secrets left out: kept), overlaid with the form's."""
    values: dict[str, Any] = {}
    if stored is not None:
        values = dataclasses.asdict(stored)
        for name in ("password", "imap_password", "tenant_id", "target_trusted",
                     "created_at", "updated_at"):  # fmt: skip
            values.pop(name, None)
        values["limit_behavior"] = str(stored.limit_behavior)
    tls = form.text("use_tls")
    values.update(
        id=form.required("id"),
        host=form.required("host"),
        port=form.integer("port") or 587,
        user=form.text("user"),
        password=form.text("password"),
        use_tls=None if tls in (None, "auto") else tls == "yes",
        limit_per_minute=form.integer("limit_per_minute"),
        limit_per_hour=form.integer("limit_per_hour"),
        limit_per_day=form.integer("limit_per_day"),
        is_default=form.flag("is_default"),
        default_from=form.text("default_from"),
    )
    return values


def _model(model: type[Model], values: dict[str, Any]) -> Model:
    """The API's request model, its first complaint as a 400 naming the field."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first.get("loc", ()))
        raise InvalidInput(f"{field}: {first.get('msg', 'invalid')}", field=field) from None


def _admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise Forbidden("Only the admin creates tenants")


def _to_tenant(tenant_id: str, notice: str | None = None) -> Response:
    suffix = f"?notice={notice}" if notice else ""
    return RedirectResponse(f"/ui/tenants/{tenant_id}{suffix}", 303, headers=security_headers())


def _secrets_page(
    request: Request, tenant_id: str, secrets: dict[str, str | None], *, logged_out: bool = False
) -> Response:
    context = {
        "title": f"New secrets of {tenant_id}",
        "tenant_id": tenant_id,
        "secrets": secrets,
        "logged_out": logged_out,
    }
    return page(request, "secrets.html", context)
