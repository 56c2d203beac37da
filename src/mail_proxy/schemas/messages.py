"""Wire models of the queue: submitting messages, listing them, their events, commands.

``MessageIn`` documents one message of ``POST /commands/add-messages``; the API
checks each message on its own (so one bad message never rejects its neighbours),
which is why ``AddMessagesRequest.messages`` is validated item by item by the
domain rather than by this model.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, WithJsonSchema
from pydantic.config import JsonDict

from mail_proxy.domain.models import AuthMethod
from mail_proxy.schemas.common import MAX_TS, ErrorResponse, examples

PriorityValue = int | Literal["immediate", "high", "medium", "low"]

_MESSAGE_EXAMPLE: JsonDict = {
    "id": "invoice-2024-0042",
    "account_id": "smtp-main",
    "from": "Billing <billing@acme.example>",
    "to": ["Ann Lee <ann@client.example>"],
    "cc": "boss@client.example, audit@acme.example",
    "subject": "Your invoice",
    "body": "<p>Please find your invoice attached.</p>",
    "content_type": "html",
    "priority": "high",
    "batch_code": "invoices-2024-05",
    "attachments": [{"filename": "invoice.pdf", "storage_path": "base64:JVBERi0xLjQK"}],
}


class AttachmentAuth(BaseModel):
    method: AuthMethod = AuthMethod.NONE
    token: str | None = None
    user: str | None = None
    password: str | None = None


class AttachmentIn(BaseModel):
    """Where an attachment comes from. Only inline ``base64`` is delivered today;
    other fetch modes are accepted and stored as specs."""

    filename: str = Field(min_length=1)
    storage_path: str = Field(
        min_length=1, description="`base64:<data>`, an http(s) URL, an absolute path or a key."
    )
    fetch_mode: Literal["base64", "http_url", "filesystem", "endpoint"] | None = Field(
        default=None, description="Inferred from storage_path when absent."
    )
    mime_type: str | None = None
    content_md5: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{32}$")
    auth: AttachmentAuth | None = None

    model_config = examples({"filename": "report.txt", "storage_path": "base64:aGVsbG8="})


class MessageIn(BaseModel):
    """One message to queue. Unknown fields are ignored."""

    id: str = Field(description="The client's key; resubmitting an unsent id replaces it.")
    tenant_id: str | None = Field(default=None, description="Taken from a tenant token.")
    account_id: str | None = Field(default=None, description="Default: the tenant's account.")
    from_: str | None = Field(
        default=None, alias="from", description="Default: the account's default sender."
    )
    from_name: str | None = Field(default=None, description="Display name for `from`.")
    to: list[str] | str = Field(description="A list or a comma-separated string.")
    cc: list[str] | str | None = None
    bcc: list[str] | str | None = None
    reply_to: list[str] | str | None = None
    return_path: str | None = Field(default=None, description="Envelope sender (MAIL FROM).")
    subject: str
    body: str | None = None
    content_type: Literal["plain", "html"] | None = None
    html: bool | None = Field(default=None, description="`true` is the same as content_type html.")
    headers: dict[str, str] | None = Field(default=None, description="Extra header fields.")
    message_id: str | None = None
    priority: PriorityValue | None = Field(default=None, description="0-3 or a label.")
    deferred_ts: int | None = Field(
        default=None, ge=0, le=MAX_TS, description="Do not send before (Unix s)."
    )
    batch_code: str | None = Field(default=None, max_length=64)
    attachments: list[AttachmentIn] | None = None

    model_config = examples(_MESSAGE_EXAMPLE)


SubmittedMessage = Annotated[Any, WithJsonSchema({"$ref": "#/components/schemas/MessageIn"})]


class AddMessagesRequest(BaseModel):
    messages: list[SubmittedMessage] = Field(description="The batch; each checked on its own.")
    default_priority: PriorityValue | None = Field(
        default=None, description="Priority of messages that give none (else the instance's)."
    )

    model_config = examples({"messages": [_MESSAGE_EXAMPLE], "default_priority": 2})


class RejectedMessage(BaseModel):
    id: str | None = Field(description="The message's id, or null when it had none.")
    index: int = Field(description="Position of the message in the submitted list.")
    reason: str

    model_config = examples({"id": "m-7", "index": 6, "reason": "invalid address in to: 'bob@'"})


class AddMessagesResponse(BaseModel):
    ok: Literal[True] = True
    queued: int = Field(description="Messages queued or replaced.")
    rejected: list[RejectedMessage]

    model_config = examples(
        {
            "ok": True,
            "queued": 1,
            "rejected": [{"id": "m-2", "index": 1, "reason": "missing field: to"}],
        }
    )


class EventOut(BaseModel):
    event_id: int
    type: str = Field(description="sent, deferred, error, bounce or pec_*.")
    ts: int
    description: str | None
    details: dict[str, Any] | None
    reported_ts: int | None
    event_type: str = Field(description="Same as type (the reference's name).")
    event_ts: int = Field(description="Same as ts (the reference's name).")

    model_config = examples(
        {
            "event_id": 7,
            "type": "sent",
            "ts": 1717000000,
            "description": None,
            "details": None,
            "reported_ts": None,
            "event_type": "sent",
            "event_ts": 1717000000,
        }
    )


class AddMessagesRefused(ErrorResponse):
    """add-messages when no message could be queued: 400 with every rejection
    (a 400 about the request itself, e.g. ``default_priority``, has none)."""

    queued: Literal[0] = 0
    rejected: list[RejectedMessage] = Field(default_factory=list)

    model_config = examples(
        {
            "ok": False,
            "error": "No message queued: all 1 rejected",
            "detail": "No message queued: all 1 rejected",
            "queued": 0,
            "rejected": [{"id": "m-1", "index": 0, "reason": "missing field: to"}],
        }
    )


class MessageOut(BaseModel):
    """A queue record. ``sent_ts`` repeats ``smtp_ts`` and ``message`` repeats ``payload``
    so that clients written for either name work.

    ``error``/``error_ts`` are set only once the message failed for good; the reason
    of the last temporary failure of a message still being retried is
    ``last_error``/``last_error_ts``. In a listing the payload is a summary: the
    body is cut to ``GMP_LIST_BODY_CHARS`` (``body_truncated``) and attachments
    show name, size, hash and fetch mode, never their content.
    """

    pk: int
    id: str
    tenant_id: str
    tenant_name: str | None = Field(default=None, description="The tenant's display name.")
    account_id: str
    priority: int
    status: Literal["pending", "deferred", "sent", "error"]
    batch_code: str | None
    attempts: int
    deferred_ts: int | None
    smtp_ts: int | None
    sent_ts: int | None
    error_ts: int | None
    error: str | None
    last_error_ts: int | None = Field(description="Last failure, temporary or final.")
    last_error: str | None
    reported_ts: int | None
    created_at: int
    updated_at: int
    body_truncated: bool = Field(description="The payload's body was cut for the listing.")
    payload: dict[str, Any] = Field(description="The message as queued, secrets removed.")
    message: dict[str, Any] = Field(description="Same as payload.")
    history: list[EventOut] | None = Field(
        default=None, description="The message's events, with include_history=true."
    )

    model_config = examples(
        {
            "pk": 1,
            "id": "m-1",
            "tenant_id": "acme",
            "tenant_name": "ACME Corp.",
            "account_id": "smtp-main",
            "priority": 2,
            "status": "sent",
            "batch_code": None,
            "attempts": 1,
            "deferred_ts": None,
            "smtp_ts": 1717000000,
            "sent_ts": 1717000000,
            "error_ts": None,
            "error": None,
            "last_error_ts": None,
            "last_error": None,
            "reported_ts": 1717000005,
            "created_at": 1716999990,
            "updated_at": 1717000000,
            "body_truncated": False,
            "payload": {"id": "m-1", "to": ["ann@client.example"], "subject": "Hi"},
            "message": {"id": "m-1", "to": ["ann@client.example"], "subject": "Hi"},
            "history": None,
        }
    )


class MessageListResponse(BaseModel):
    ok: Literal[True] = True
    total: int = Field(description="Records matching the filter (all pages).")
    limit: int
    offset: int
    next_offset: int | None = Field(
        description="Offset of the next page; null on the last one. A page may hold "
        "fewer than `limit` records when GMP_LIST_MAX_BYTES was reached."
    )
    messages: list[MessageOut]

    model_config = examples(
        {"ok": True, "total": 0, "limit": 100, "offset": 0, "next_offset": None, "messages": []}
    )


class MessageResponse(MessageOut):
    """``GET /messages/{id}``: one record with its whole payload (secrets removed)."""

    ok: Literal[True] = True


class MessageEventsResponse(BaseModel):
    ok: Literal[True] = True
    tenant_id: str
    id: str
    events: list[EventOut]

    model_config = examples({"ok": True, "tenant_id": "acme", "id": "m-1", "events": []})


class DeleteMessagesRequest(BaseModel):
    ids: list[str] = Field(description="Ids of messages to remove from the queue.")

    model_config = examples({"ids": ["m-1", "m-2"]})


class DeleteMessagesResponse(BaseModel):
    ok: Literal[True] = True
    removed: int = Field(description="How many messages were removed.")
    removed_ids: list[str] = Field(description="Their ids.")
    not_found: list[str]
    unauthorized: list[str] = Field(description="Ids that exist only under another tenant.")

    model_config = examples(
        {
            "ok": True,
            "removed": 1,
            "removed_ids": ["m-1"],
            "not_found": ["m-2"],
            "unauthorized": [],
        }
    )


class CleanupRequest(BaseModel):
    older_than_seconds: int | None = Field(
        default=None, ge=0, le=MAX_TS, description="Default: GMP_DELIVERY_REPORT_RETENTION_SECONDS."
    )

    model_config = examples({"older_than_seconds": 86400})


class CleanupResponse(BaseModel):
    ok: Literal[True] = True
    removed: int

    model_config = examples({"ok": True, "removed": 42})


class RunNowResponse(BaseModel):
    ok: Literal[True] = True
    triggered: Literal[True] = True
    tenant_id: str | None = Field(description="The tenant woken, or null for all of them.")

    model_config = examples({"ok": True, "triggered": True, "tenant_id": "acme"})


class SuspensionResponse(BaseModel):
    """After suspend/activate of a tenant, one of its batches, or (admin without
    tenant_id) the whole instance."""

    ok: Literal[True] = True
    tenant_id: str | None = Field(description="Null: the whole instance.")
    batch_code: str | None = Field(description="The batch acted on; null: the whole scope.")
    suspended_batches: list[str] = Field(description="The tenant's suspended batches; `*` = all.")
    pending_messages: int = Field(
        description="Pending messages of the scope, now held (suspend) or released (activate)."
    )
    active: bool = Field(description="Whether the scope acted on is sending now.")

    model_config = examples(
        {
            "ok": True,
            "tenant_id": "acme",
            "batch_code": None,
            "suspended_batches": ["*"],
            "pending_messages": 12,
            "active": False,
        },
        {
            "ok": True,
            "tenant_id": None,
            "batch_code": None,
            "suspended_batches": [],
            "pending_messages": 40,
            "active": False,
        },
    )
