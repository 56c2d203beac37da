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

from mail_proxy.api.deps import AnyCaller, ControlDep
from mail_proxy.api.errors import ERROR_RESPONSES
from mail_proxy.schemas import RunNowResponse, SuspensionResponse
from mail_proxy.services.control import Suspension

router = APIRouter(tags=["commands"], responses=ERROR_RESPONSES)

TenantQuery = Annotated[str | None, Query(description="Default: the token's tenant.")]
BatchQuery = Annotated[str | None, Query(max_length=64, description="A batch code, or `*`.")]


@router.post(
    "/commands/run-now",
    response_model=RunNowResponse,
    summary="Send and report now",
    description="Admin without tenant_id: every tenant, Do Not Disturb respected. "
    "A tenant (token or tenant_id): only that tenant, and its Do Not Disturb is cleared.",
)
async def run_now(
    caller: AnyCaller, control: ControlDep, tenant_id: TenantQuery = None
) -> RunNowResponse:
    scope = caller.scope(tenant_id)
    await control.run_now(scope)
    return RunNowResponse(tenant_id=scope)


def _answer(done: Suspension) -> SuspensionResponse:
    return SuspensionResponse(
        tenant_id=done.tenant_id,
        batch_code=done.batch_code,
        suspended_batches=done.suspended_batches,
        pending_messages=done.pending,
        active=done.active,
    )


@router.post("/commands/suspend", response_model=SuspensionResponse, summary="Stop sending")
async def suspend(
    caller: AnyCaller,
    control: ControlDep,
    tenant_id: TenantQuery = None,
    batch_code: BatchQuery = None,
) -> SuspensionResponse:
    """A tenant (``batch_code`` omitted or ``*``) or one of its batches; the admin
    without ``tenant_id``: the whole instance."""
    return _answer(await control.suspend(caller.scope(tenant_id), batch_code))


@router.post("/commands/activate", response_model=SuspensionResponse, summary="Resume sending")
async def activate(
    caller: AnyCaller,
    control: ControlDep,
    tenant_id: TenantQuery = None,
    batch_code: BatchQuery = None,
) -> SuspensionResponse:
    """Without ``batch_code`` every suspension of the tenant is cleared; one batch
    cannot be activated while the whole tenant (``*``) is suspended."""
    return _answer(await control.activate(caller.scope(tenant_id), batch_code))
