"""Commands that steer sending: run-now, suspend and activate.

Suspension is per tenant, either whole (batch code ``*``) or per batch code. An
admin token without ``tenant_id`` suspends or activates the whole instance: the
flag is stored, so every process on the database (and a restart) honours it.
Answers say which batch was acted on, how many of the scope's pending messages
are now held or released (``pending_messages``), and whether sending is on.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from mail_proxy.api.deps import AnyCaller, RuntimeDep
from mail_proxy.api.errors import ERROR_RESPONSES
from mail_proxy.errors import Conflict, NotFound
from mail_proxy.runtime import Runtime
from mail_proxy.schemas import RunNowResponse, SuspensionResponse
from mail_proxy.storage.base import MessageFilter

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
    runtime.dispatcher.run_now()
    runtime.sync_loop.wake(scope)
    return RunNowResponse(tenant_id=scope)


async def _pending(runtime: Runtime, tenant_id: str | None, batch_code: str | None) -> int:
    """Pending (and deferred) messages of the scope: those a suspension holds."""
    batch = None if batch_code == WHOLE_TENANT else batch_code
    flt = MessageFilter(tenant_id=tenant_id, active_only=True, batch_code=batch)
    return await runtime.store.count_messages(flt)


async def _instance_switched(runtime: Runtime, active: bool) -> SuspensionResponse:
    await runtime.store.set_instance_active(active)
    runtime.dispatcher.active = active
    return SuspensionResponse(
        tenant_id=None,
        batch_code=None,
        suspended_batches=[],
        pending_messages=await _pending(runtime, None, None),
        active=active,
    )


async def _tenant_answer(
    runtime: Runtime, tenant_id: str, batch_code: str | None, active: bool
) -> SuspensionResponse:
    acted_on = None if batch_code in (None, WHOLE_TENANT) else batch_code
    return SuspensionResponse(
        tenant_id=tenant_id,
        batch_code=acted_on,
        suspended_batches=await runtime.store.suspensions(tenant_id),
        pending_messages=await _pending(runtime, tenant_id, acted_on),
        active=active,
    )


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
        return await _instance_switched(runtime, False)
    await _known(runtime, scope)
    await runtime.store.suspend(scope, batch_code or WHOLE_TENANT)
    return await _tenant_answer(runtime, scope, batch_code, active=False)


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
        return await _instance_switched(runtime, True)
    await _known(runtime, scope)
    current = await runtime.store.suspensions(scope)
    if batch_code not in (None, WHOLE_TENANT) and WHOLE_TENANT in current:
        raise Conflict(
            f"Tenant {scope!r} is suspended as a whole ('*'): activate the tenant "
            "(without batch_code) before activating a single batch"
        )
    await runtime.store.activate(scope, None if batch_code == WHOLE_TENANT else batch_code)
    runtime.dispatcher.wake()
    return await _tenant_answer(runtime, scope, batch_code, active=True)
