"""Commands that steer sending: run-now, suspend and activate.

Suspension is per tenant, either whole (batch code ``*``) or per batch code. An
admin token without ``tenant_id`` suspends or activates the whole instance (the
dispatcher stops or resumes claiming).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from mail_proxy.api.deps import AnyCaller, RuntimeDep
from mail_proxy.api.errors import ERROR_RESPONSES
from mail_proxy.errors import Conflict, NotFound
from mail_proxy.runtime import Runtime
from mail_proxy.schemas import RunNowResponse, SuspensionResponse

router = APIRouter(tags=["commands"], responses=ERROR_RESPONSES)

WHOLE_TENANT = "*"
TenantQuery = Annotated[str | None, Query(description="Default: the token's tenant.")]
BatchQuery = Annotated[str | None, Query(max_length=64, description="A batch code, or `*`.")]


async def _known(runtime: Runtime, tenant_id: str) -> str:
    if await runtime.store.get_tenant(tenant_id) is None:
        raise NotFound(f"Unknown tenant {tenant_id!r}")
    return tenant_id


@router.post(
    "/commands/run-now",
    response_model=RunNowResponse,
    summary="Send and report now",
    description="Admin without tenant_id: every tenant, Do Not Disturb respected. "
    "A tenant (token or tenant_id): only that tenant, and its Do Not Disturb is cleared.",
)
async def run_now(
    caller: AnyCaller, runtime: RuntimeDep, tenant_id: TenantQuery = None
) -> RunNowResponse:
    scope = caller.scope(tenant_id)
    if scope is not None:
        await _known(runtime, scope)
    runtime.dispatcher.wake()
    runtime.reporter.wake(scope)
    return RunNowResponse(tenant_id=scope)


@router.post("/commands/suspend", response_model=SuspensionResponse, summary="Stop sending")
async def suspend(
    caller: AnyCaller,
    runtime: RuntimeDep,
    tenant_id: TenantQuery = None,
    batch_code: BatchQuery = None,
) -> SuspensionResponse:
    """A tenant (``batch_code`` omitted or ``*``) or one of its batches; the admin
    without ``tenant_id``: the whole instance."""
    scope = caller.scope(tenant_id)
    if scope is None:
        runtime.dispatcher.active = False
        return SuspensionResponse(tenant_id=None, active=False)
    await _known(runtime, scope)
    await runtime.store.suspend(scope, batch_code or WHOLE_TENANT)
    return SuspensionResponse(
        tenant_id=scope, suspended_batches=await runtime.store.suspensions(scope)
    )


@router.post("/commands/activate", response_model=SuspensionResponse, summary="Resume sending")
async def activate(
    caller: AnyCaller,
    runtime: RuntimeDep,
    tenant_id: TenantQuery = None,
    batch_code: BatchQuery = None,
) -> SuspensionResponse:
    """Without ``batch_code`` every suspension of the tenant is cleared; one batch
    cannot be activated while the whole tenant (``*``) is suspended."""
    scope = caller.scope(tenant_id)
    if scope is None:
        runtime.dispatcher.active = True
        runtime.dispatcher.wake()
        return SuspensionResponse(tenant_id=None, active=True)
    await _known(runtime, scope)
    current = await runtime.store.suspensions(scope)
    if batch_code not in (None, WHOLE_TENANT) and WHOLE_TENANT in current:
        raise Conflict(
            f"Tenant {scope!r} is suspended as a whole ('*'): activate the tenant "
            "(without batch_code) before activating a single batch"
        )
    await runtime.store.activate(scope, None if batch_code == WHOLE_TENANT else batch_code)
    runtime.dispatcher.wake()
    return SuspensionResponse(
        tenant_id=scope, suspended_batches=await runtime.store.suspensions(scope)
    )
