"""The outgoing message as one frozen value, and its stored JSON form.

Validation builds an ``OutgoingMessage`` once; MIME building reads its typed fields
and parses nothing. The queue stores it as JSON (``to_payload``) with the keys
payloads have always had, so ``GET /messages`` shows the same shape and rows queued
by an earlier version load with ``from_payload`` too. ``payload_version`` marks
what this version writes: version 1 (no key) rows may lack a Message-ID and may
carry reserved header names, which loading tolerates; a row written by a newer
proxy is refused rather than half-understood.

Stored addresses are ``"Display Name <addr>"`` strings (display name unencoded),
``to/cc/bcc`` lists of them, ``reply_to`` one comma-separated string, and
``return_path`` a bare addr-spec; loading reads them back without judging them
again, which validation did when the message was submitted.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.utils import getaddresses, parseaddr
from typing import Any, Literal

from mail_proxy.domain.addresses import Mailbox, format_mailbox
from mail_proxy.domain.attachment_spec import AttachmentSpec, spec_from_payload, spec_payload
from mail_proxy.domain.models import Priority

PAYLOAD_VERSION = 2
MAX_MESSAGE_ID = 250
"""Longest Message-ID kept, brackets included: far below the 998-octet line limit
(RFC 5322 §2.1.1) and short enough to index."""

ContentType = Literal["plain", "html"]
FIELD_NAME = re.compile(r"^[\x21-\x39\x3b-\x7e]+$")
"""An RFC 5322 §3.6.8 field name: printable ASCII except the colon."""
RESERVED_HEADERS = frozenset(
    [
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "x-genro-mail-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
        "return-path",
        "sender",
    ]
)
"""Headers the proxy writes itself: a client's extra header never replaces them."""
_ANGLE_ADDR = re.compile(r"^(.*)<([^<>]+)>$", re.DOTALL)
# A bare dot-atom addr-spec (RFC 5322 §3.4.1, §3.2.3): what the email package's
# parser returns unchanged, with no display name. Most stored recipients look like
# this, and the parser is the costliest part of reading a payload back.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_BARE_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@{_ATEXT}(?:\.{_ATEXT})*")
_MSG_ID = re.compile(r"^<[^<>\s]+@[^<>\s]+>$")


class Unsendable(ValueError):
    """The message can never become mail; waiting will not fix it."""


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message as validated: what MIME building and the envelope need, typed.

    ``message_id`` is the RFC 5322 msg-id with its brackets, assigned at submission
    so every attempt carries it; None only in rows queued before that was so.
    """

    id: str
    tenant_id: str
    account_id: str
    sender: Mailbox
    to: tuple[Mailbox, ...]
    subject: str
    message_id: str | None
    cc: tuple[Mailbox, ...] = ()
    bcc: tuple[Mailbox, ...] = ()
    reply_to: tuple[Mailbox, ...] = ()
    return_path: str | None = None
    body: str = ""
    content_type: ContentType = "plain"
    headers: tuple[tuple[str, str], ...] = ()
    priority: int = Priority.MEDIUM
    deferred_ts: int | None = None
    batch_code: str | None = None
    attachments: tuple[AttachmentSpec, ...] = ()

    @property
    def recipients(self) -> tuple[Mailbox, ...]:
        """To, Cc and Bcc: everyone the message goes to."""
        return (*self.to, *self.cc, *self.bcc)

    @property
    def envelope_sender(self) -> str:
        """MAIL FROM (RFC 5321 §4.1.1.2): the return path when given, else From."""
        return self.return_path or self.sender.address


# -- Message-ID (RFC 5322 §3.6.4) ------------------------------------------------------


#: The generator of msg-id left parts: seeded from the OS once per process (and again
#: in a forked child, which would otherwise repeat its parent's sequence). A msg-id
#: must be unique (RFC 5322 §3.6.4), not secret; asking the OS for 16 bytes per
#: message was a system call on every enqueued message, 5 % of the intake's time.
_ID_BITS = random.Random()
os.register_at_fork(after_in_child=_ID_BITS.seed)


def new_message_id(domain: str) -> str:
    """A fresh msg-id on the sender's domain: 128 random bits on the left, so two
    proxies (or two databases) sending for one domain never collide."""
    return f"<{_ID_BITS.getrandbits(128):032x}@{domain}>"


def normalised_message_id(given: str) -> str | None:
    """A client's Message-ID in angle brackets, or None when it is no msg-id
    (``left@right``, no spaces or brackets inside) or longer than ``MAX_MESSAGE_ID``."""
    text = given.strip()
    bracketed = text if text.startswith("<") else f"<{text}>"
    if len(bracketed) > MAX_MESSAGE_ID or not _MSG_ID.match(bracketed):
        return None
    return bracketed


def extra_headers(headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The client's headers minus those the proxy writes itself."""
    return tuple(
        (name, value) for name, value in headers.items() if name.lower() not in RESERVED_HEADERS
    )


# -- stored form -----------------------------------------------------------------------


def to_payload(message: OutgoingMessage) -> dict[str, Any]:
    """The JSON object the queue stores for the message."""
    return {
        "id": message.id,
        "tenant_id": message.tenant_id,
        "account_id": message.account_id,
        "from": format_mailbox(*message.sender),
        "to": _formatted(message.to),
        "cc": _formatted(message.cc),
        "bcc": _formatted(message.bcc),
        "reply_to": ", ".join(_formatted(message.reply_to)) or None,
        "return_path": message.return_path,
        "subject": message.subject,
        "body": message.body,
        "content_type": message.content_type,
        "headers": dict(message.headers),
        "message_id": message.message_id,
        "priority": message.priority,
        "deferred_ts": message.deferred_ts,
        "batch_code": message.batch_code,
        "attachments": [spec_payload(spec) for spec in message.attachments],
        "payload_version": PAYLOAD_VERSION,
    }


def _formatted(mailboxes: Iterable[Mailbox]) -> list[str]:
    return [format_mailbox(*box) for box in mailboxes]


def from_payload(payload: Mapping[str, Any]) -> OutgoingMessage:
    """The message a stored payload holds, of this version or an earlier one.

    Raises ``Unsendable`` for a payload no version of the proxy could send: no
    sender, no recipient, an address without a domain, or a newer version's row.
    """
    version = payload.get("payload_version", 1)
    if not isinstance(version, int) or version > PAYLOAD_VERSION:
        raise Unsendable(f"stored message format {version!r} is newer than this proxy")
    sender = _one_mailbox(payload.get("from"), "from")
    to, cc, bcc = (_mailboxes(payload.get(key)) for key in ("to", "cc", "bcc"))
    if not (to or cc or bcc):
        raise Unsendable("message has no recipients")
    return_path = payload.get("return_path") or None
    return OutgoingMessage(
        id=str(payload.get("id", "")),
        tenant_id=str(payload.get("tenant_id", "")),
        account_id=str(payload.get("account_id", "")),
        sender=sender,
        to=to,
        cc=cc,
        bcc=bcc,
        reply_to=_mailboxes(payload.get("reply_to")),
        return_path=_one_mailbox(return_path, "return_path").address if return_path else None,
        subject=str(payload.get("subject") or ""),
        body=str(payload.get("body") or ""),
        content_type="html" if payload.get("content_type") == "html" else "plain",
        headers=_stored_headers(payload.get("headers")),
        message_id=_stored_message_id(payload.get("message_id")),
        priority=int(payload.get("priority", Priority.MEDIUM)),
        deferred_ts=payload.get("deferred_ts"),
        batch_code=payload.get("batch_code"),
        attachments=tuple(spec_from_payload(spec) for spec in payload.get("attachments") or ()),
    )


def _mailboxes(value: object) -> tuple[Mailbox, ...]:
    """Stored mailboxes: a list entry is one mailbox (its display name may hold an
    unquoted comma), a string is an address-list."""
    if not value:
        return ()
    if isinstance(value, list | tuple):
        pairs = [_list_entry(str(item)) for item in value]
    elif _BARE_ADDRESS.fullmatch(text := str(value).strip()):
        pairs = [("", text)]
    else:
        pairs = getaddresses([text])
    boxes = tuple(Mailbox(name, address) for name, address in pairs)
    for box in boxes:
        local, at, domain = box.address.rpartition("@")
        if not (local and at and domain):
            raise Unsendable(f"invalid address: {box.address[:80]}")
    return boxes


def _list_entry(item: str) -> tuple[str, str]:
    text = item.strip()
    if _BARE_ADDRESS.fullmatch(text):
        return "", text
    angle = _ANGLE_ADDR.match(text)
    if not angle:
        return parseaddr(item)
    name = angle.group(1).strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return name, angle.group(2).strip()


def _one_mailbox(value: object, field: str) -> Mailbox:
    boxes = _mailboxes(value)
    if not boxes:
        raise Unsendable("message has no sender")
    if len(boxes) != 1:
        raise Unsendable(f"{field} must be one address")
    return boxes[0]


def _stored_headers(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping):
        return ()
    headers = {str(name).strip(): str(item) for name, item in value.items()}
    for name, item in headers.items():
        if not FIELD_NAME.match(name):
            raise Unsendable(f"invalid header name: {name[:80]!r}")
        if "\r" in item or "\n" in item:
            raise Unsendable(f"line break in header {name}")
    return extra_headers(headers)


def _stored_message_id(value: object) -> str | None:
    """A version 1 row kept the client's text as given: bracket it as sending did."""
    text = str(value or "").strip()
    if not text:
        return None
    if "\r" in text or "\n" in text:
        raise Unsendable("line break in header Message-ID")
    return text if text.startswith("<") else f"<{text}>"
