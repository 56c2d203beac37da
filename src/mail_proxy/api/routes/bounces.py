"""Bounces and the suppression list: tenant-scoped with a tenant token, every tenant
(and the unmatched bounces) with the admin token. The rules are the service's."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from mail_proxy.api.deps import AnyCaller, BounceServiceDep
from mail_proxy.api.errors import ERROR_RESPONSES
from mail_proxy.ports.returned_mail import BounceRecord, Suppression
from mail_proxy.schemas import (
    MAX_COUNT,
    BounceListResponse,
    BounceOut,
    OkResponse,
    SuppressionAddResponse,
    SuppressionIn,
    SuppressionListResponse,
    SuppressionOut,
)

router = APIRouter(tags=["bounces"], responses=ERROR_RESPONSES)

TenantQuery = Annotated[
    str | None, Query(max_length=128, description="Tenant (admin token: all when omitted).")
]
LimitQuery = Annotated[int, Query(ge=1, le=1000)]
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_COUNT)]


def bounce_out(record: BounceRecord) -> BounceOut:
    return BounceOut(
        id=record.id,
        ts=record.ts,
        mailbox=record.mailbox,
        tenant_id=record.tenant_id,
        message_id=record.message_id,
        matched_by=record.matched_by,
        recipient=record.recipient,
        bounce_type=record.bounce_type,
        bounce_code=record.bounce_code,
        bounce_reason=record.bounce_reason,
    )


def suppression_out(entry: Suppression) -> SuppressionOut:
    return SuppressionOut(
        tenant_id=entry.tenant_id,
        address=entry.address,
        reason=entry.reason,
        bounce_id=entry.bounce_id,
        created_at=entry.created_at,
    )


@router.get("/bounces", response_model=BounceListResponse, summary="Bounces read, newest first")
async def list_bounces(
    caller: AnyCaller,
    service: BounceServiceDep,
    tenant_id: TenantQuery = None,
    unmatched: Annotated[
        bool, Query(description="Only bounces no message matched (admin).")
    ] = False,
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
) -> BounceListResponse:
    found = await service.bounces(
        caller.scope(tenant_id),
        unmatched=unmatched,
        is_admin=caller.is_admin,
        limit=limit,
        offset=offset,
    )
    return BounceListResponse(bounces=[bounce_out(b) for b in found])


@router.get("/suppressions", response_model=SuppressionListResponse, summary="Addresses not mailed")
async def list_suppressions(
    caller: AnyCaller,
    service: BounceServiceDep,
    tenant_id: TenantQuery = None,
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
) -> SuppressionListResponse:
    found = await service.suppressions(caller.scope(tenant_id), limit=limit, offset=offset)
    return SuppressionListResponse(suppressions=[suppression_out(e) for e in found])


@router.post(
    "/suppressions", response_model=SuppressionAddResponse, summary="Stop mailing an address"
)
async def add_suppression(
    body: SuppressionIn, caller: AnyCaller, service: BounceServiceDep
) -> SuppressionAddResponse:
    created = await service.suppress(caller.tenant(body.tenant_id), body.address, body.reason)
    return SuppressionAddResponse(created=created)


@router.delete("/suppressions", response_model=OkResponse, summary="Mail an address again")
async def remove_suppression(
    caller: AnyCaller,
    service: BounceServiceDep,
    address: Annotated[str, Query(min_length=1, max_length=256)],
    tenant_id: TenantQuery = None,
) -> OkResponse:
    await service.unsuppress(caller.tenant(tenant_id), address)
    return OkResponse()


@router.get(
    "/suppressions/export",
    summary="Export the suppression list as JSON lines",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}}},
)
async def export_suppressions(
    caller: AnyCaller, service: BounceServiceDep, tenant_id: TenantQuery = None
) -> StreamingResponse:
    entries = service.export(caller.scope(tenant_id))
    return StreamingResponse(_jsonl(entries), media_type="application/x-ndjson")


async def _jsonl(entries: AsyncIterator[Suppression]) -> AsyncIterator[str]:
    async for entry in entries:
        yield json.dumps(suppression_out(entry).model_dump(), ensure_ascii=False) + "\n"
