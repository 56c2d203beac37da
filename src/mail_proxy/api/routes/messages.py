"""The queue: submitting messages, listing them, their history, removing them."""

from __future__ import annotations

import time
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query

from mail_proxy.api.deps import AnyCaller, Caller, RuntimeDep
from mail_proxy.api.errors import ERROR_RESPONSES
from mail_proxy.api.redact import public_payload
from mail_proxy.domain.models import EnqueueOutcome, MessageRecord, NewMessage, Priority, Status
from mail_proxy.domain.priority import InvalidPriority, parse_priority
from mail_proxy.domain.validation import Rejection, ValidationContext, validate_message
from mail_proxy.errors import InvalidInput, NotFound, TooLarge, WrongTenant
from mail_proxy.runtime import Runtime
from mail_proxy.schemas import (
    MAX_COUNT,
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
    RejectedMessage,
)
from mail_proxy.storage.base import MessageFilter

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
    "the others are queued. Resubmitting an unsent id replaces it.",
)
async def add_messages(
    body: AddMessagesRequest, caller: AnyCaller, runtime: RuntimeDep
) -> AddMessagesResponse:
    limit = runtime.settings.max_batch_messages
    if len(body.messages) > limit:
        raise TooLarge(f"Too many messages in one request: {len(body.messages)} > {limit}")
    _refuse_other_tenants(caller, body.messages)
    context = await _context(runtime, caller, body)
    accepted: list[tuple[int, NewMessage]] = []
    rejected: list[RejectedMessage] = []
    for index, raw in enumerate(body.messages):
        checked = validate_message(raw, context)
        if isinstance(checked, Rejection):
            rejected.append(RejectedMessage(id=checked.id, index=index, reason=checked.reason))
        else:
            accepted.append((index, checked))
    queued = await _enqueue(runtime, accepted, rejected)
    if queued:
        runtime.dispatcher.wake()
    if rejected:
        log.info("messages_rejected", actor=caller.actor, rejected=len(rejected), queued=queued)
    rejected.sort(key=lambda item: item.index)
    return AddMessagesResponse(queued=queued, rejected=rejected)


def _refuse_other_tenants(caller: Caller, messages: list[Any]) -> None:
    if caller.tenant_id is None:
        return
    for raw in messages:
        named = raw.get("tenant_id") if isinstance(raw, dict) else None
        if named not in (None, "", caller.tenant_id):
            raise WrongTenant()


async def _context(runtime: Runtime, caller: Caller, body: AddMessagesRequest) -> ValidationContext:
    batch_priority: Priority | None = None
    if body.default_priority is not None:
        try:
            batch_priority = parse_priority(body.default_priority)
        except InvalidPriority as exc:
            raise InvalidInput(str(exc), field="default_priority") from None
    named = {raw.get("tenant_id") for raw in body.messages if isinstance(raw, dict)}
    wanted = {t for t in named if isinstance(t, str) and t} | (
        {caller.tenant_id} if caller.tenant_id else set()
    )
    tenants = {}
    accounts = {}
    for tenant_id in wanted:
        tenant = await runtime.store.get_tenant(tenant_id)
        if tenant is not None:
            tenants[tenant_id] = tenant
            accounts[tenant_id] = await runtime.store.list_accounts(tenant_id)
    return ValidationContext(
        tenants=tenants,
        accounts=accounts,
        token_tenant_id=caller.tenant_id,
        batch_priority=batch_priority,
        instance_priority=runtime.settings.default_priority,
    )


async def _enqueue(
    runtime: Runtime, accepted: list[tuple[int, NewMessage]], rejected: list[RejectedMessage]
) -> int:
    if not accepted:
        return 0
    results = await runtime.store.enqueue([message for _, message in accepted], time.time())
    queued = 0
    for (index, message), result in zip(accepted, results, strict=True):
        if result.outcome is EnqueueOutcome.REJECTED:
            reason = result.reason or "rejected by the queue"
            rejected.append(RejectedMessage(id=message.id, index=index, reason=reason))
        else:
            queued += 1
    return queued


def message_out(record: MessageRecord) -> MessageOut:
    payload = public_payload(record.payload)
    return MessageOut(
        pk=record.pk,
        id=record.id,
        tenant_id=record.tenant_id,
        account_id=record.account_id,
        priority=record.priority,
        status=record.status.value,
        batch_code=record.batch_code,
        attempts=record.attempts,
        deferred_ts=record.deferred_ts,
        smtp_ts=record.smtp_ts,
        sent_ts=record.smtp_ts,
        error_ts=record.error_ts,
        error=record.error,
        reported_ts=record.reported_ts,
        created_at=record.created_at,
        updated_at=record.updated_at,
        payload=payload,
        message=payload,
    )


@router.get("/messages", response_model=MessageListResponse, summary="List queue records")
async def list_messages(
    caller: AnyCaller,
    runtime: RuntimeDep,
    tenant_id: TenantQuery = None,
    active_only: Annotated[bool, Query(description="Only pending and deferred.")] = False,
    status: Status | None = None,
    batch_code: str | None = None,
    account_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_COUNT)] = 0,
) -> MessageListResponse:
    """An admin token without ``tenant_id`` lists every tenant's messages."""
    flt = MessageFilter(
        tenant_id=caller.scope(tenant_id),
        status=status,
        active_only=active_only,
        batch_code=batch_code,
        account_id=account_id,
    )
    records = await runtime.store.list_messages(flt, limit=limit, offset=offset)
    total = await runtime.store.count_messages(flt)
    return MessageListResponse(
        total=total, limit=limit, offset=offset, messages=[message_out(r) for r in records]
    )


@router.get(
    "/messages/{message_id}/events",
    response_model=MessageEventsResponse,
    summary="A message's event history",
)
async def message_events(
    message_id: str, caller: AnyCaller, runtime: RuntimeDep, tenant_id: TenantQuery = None
) -> MessageEventsResponse:
    tenant = caller.tenant(tenant_id)
    if await runtime.store.get_message(tenant, message_id) is None:
        raise NotFound(f"No message {message_id!r} for tenant {tenant!r}")
    events = await runtime.store.message_events(tenant, message_id)
    return MessageEventsResponse(
        tenant_id=tenant,
        id=message_id,
        events=[
            EventOut(
                event_id=e.event_id,
                type=str(e.type),
                ts=e.ts,
                description=e.description,
                details=e.details,
                reported_ts=e.reported_ts,
            )
            for e in events
        ],
    )


@router.post(
    "/commands/delete-messages",
    response_model=DeleteMessagesResponse,
    summary="Remove messages from the queue",
)
async def delete_messages(
    body: DeleteMessagesRequest,
    caller: AnyCaller,
    runtime: RuntimeDep,
    tenant_id: TenantQuery = None,
) -> DeleteMessagesResponse:
    tenant = caller.tenant(tenant_id)
    result = await runtime.store.delete_messages(tenant, body.ids)
    return DeleteMessagesResponse(
        removed=result.removed, not_found=result.not_found, unauthorized=result.unauthorized
    )


@router.post(
    "/commands/cleanup-messages",
    response_model=CleanupResponse,
    summary="Drop finished, reported messages older than a cut-off",
)
async def cleanup_messages(
    caller: AnyCaller,
    runtime: RuntimeDep,
    tenant_id: TenantQuery = None,
    body: CleanupRequest | None = None,
) -> CleanupResponse:
    """Only sent or failed messages whose reports were acknowledged are removed."""
    age = body.older_than_seconds if body and body.older_than_seconds is not None else None
    if age is None:
        age = runtime.settings.delivery_report_retention_seconds
    removed = await runtime.store.cleanup_messages(time.time() - age, caller.scope(tenant_id))
    return CleanupResponse(removed=removed)
