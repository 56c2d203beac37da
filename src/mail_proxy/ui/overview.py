"""The overview page and its live part, which the page polls every few seconds."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from mail_proxy.api.deps import RuntimeDep, bounce_service
from mail_proxy.domain.models import Status
from mail_proxy.services.dashboard import DashboardService
from mail_proxy.ui import chart
from mail_proxy.ui.render import page
from mail_proxy.ui.routing import UiRoute
from mail_proxy.ui.session import UserDep

router = APIRouter(route_class=UiRoute, include_in_schema=False)
LIVE_SECONDS = 10
RECENT_BOUNCES = 8


@router.get("/ui")
async def overview(request: Request, user: UserDep, runtime: RuntimeDep) -> Response:
    return page(request, "overview.html", await _context(user.tenant_id, runtime))


@router.get("/ui/overview/live")
async def overview_live(request: Request, user: UserDep, runtime: RuntimeDep) -> Response:
    return page(request, "_overview_live.html", await _context(user.tenant_id, runtime))


async def _context(tenant_id: str | None, runtime: RuntimeDep) -> dict[str, object]:
    data = await DashboardService(runtime.store, runtime.clock.now).overview(tenant_id)
    recent = await bounce_service(runtime).bounces(
        tenant_id, is_admin=tenant_id is None, limit=RECENT_BOUNCES
    )
    return {
        "bounces": recent,
        "title": "Overview",
        "data": data,
        "statuses": list(Status),
        "chart": chart.bars(data.per_minute),
        "live_seconds": LIVE_SECONDS,
    }
