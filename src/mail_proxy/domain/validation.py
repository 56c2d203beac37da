"""One submitted message (a JSON object) in, a ``NewMessage`` or a rejection reason out.

Each message of ``POST /commands/add-messages`` is judged on its own, so one bad
message never rejects its neighbours. The caller looks up the tenants and accounts
the batch names and passes them in a ``ValidationContext``; nothing here does I/O.

Rules and where they come from:

- addresses are RFC 5322 mailboxes, ``to``/``cc``/``bcc`` address-lists given as a
  list or one comma-separated string (see ``addresses``).
- CR or LF in any value that becomes a header (subject, addresses, display names,
  extra headers, message id, attachment file names) is refused as header injection:
  RFC 5322 §2.2 ends a header field at CRLF, so such a value could smuggle headers.
- extra header names are RFC 5322 §3.6.8 field names (printable ASCII, no colon).

A message that passes becomes an ``OutgoingMessage`` (``outgoing``) carrying its
RFC 5322 Message-ID: the client's, normalised, or one made here, so every attempt
and any later bounce or PEC receipt name the same id. ``new_message`` turns it
into what the queue stores. Unknown fields are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mail_proxy.domain.addresses import (
    InvalidAddress,
    Mailbox,
    ascii_domain,
    parse_mailboxes,
    single_mailbox,
)
from mail_proxy.domain.attachment_spec import (
    AttachmentSpec,
    InvalidAttachment,
    attachment_specs,
    filesystem_refusal,
)
from mail_proxy.domain.models import Account, NewMessage, Priority, Tenant
from mail_proxy.domain.outgoing import (
    FIELD_NAME,
    MAX_MESSAGE_ID,
    ContentType,
    OutgoingMessage,
    extra_headers,
    new_message_id,
    normalised_message_id,
    to_payload,
)
from mail_proxy.domain.priority import InvalidPriority, resolve_priority
from mail_proxy.domain.text import is_storable

MAX_ID_LENGTH = 255
MAX_BATCH_CODE_LENGTH = 64
MAX_TS = 253_402_300_799  # 9999-12-31T23:59:59Z: beyond it no database integer is safe
_CONTENT_TYPES: dict[str, ContentType] = {
    "plain": "plain",
    "text/plain": "plain",
    "html": "html",
    "text/html": "html",
}


@dataclass(frozen=True, slots=True)
class ValidationContext:
    """What validation needs to know beyond the message itself."""

    tenants: Mapping[str, Tenant]
    accounts: Mapping[str, Sequence[Account]]
    token_tenant_id: str | None = None
    batch_priority: Priority | None = None
    instance_priority: int = 2
    # GMP_ATTACHMENT_BASE_DIR: folders filesystem attachments may name (none: refused)
    filesystem_roots: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rejection:
    id: str | None
    reason: str


class _Reject(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def unstorable_field(value: object, path: str = "") -> str | None:
    """Dotted path of the first string (or key) in a JSON value that cannot be stored.

    JSON may escape lone UTF-16 surrogates (``"\\ud800"``); Python decodes them
    into a ``str`` that no UTF-8 database, MIME part or log line can hold. ``""``
    names the value itself; None means every string is storable.
    """
    if isinstance(value, str):
        return None if is_storable(value) else path
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if not is_storable(str(key)):
                return path or "a field name"
            found = unstorable_field(item, where)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = unstorable_field(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def recipient_count(messages: Sequence[object]) -> int:
    """Addresses a batch names in to, cc and bcc, counted without parsing them.

    A string counts its commas plus one (a comma inside a quoted display name
    counts too: this bounds the work, it does not judge the message).
    """
    total = 0
    for raw in messages:
        if not isinstance(raw, dict):
            continue
        for field in ("to", "cc", "bcc"):
            value = raw.get(field)
            if isinstance(value, str):
                total += value.count(",") + 1
            elif isinstance(value, list):
                total += sum(item.count(",") + 1 if isinstance(item, str) else 1 for item in value)
    return total


def validate_message(raw: object, ctx: ValidationContext) -> OutgoingMessage | Rejection:
    """Normalise one submitted message or say, in a sentence, why it is refused."""
    if not isinstance(raw, dict):
        return Rejection(None, "message must be a JSON object")
    message_id = raw.get("id")
    bad_text = unstorable_field(raw)
    if bad_text is not None:
        shown = message_id if isinstance(message_id, str) and is_storable(message_id) else None
        return Rejection(shown, f"invalid text in {bad_text}: not valid Unicode (lone surrogate)")
    try:
        return _build(raw, ctx)
    except _Reject as rejected:
        return Rejection(str(message_id) if _is_scalar(message_id) else None, rejected.reason)


def _build(raw: dict[str, Any], ctx: ValidationContext) -> OutgoingMessage:
    message_id = _message_id(raw.get("id"))
    tenant = _tenant(raw.get("tenant_id"), ctx)
    account = _account(raw.get("account_id"), tenant.id, ctx)
    try:
        priority = resolve_priority(raw.get("priority"), ctx.batch_priority, ctx.instance_priority)
    except InvalidPriority as exc:
        raise _Reject(str(exc)) from None
    to = _mailboxes(raw.get("to"), "to")
    if not to:
        raise _Reject("missing field: to")
    deferred_ts = _deferred_ts(raw.get("deferred_ts"))
    batch_code = _batch_code(raw.get("batch_code"))
    sender = _sender(raw, account)
    headers = _headers(raw.get("headers"))
    return OutgoingMessage(
        id=message_id,
        tenant_id=tenant.id,
        account_id=account.id,
        sender=sender,
        to=to,
        cc=_mailboxes(raw.get("cc"), "cc"),
        bcc=_mailboxes(raw.get("bcc"), "bcc"),
        reply_to=_mailboxes(raw.get("reply_to"), "reply_to"),
        return_path=_return_path(raw.get("return_path")),
        subject=_subject(raw.get("subject")),
        body=_body(raw.get("body")),
        content_type=_content_type(raw),
        headers=extra_headers(headers),
        message_id=_rfc_message_id(raw.get("message_id"), headers, sender),
        priority=int(priority),
        deferred_ts=deferred_ts,
        batch_code=batch_code,
        attachments=_attachments(raw.get("attachments"), ctx.filesystem_roots),
    )


def new_message(message: OutgoingMessage) -> NewMessage:
    """What the queue stores for a validated message."""
    return NewMessage(
        tenant_id=message.tenant_id,
        id=message.id,
        account_id=message.account_id,
        priority=message.priority,
        payload=to_payload(message),
        deferred_ts=message.deferred_ts,
        batch_code=message.batch_code,
        rfc_message_id=message.message_id,
    )


# -- identity: id, tenant, account --------------------------------------------------


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


def _message_id(value: object) -> str:
    if value is None or value == "":
        raise _Reject("missing field: id")
    if not _is_scalar(value):
        raise _Reject("invalid id: must be a string")
    text = str(value)
    _refuse_injection(text, "id")
    if len(text) > MAX_ID_LENGTH:
        raise _Reject(f"invalid id: longer than {MAX_ID_LENGTH} characters")
    return text


def _tenant(value: object, ctx: ValidationContext) -> Tenant:
    tenant_id = ctx.token_tenant_id if value is None or value == "" else value
    if tenant_id is None:
        raise _Reject("missing field: tenant_id")
    if not isinstance(tenant_id, str):
        raise _Reject("invalid tenant_id: must be a string")
    if ctx.token_tenant_id is not None and tenant_id != ctx.token_tenant_id:
        raise _Reject("Token not authorized for this tenant")
    tenant = ctx.tenants.get(tenant_id)
    if tenant is None:
        raise _Reject(f"unknown tenant: {tenant_id}")
    return tenant


def default_account(accounts: Sequence[Account]) -> Account | None:
    """The tenant's only account, or the one marked ``is_default``."""
    if len(accounts) == 1:
        return accounts[0]
    marked = [account for account in accounts if account.is_default]
    return marked[0] if len(marked) == 1 else None


def _account(value: object, tenant_id: str, ctx: ValidationContext) -> Account:
    accounts = ctx.accounts.get(tenant_id, ())
    if value is None or value == "":
        found = default_account(accounts)
        if found is None:
            raise _Reject("missing field: account_id (the tenant has no default account)")
        return found
    if not isinstance(value, str):
        raise _Reject("invalid account_id: must be a string")
    for account in accounts:
        if account.id == value:
            return account
    raise _Reject(f"unknown account: {value}")


# -- addresses (RFC 5322 §3.4) ----------------------------------------------------------


def _refuse_injection(text: str, field: str) -> None:
    if "\r" in text or "\n" in text:
        raise _Reject(f"header injection: CR/LF in {field}")
    if "\x00" in text:
        raise _Reject(f"invalid {field}: contains a NUL character")


def _mailboxes(value: object, field: str) -> tuple[Mailbox, ...]:
    try:
        return tuple(parse_mailboxes(value, field))
    except InvalidAddress as exc:
        raise _Reject(str(exc)) from None


def _one_mailbox(value: object, field: str) -> Mailbox:
    try:
        return single_mailbox(value, field)
    except InvalidAddress as exc:
        raise _Reject(str(exc)) from None


def _sender(raw: dict[str, Any], account: Account) -> Mailbox:
    """The message's From, else the account's default sender: the one place it applies."""
    value = raw.get("from") or account.default_from
    if value is None:
        raise _Reject("missing field: from (the account has no default sender)")
    name, addr = _one_mailbox(value, "from")
    display = raw.get("from_name")
    if display is not None:
        if not isinstance(display, str):
            raise _Reject("invalid from_name: must be a string")
        _refuse_injection(display, "from_name")
        name = display.strip()
    return Mailbox(name, addr)


def _return_path(value: object) -> str | None:
    if value is None or value == "":
        return None
    return _one_mailbox(value, "return_path")[1]


# -- content ----------------------------------------------------------------------------


def _subject(value: object) -> str:
    if value is None:
        raise _Reject("missing field: subject")
    if not isinstance(value, str):
        raise _Reject("invalid subject: must be a string")
    _refuse_injection(value, "subject")
    return value


def _body(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Reject("invalid body: must be a string")
    return value


def _content_type(raw: dict[str, Any]) -> ContentType:
    value = raw.get("content_type")
    if value is None:
        return "html" if raw.get("html") is True else "plain"
    if not isinstance(value, str) or value.strip().lower() not in _CONTENT_TYPES:
        raise _Reject("invalid content_type: use 'plain' or 'html'")
    return _CONTENT_TYPES[value.strip().lower()]


def _rfc_message_id(value: object, headers: Mapping[str, str], sender: Mailbox) -> str:
    """The client's Message-ID (the field, else a Message-ID header), normalised;
    else a new one on the sender's domain (RFC 5322 §3.6.4)."""
    if value is None or value == "":
        value = next((v for k, v in headers.items() if k.lower() == "message-id" and v), None)
        field = "Message-ID header"
    else:
        field = "message_id"
    if value is None:
        return new_message_id(ascii_domain(sender.address))
    if not isinstance(value, str):
        raise _Reject(f"invalid {field}: must be a string")
    _refuse_injection(value, field)
    normalised = normalised_message_id(value)
    if normalised is None:
        raise _Reject(
            f"invalid {field}: expected left@right without spaces, "
            f"at most {MAX_MESSAGE_ID} characters"
        )
    return normalised


def _headers(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Reject("invalid headers: expected an object of name → value")
    headers: dict[str, str] = {}
    for name, item in value.items():
        if not FIELD_NAME.match(name):
            raise _Reject(f"invalid header name: {name[:80]!r}")
        if not isinstance(item, str | int | float) or isinstance(item, bool):
            raise _Reject(f"invalid value of header {name}: must be a string")
        text = str(item)
        _refuse_injection(text, f"header {name}")
        headers[name] = text
    return headers


def _deferred_ts(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_TS:
        raise _Reject("invalid deferred_ts: expected Unix seconds")
    return int(value)


def _batch_code(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _Reject("invalid batch_code: must be a string")
    if len(value) > MAX_BATCH_CODE_LENGTH:
        raise _Reject(f"invalid batch_code: longer than {MAX_BATCH_CODE_LENGTH} characters")
    _refuse_injection(value, "batch_code")
    return value


def _attachments(value: object, roots: Sequence[str]) -> tuple[AttachmentSpec, ...]:
    try:
        specs = attachment_specs(value)
    except InvalidAttachment as exc:
        raise _Reject(f"attachment spec invalid: {exc}") from None
    for index, spec in enumerate(specs):
        if spec.fetch_mode == "filesystem":
            refusal = filesystem_refusal(spec.storage_path, roots)
            if refusal is not None:
                raise _Reject(f"attachment spec invalid: attachment {index} {refusal}")
    return specs
