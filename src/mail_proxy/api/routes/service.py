"""Service endpoints: liveness, status, and Prometheus metrics."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mail_proxy import __version__
from mail_proxy.api.deps import AnyCaller, ControlDep, RuntimeDep, authenticate
from mail_proxy.api.errors import ERROR_RESPONSES
from mail_proxy.errors import Forbidden
from mail_proxy.schemas import InstanceStatusResponse, OkResponse

router = APIRouter(tags=["service"], responses=ERROR_RESPONSES)

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/health", response_model=OkResponse, summary="Liveness (no token)")
async def health() -> OkResponse:
    return OkResponse()


@router.get(
    "/status", response_model=InstanceStatusResponse, summary="Scheduler state and queue size"
)
async def status(
    caller: AnyCaller, control: ControlDep, runtime: RuntimeDep
) -> InstanceStatusResponse:
    """``active`` is the stored instance flag, the same in every process."""
    found = await control.status(caller.tenant_id)
    pollers = runtime.mailbox_pollers
    mailboxes = [] if pollers is None else pollers.status()
    if caller.tenant_id is not None:
        own = f"pec:{caller.tenant_id}/"
        mailboxes = [m for m in mailboxes if str(m["mailbox"]).startswith(own)]
    return InstanceStatusResponse(
        active=found.active,
        scheduler_active=found.active,
        pending=found.pending,
        pending_messages=found.pending,
        uptime_seconds=found.uptime_seconds,
        version=__version__,
        mailboxes=mailboxes,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="No token unless GMP_METRICS_REQUIRE_TOKEN is set (then admin only).",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    if runtime.settings.metrics_require_token:
        caller = await authenticate(request, runtime, request.headers.get("X-API-Token"))
        if not caller.is_admin:
            raise Forbidden("This endpoint needs the admin token")
    await runtime.metrics.mirror_database(runtime.store, time.time())
    return Response(runtime.metrics.render(), media_type=PROMETHEUS_CONTENT_TYPE)
