"""Messages: the searchable listing, one message's page, its body, retry and delete.

The listing is keyset-paged newest first (``before`` is the pk the next page starts
under), so the thousandth page of a million rows costs what the first does. A
tenant's searches are confined to its own tenant by ``Caller.scope``, as the API's.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from mail_proxy.api.deps import RuntimeDep, bounce_service, message_service
from mail_proxy.api.redact import attachment_summary
from mail_proxy.domain.models import Event, MessageRecord, Status
from mail_proxy.domain.outgoing import from_payload
from mail_proxy.errors import InvalidInput
from mail_proxy.ports import MessageFilter
from mail_proxy.ui.forms import parse_time
from mail_proxy.ui.render import BODY_CSP, page, security_headers
from mail_proxy.ui.routing import UiRoute
from mail_proxy.ui.session import PostedDep, UserDep

router = APIRouter(route_class=UiRoute, include_in_schema=False)
PAGE_SIZE = 50
LIVE_SECONDS = 5
FILTER_FIELDS = ("id", "q", "status", "tenant", "account", "batch", "since", "until")
NOTICES = {
    "retried": "The message is due now: the dispatcher was woken for it.",
    "deleted": "The message was deleted.",
    "suppressed": "The address is on the suppression list: messages naming it are refused.",
    "listed": "The address was on the suppression list already.",
}


@router.get("/ui/messages")
async def messages(
    request: Request,
    user: UserDep,
    runtime: RuntimeDep,
    id: str = "",
    q: str = "",
    status: str = "",
    tenant: str = "",
    account: str = "",
    batch: str = "",
    since: str = "",
    until: str = "",
    before: int | None = None,
    fragment: bool = False,
) -> Response:
    flt = MessageFilter(
        tenant_id=user.caller.scope(tenant.strip() or None),
        status=_status(status),
        batch_code=batch.strip() or None,
        account_id=account.strip() or None,
        message_id=id.strip() or None,
        text=q.strip() or None,
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
    )
    service = message_service(runtime)
    rows, next_before = await service.browse(flt, before_pk=before, limit=PAGE_SIZE)
    given = {k: v for k, v in request.query_params.items() if k in FILTER_FIELDS and v}
    context = {
        "title": "Messages",
        "rows": rows,
        "filters": given,
        "statuses": list(Status),
        "filtered": bool(given),
        "first_page": before is None,
        "next_url": _url(given, before=next_before) if next_before else None,
        "first_url": _url(given),
        "live_url": _url(given, fragment=1),
        "live_seconds": LIVE_SECONDS,
        "base_url": str(request.base_url).rstrip("/"),
    }
    return page(request, "_message_rows.html" if fragment else "messages.html", context)


@router.get("/ui/message")
async def message(
    request: Request, user: UserDep, runtime: RuntimeDep, tenant: str, id: str, notice: str = ""
) -> Response:
    tenant_id = user.caller.tenant(tenant)
    detail = await message_service(runtime).get(tenant_id, id)
    record = detail.record
    context = {
        "title": f"Message {id}",
        "m": record,
        "tenant_name": detail.tenant_name,
        "timeline": timeline(record, detail.events),
        "attachments": [attachment_summary(a) for a in record.payload.get("attachments") or []],
        "custom_headers": record.payload.get("headers") or {},
        "body_url": "/ui/message/body?" + urlencode({"tenant": tenant_id, "id": id}),
        "notice": NOTICES.get(notice),
        "can_retry": record.status.active,
        "recipients": recipients(record),
    }
    return page(request, "message.html", context)


@router.get("/ui/message/body")
async def message_body(user: UserDep, runtime: RuntimeDep, tenant: str, id: str) -> Response:
    """The body alone, for the sandboxed frame of the message page: no script runs
    and no remote image loads (the CSP forbids both, whatever the HTML holds)."""
    record = (await message_service(runtime).get(user.caller.tenant(tenant), id)).record
    is_html = record.payload.get("content_type") == "html"
    return body_response(str(record.payload.get("body") or ""), is_html)


@router.post("/ui/message/retry")
async def retry(posted: PostedDep, runtime: RuntimeDep) -> Response:
    tenant_id = posted.user.caller.tenant(posted.form.required("tenant"))
    message_id = posted.form.required("id")
    await message_service(runtime).retry_now(tenant_id, message_id)
    query = urlencode({"tenant": tenant_id, "id": message_id, "notice": "retried"})
    return RedirectResponse(f"/ui/message?{query}", 303, headers=security_headers())


@router.post("/ui/message/delete")
async def delete(posted: PostedDep, runtime: RuntimeDep) -> Response:
    tenant_id = posted.user.caller.tenant(posted.form.required("tenant"))
    result = await message_service(runtime).delete(tenant_id, [posted.form.required("id")])
    if not result.removed:
        raise InvalidInput("No such message to delete")
    query = urlencode({"tenant": tenant_id, "notice": "deleted"})
    return RedirectResponse(f"/ui/messages?{query}", 303, headers=security_headers())


@router.post("/ui/message/suppress")
async def suppress(posted: PostedDep, runtime: RuntimeDep) -> Response:
    """Put one recipient of this message on its tenant's suppression list (the same
    rule as ``POST /suppressions``); the reason names the message."""
    tenant_id = posted.user.caller.tenant(posted.form.required("tenant"))
    message_id = posted.form.required("id")
    address = posted.form.required("address")
    reason = f"suppressed from the dashboard (message {message_id})"
    added = await bounce_service(runtime).suppress(tenant_id, address, reason)
    notice = "suppressed" if added else "listed"
    query = urlencode({"tenant": tenant_id, "id": message_id, "notice": notice})
    return RedirectResponse(f"/ui/message?{query}", 303, headers=security_headers())


def recipients(record: MessageRecord) -> list[str]:
    """The addresses the message went to, as the suppression list keeps them."""
    seen = dict.fromkeys(box.address.lower() for box in from_payload(record.payload).recipients)
    return list(seen)


@dataclass(frozen=True, slots=True)
class Moment:
    """One line of a message's timeline."""

    ts: float
    kind: str
    text: str
    details: dict[str, Any] | None = None


def timeline(record: MessageRecord, events: list[Event]) -> list[Moment]:
    """Queued, then each event (attempts with the SMTP reply, deferrals, sent,
    failures), each followed by when the tenant's application acknowledged it."""
    moments = [Moment(record.created_at, "queued", "accepted into the queue")]
    for event in events:
        moments.append(Moment(event.ts, str(event.type), event.description or "", event.details))
        if event.reported_ts is not None:
            text = f"reported to the application ({event.type})"
            moments.append(Moment(event.reported_ts, "reported", text))
    return sorted(moments, key=lambda m: m.ts)


def body_response(body: str, is_html: bool) -> HTMLResponse:
    shown = body if is_html else f"<pre>{html.escape(body)}</pre>"
    document = f'<!doctype html><meta charset="utf-8">{shown}'
    return HTMLResponse(document, headers=security_headers(BODY_CSP))


def _status(value: str) -> Status | None:
    if not value:
        return None
    try:
        return Status(value)
    except ValueError:
        raise InvalidInput(f"Unknown status {value!r}", field="status") from None


def _url(filters: dict[str, str], **extra: object) -> str:
    return "/ui/messages?" + urlencode({**filters, **extra})
