"""Service endpoints: liveness, status, and Prometheus metrics."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mail_proxy import __version__
from mail_proxy.api.deps import AnyCaller, RuntimeDep, authenticate
from mail_proxy.api.errors import ERROR_RESPONSES
from mail_proxy.domain.models import Status
from mail_proxy.errors import Forbidden
from mail_proxy.runtime import Runtime
from mail_proxy.schemas import InstanceStatusResponse, OkResponse

router = APIRouter(tags=["service"], responses=ERROR_RESPONSES)

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/health", response_model=OkResponse, summary="Liveness (no token)")
async def health() -> OkResponse:
    return OkResponse()


@router.get(
    "/status", response_model=InstanceStatusResponse, summary="Scheduler state and queue size"
)
async def status(caller: AnyCaller, runtime: RuntimeDep) -> InstanceStatusResponse:
    """``active`` is the stored instance flag, the same in every process."""
    counts = await runtime.store.messages.count_by_status(caller.tenant_id)
    pending = sum(n for state, n in counts.items() if Status(state).active)
    active = await runtime.store.control.instance_active()
    return InstanceStatusResponse(
        active=active,
        scheduler_active=active,
        pending=pending,
        pending_messages=pending,
        uptime_seconds=int(time.time() - runtime.started_at),
        version=__version__,
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
    await refresh_gauges(runtime)
    return Response(runtime.metrics.render(), media_type=PROMETHEUS_CONTENT_TYPE)


async def refresh_gauges(runtime: Runtime) -> None:
    """Gauges mirror the database, so read it just before rendering."""
    now = time.time()
    store, metrics = runtime.store, runtime.metrics
    counts = await store.messages.count_by_status()
    metrics.pending.set(sum(n for state, n in counts.items() if Status(state).active))
    oldest = await store.queue.oldest_due_ts(now)
    metrics.oldest_due_age.set(max(0.0, now - oldest) if oldest is not None else 0.0)
    unreported, oldest_event = await store.outbox.unreported_stats()
    metrics.reports_pending.set(unreported)
    metrics.oldest_unreported_age.set(
        max(0.0, now - oldest_event) if oldest_event is not None else 0.0
    )
