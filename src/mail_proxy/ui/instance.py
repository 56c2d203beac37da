"""The instance page (admin): settings, suspend/activate, command log, metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from prometheus_client.parser import text_string_to_metric_families

from mail_proxy.api.deps import RuntimeDep, audit_service, control_service, instance_service
from mail_proxy.api.redact import mask_secrets, without_userinfo
from mail_proxy.errors import Forbidden
from mail_proxy.ports import AuditFilter
from mail_proxy.schemas import MASK
from mail_proxy.settings import Settings
from mail_proxy.ui.forms import parse_time
from mail_proxy.ui.render import page, security_headers
from mail_proxy.ui.routing import UiRoute
from mail_proxy.ui.session import PostedDep, UiUser, UserDep

router = APIRouter(route_class=UiRoute, include_in_schema=False)
LOG_PAGE = 100
SECRET_WORDS = ("secret", "password", "token", "key")


@router.get("/ui/instance")
async def instance(
    request: Request,
    user: UserDep,
    runtime: RuntimeDep,
    tenant: str = "",
    endpoint: str = "",
    since: str = "",
    until: str = "",
    offset: int = 0,
) -> Response:
    _admin(user)
    flt = AuditFilter(
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
        tenant_id=tenant.strip() or None,
        endpoint=endpoint.strip() or None,
    )
    entries = await audit_service(runtime).entries(flt, limit=LOG_PAGE, offset=max(0, offset))
    stored = await instance_service(runtime).get()
    context = {
        "title": "Instance",
        "active": stored.active,
        "name": stored.name,
        "bounce": mask_secrets(stored.bounce) if stored.bounce else None,
        "settings": shown_settings(runtime.settings),
        "entries": entries,
        "log_filters": {"tenant": tenant, "endpoint": endpoint, "since": since, "until": until},
        "offset": max(0, offset),
        "page_size": LOG_PAGE,
        "metrics": metric_totals(runtime.metrics.render()),
    }
    return page(request, "instance.html", context)


@router.post("/ui/instance/suspend")
async def suspend(posted: PostedDep, runtime: RuntimeDep) -> Response:
    _admin(posted.user)
    await control_service(runtime).suspend(None, None)
    return RedirectResponse("/ui/instance", 303, headers=security_headers())


@router.post("/ui/instance/activate")
async def activate(posted: PostedDep, runtime: RuntimeDep) -> Response:
    _admin(posted.user)
    await control_service(runtime).activate(None, None)
    return RedirectResponse("/ui/instance", 303, headers=security_headers())


def shown_settings(settings: Settings) -> list[tuple[str, str]]:
    """Every setting as ``GMP_NAME``, a secret only as whether it is set, and a
    database URL without its password."""
    shown = []
    for name, value in sorted(settings.model_dump().items()):
        if any(word in name for word in SECRET_WORDS):
            text = MASK if value else "(not set)"
        elif isinstance(value, str) and "://" in value:
            text = without_userinfo(value)
        else:
            text = "" if value is None else str(value)
        shown.append((f"GMP_{name.upper()}", text))
    return shown


def metric_totals(exposition: bytes) -> list[tuple[str, str, float]]:
    """Each metric family of this process summed over its labels: name, help, total."""
    totals = []
    for family in text_string_to_metric_families(exposition.decode()):
        if family.type == "histogram":
            samples = [s for s in family.samples if s.name.endswith("_count")]
        else:
            samples = [s for s in family.samples if not s.name.endswith("_created")]
        totals.append((family.name, family.documentation, sum(s.value for s in samples)))
    return totals


def _admin(user: UiUser) -> None:
    if not user.is_admin:
        raise Forbidden("The instance page is the admin's")
