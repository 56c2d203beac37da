"""The queue: submitting messages, listing them, their history, removing them."""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from mail_proxy.api.deps import AnyCaller, MessagesDep, RuntimeDep, SubmissionServiceDep
from mail_proxy.api.errors import ERROR_RESPONSES
from mail_proxy.api.redact import listing_payload, public_payload
from mail_proxy.domain.models import (
    Event,
    MessageRecord,
    Status,
)
from mail_proxy.domain.text import storable, storable_json
from mail_proxy.ports import MessageFilter
from mail_proxy.schemas import (
    MAX_COUNT,
    AddMessagesRefused,
    AddMessagesRequest,
    AddMessagesResponse,
    CleanupRequest,
    CleanupResponse,
    DeleteMessagesRequest,
    DeleteMessagesResponse,
    EventOut,
    MessageEventsResponse,
    MessageListResponse,
    MessageOut,
    MessageResponse,
    RejectedMessage,
)
from mail_proxy.services.messages import MessagePage
from mail_proxy.settings import Settings

log = structlog.get_logger(__name__)
router = APIRouter(tags=["messages"], responses=ERROR_RESPONSES)

TenantQuery = Annotated[
    str | None, Query(description="Tenant acted on; taken from a tenant token when omitted.")
]


@router.post(
    "/commands/add-messages",
    response_model=AddMessagesResponse,
    summary="Queue a batch of messages",
    description="Each message is checked on its own: bad ones are listed in `rejected`, "
    "the others are queued (200). When none could be queued the answer is 400 with the "
    "same `rejected` list. Resubmitting an unsent id replaces it.",
    responses={400: {"model": AddMessagesRefused}},
)
async def add_messages(
    body: AddMessagesRequest, caller: AnyCaller, submission: SubmissionServiceDep
) -> AddMessagesResponse | JSONResponse:
    result = await submission.submit(
        body.messages,
        token_tenant_id=caller.tenant_id,
        default_priority=body.default_priority,
        actor=caller.actor,
    )
    rejected = [
        RejectedMessage(id=item.id, index=item.index, reason=item.reason)
        for item in result.rejected
    ]
    if rejected and not result.queued:
        return _nothing_queued(rejected)
    return AddMessagesResponse(queued=result.queued, rejected=rejected)


def _nothing_queued(rejected: list[RejectedMessage]) -> JSONResponse:
    """400 with the rejection list: the documented answer when no message was queued."""
    error = f"No message queued: all {len(rejected)} rejected"
    refused = AddMessagesRefused(error=error, detail=error, rejected=rejected)
    return JSONResponse(refused.model_dump(exclude_none=True), status_code=400)


def event_out(event: Event) -> EventOut:
    ts = int(event.ts)
    return EventOut(
        event_id=event.event_id,
        type=str(event.type),
        ts=ts,
        description=storable(event.description) if event.description is not None else None,
        details=storable_json(event.details, limit=None),
        reported_ts=event.reported_ts,
        event_type=str(event.type),
        event_ts=ts,
    )


def message_out(
    record: MessageRecord,
    payload: dict[str, Any],
    *,
    body_truncated: bool = False,
    history: list[Event] | None = None,
    tenant_name: str | None = None,
) -> MessageOut:
    """A record as answered, its payload under both wire names."""
    return MessageOut(
        **_record_fields(record),
        **_error_fields(record),
        tenant_name=tenant_name,
        body_truncated=body_truncated,
        payload=payload,
        message=payload,
        history=None if history is None else [event_out(e) for e in history],
    )


def _record_fields(record: MessageRecord) -> dict[str, Any]:
    return {
        "pk": record.pk,
        "id": storable(record.id),
        "tenant_id": record.tenant_id,
        "account_id": storable(record.account_id),
        "priority": record.priority,
        "status": record.status.value,
        "batch_code": storable(record.batch_code) if record.batch_code is not None else None,
        "attempts": record.attempts,
        "deferred_ts": record.deferred_ts,
        "smtp_ts": record.smtp_ts,
        "sent_ts": record.smtp_ts,
        "reported_ts": record.reported_ts,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }


def _error_fields(record: MessageRecord) -> dict[str, Any]:
    """``error`` only once the message failed for good. A temporary failure stores
    its reason without a time: the record's ``updated_at`` is when it was written,
    so that is ``last_error_ts``."""
    failed = record.status is Status.ERROR
    reason = storable(record.error) if record.error is not None else None
    return {
        "error_ts": record.error_ts if failed else None,
        "error": reason if failed else None,
        "last_error_ts": record.error_ts or (record.updated_at if reason is not None else None),
        "last_error": reason,
    }


@router.get(
    "/messages",
    response_model=MessageListResponse,
    summary="List queue records",
    description="Payloads are summaries (body cut, attachments described, not included); "
    "`GET /messages/{id}` shows one whole. A page stops at GMP_LIST_MAX_BYTES: "
    "`next_offset` fetches the rest.",
)
async def list_messages(
    caller: AnyCaller,
    messages: MessagesDep,
    runtime: RuntimeDep,
    tenant_id: TenantQuery = None,
    active_only: Annotated[bool, Query(description="Only pending and deferred.")] = False,
    status: Status | None = None,
    batch_code: str | None = None,
    account_id: str | None = None,
    include_history: Annotated[bool, Query(description="Each record with its events.")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_COUNT)] = 0,
) -> MessageListResponse:
    """An admin token without ``tenant_id`` lists every tenant's messages."""
    flt = MessageFilter(caller.scope(tenant_id), status, active_only, batch_code, account_id)
    page = await messages.search(flt, limit=limit, offset=offset, with_history=include_history)
    return _page_out(page, runtime.settings, limit, offset)


def _page_out(
    page: MessagePage, settings: Settings, limit: int, offset: int
) -> MessageListResponse:
    shown = _within_size(page, settings)
    following = offset + len(shown)
    return MessageListResponse(
        total=page.total,
        limit=limit,
        offset=offset,
        next_offset=following if following < page.total else None,
        messages=shown,
    )


def _within_size(page: MessagePage, settings: Settings) -> list[MessageOut]:
    """Records summarised, as many as fit in GMP_LIST_MAX_BYTES (at least one)."""
    shown: list[MessageOut] = []
    size = 0
    for record in page.records:
        out = _summary_out(record, page, settings.list_body_chars)
        size += len(out.model_dump_json())
        if shown and size > settings.list_max_bytes:
            break
        shown.append(out)
    return shown


def _summary_out(record: MessageRecord, page: MessagePage, body_chars: int) -> MessageOut:
    payload, cut = listing_payload(public_payload(record.payload), body_chars)
    return message_out(
        record,
        payload,
        body_truncated=cut,
        history=None if page.histories is None else page.histories[record.pk],
        tenant_name=page.tenant_names.get(record.tenant_id),
    )


@router.get(
    "/messages/{message_id}",
    response_model=MessageResponse,
    summary="One queue record, whole",
    description="The payload as queued (attachments included, credentials removed).",
)
async def get_message(
    message_id: str, caller: AnyCaller, messages: MessagesDep, tenant_id: TenantQuery = None
) -> MessageResponse:
    found = await messages.get(caller.tenant(tenant_id), message_id)
    shown = message_out(
        found.record,
        storable_json(public_payload(found.record.payload), limit=None),
        history=found.events,
        tenant_name=found.tenant_name,
    )
    return MessageResponse(**shown.model_dump())


@router.get(
    "/messages/{message_id}/events",
    response_model=MessageEventsResponse,
    summary="A message's event history",
)
async def message_events(
    message_id: str, caller: AnyCaller, messages: MessagesDep, tenant_id: TenantQuery = None
) -> MessageEventsResponse:
    tenant = caller.tenant(tenant_id)
    events = await messages.events(tenant, message_id)
    return MessageEventsResponse(
        tenant_id=tenant, id=message_id, events=[event_out(e) for e in events]
    )


@router.post(
    "/commands/delete-messages",
    response_model=DeleteMessagesResponse,
    summary="Remove messages from the queue",
)
async def delete_messages(
    body: DeleteMessagesRequest,
    caller: AnyCaller,
    messages: MessagesDep,
    tenant_id: TenantQuery = None,
) -> DeleteMessagesResponse:
    result = await messages.delete(caller.tenant(tenant_id), body.ids)
    return DeleteMessagesResponse(
        removed=len(result.removed),
        removed_ids=result.removed,
        not_found=result.not_found,
        unauthorized=result.unauthorized,
    )


@router.post(
    "/commands/cleanup-messages",
    response_model=CleanupResponse,
    summary="Drop finished, reported messages older than a cut-off",
)
async def cleanup_messages(
    caller: AnyCaller,
    messages: MessagesDep,
    tenant_id: TenantQuery = None,
    body: CleanupRequest | None = None,
) -> CleanupResponse:
    """Only sent or failed messages whose reports were acknowledged are removed."""
    age = body.older_than_seconds if body is not None else None
    return CleanupResponse(removed=await messages.cleanup(caller.scope(tenant_id), age))
