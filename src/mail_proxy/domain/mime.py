"""Turn a normalised message payload into the bytes handed to SMTP DATA.

The message is written directly as RFC 5322 / MIME text rather than through
``email.message.EmailMessage``: building one with the modern policy costs about
1 ms per message (header parsing and refolding), more than the whole rest of a
delivery, while the stdlib pieces used here (``formataddr`` and ``Header`` for
RFC 2047 encoded words, ``encode_rfc2231`` for parameters, ``binascii`` for
quoted-printable and base64) keep every encoding rule in well-tested code.

Rules applied:
- RFC 5322 §3.6: From, To, Cc, Reply-To, Subject, Date, Message-ID; Bcc is an
  envelope-only recipient and never written (§3.6.3 allows that form).
- RFC 2047: non-ASCII display names and unstructured header text as encoded words.
- RFC 2045: 7bit when the text is ASCII with short lines, else quoted-printable
  UTF-8, so no server needs 8BITMIME (RFC 6152); attachments in base64.
- RFC 2046 §5.1.4: html with a text alternative is multipart/alternative, plain
  text first; attachments wrap the body in multipart/mixed.
- RFC 2231: non-ASCII attachment file names.
- RFC 5321 §4.5.3.1.6 / RFC 5322 §2.1.1: no line longer than 998 octets; headers
  fold near 78, and an unstructured value with no place to fold (a 1500-character
  word) becomes RFC 2047 encoded words, which may be split anywhere.
- RFC 5890: internationalised domains are sent as their ASCII (punycode) form.
- RFC 6531/6532: a non-ASCII local part cannot be written in ASCII; such an
  envelope is marked ``utf8`` (the mailer then needs the server's SMTPUTF8) and
  the address is written in the headers as raw UTF-8.
- The ``{MD5:hex}`` cache marker of an attachment file name (protocol: "removed
  from the sent filename") is stripped, with the underscore before it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import mimetypes
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.utils import encode_rfc2231, format_datetime, formataddr, getaddresses, parseaddr
from typing import Any

from mail_proxy.domain.attachment_spec import infer_fetch_mode
from mail_proxy.domain.html_text import html_to_text

CRLF = "\r\n"
_FOLD_AT = 78
_MAX_LINE = 998
_ANGLE_ADDR = re.compile(r"^(.*)<([^<>]+)>$", re.DOTALL)
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")
_MD5_MARKER = re.compile(r"_?\{MD5:[0-9a-fA-F]*\}")
_MIME_TYPE = re.compile(r"^[\w!#$&^.+-]+/[\w!#$&^.+-]+$")
_RESERVED_HEADERS = frozenset(
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


class MimeError(ValueError):
    """The payload cannot become a message; waiting will not fix it."""


class UnsupportedAttachment(MimeError):
    """An attachment whose content is not inline in the payload."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """RFC 5321 envelope: MAIL FROM and every RCPT TO (To, Cc and Bcc)."""

    sender: str
    recipients: tuple[str, ...]
    # A header address outside the envelope (From behind a Return-Path, Reply-To)
    # with a non-ASCII local part: the message itself then needs SMTPUTF8 too.
    utf8_headers: bool = False

    @property
    def utf8(self) -> bool:
        """An address has a non-ASCII local part: only SMTPUTF8 can carry it."""
        addresses = (self.sender, *self.recipients)
        return self.utf8_headers or not all(address.isascii() for address in addresses)


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str


# -- addresses ---------------------------------------------------------------------


def _mailboxes(value: object) -> list[tuple[str, str]]:
    """(display name, wire address) pairs from a string or a list of strings."""
    if not value:
        return []
    if isinstance(value, list | tuple):
        pairs = [_parse_mailbox(str(item)) for item in value]
    else:
        pairs = getaddresses([str(value)])
    return [(name, _wire_address(addr, raw=str(value))) for name, addr in pairs]


def _parse_mailbox(item: str) -> tuple[str, str]:
    """One list entry is one mailbox, even with an unquoted comma in its name."""
    angle = _ANGLE_ADDR.match(item.strip())
    if not angle:
        return parseaddr(item)
    name = angle.group(1).strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return name, angle.group(2).strip()


def _wire_address(addr: str, *, raw: str) -> str:
    """The address as sent: the domain in ASCII; a non-ASCII local part is kept
    (it needs SMTPUTF8, RFC 6531 §3.3)."""
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain:
        raise MimeError(f"invalid address: {raw}")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise MimeError(f"invalid domain: {domain}") from exc
    return f"{local}@{domain}"


def _one_mailbox(value: object, field: str) -> tuple[str, str]:
    boxes = _mailboxes(value)
    if len(boxes) != 1:
        raise MimeError(f"{field} must be one address")
    return boxes[0]


def envelope_of(payload: Mapping[str, Any]) -> Envelope:
    """Envelope sender (``return_path`` or From) and de-duplicated recipients."""
    sender = payload.get("return_path") or payload.get("from")
    if not sender:
        raise MimeError("message has no sender")
    _, sender_addr = _one_mailbox(sender, "return_path/from")
    seen: dict[str, str] = {}
    for key in ("to", "cc", "bcc"):
        for _, addr in _mailboxes(payload.get(key)):
            seen.setdefault(addr.lower(), addr)
    if not seen:
        raise MimeError("message has no recipients")
    headers = [addr for key in ("from", "reply_to") for _, addr in _mailboxes(payload.get(key))]
    return Envelope(sender_addr, tuple(seen.values()), not all(a.isascii() for a in headers))


# -- headers -----------------------------------------------------------------------


def _check_value(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise MimeError(f"line break in header {name}")
    return value


def _text_header(name: str, value: str) -> str:
    """An unstructured header (RFC 5322 §3.2.5), encoded and folded when needed."""
    _check_value(name, value)
    if value.isascii() and len(name) + 2 + len(value) <= _FOLD_AT:
        return f"{name}: {value}"
    charset = None if value.isascii() else "utf-8"
    encoded = Header(value, charset, header_name=name).encode(linesep=CRLF)
    if any(len(line) > _MAX_LINE for line in encoded.split(CRLF)):
        # No whitespace to fold at (RFC 5322 §2.1.1): encoded words split anywhere.
        encoded = Header(value, "utf-8", header_name=name).encode(linesep=CRLF)
    return f"{name}: {encoded}"


def _mailbox(box: tuple[str, str]) -> str:
    """One mailbox; an SMTPUTF8 address is written raw (RFC 6532 §3.2), which
    ``formataddr`` refuses, with its display name quoted."""
    name, address = box
    if address.isascii():
        return formataddr(box, charset="utf-8")
    if not name:
        return address
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{address}>'


def _address_header(name: str, boxes: Sequence[tuple[str, str]]) -> str:
    """An address-list header, folded after commas."""
    lines = [f"{name}: "]
    for index, box in enumerate(boxes):
        item = _mailbox(box)
        if index:
            if len(lines[-1]) + len(item) + 2 > _FOLD_AT:
                lines[-1] += ","
                lines.append(" ")
            else:
                lines[-1] += ", "
        lines[-1] += item
    return CRLF.join(lines)


def _message_id(payload: Mapping[str, Any], message_key: str, domain: str) -> str:
    given = str(payload.get("message_id") or "").strip()
    if given:
        _check_value("Message-ID", given)
        return given if given.startswith("<") else f"<{given}>"
    digest = hashlib.sha256(message_key.encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


def _custom_headers(headers: object) -> Iterable[str]:
    if not isinstance(headers, Mapping):
        return
    for name, value in headers.items():
        name = str(name).strip()
        if not _HEADER_NAME.match(name):
            raise MimeError(f"invalid header name: {name!r}")
        if name.lower() not in _RESERVED_HEADERS:
            yield _text_header(name, str(value))


def _top_headers(payload: Mapping[str, Any], *, message_key: str, now: float) -> list[str]:
    sender = _one_mailbox(payload.get("from"), "from")
    headers = [_address_header("From", [sender])]
    for key, name in (("to", "To"), ("cc", "Cc"), ("reply_to", "Reply-To")):
        boxes = _mailboxes(payload.get(key))
        if boxes:
            headers.append(_address_header(name, boxes))
    headers += [
        _text_header("Subject", str(payload.get("subject") or "")),
        f"Date: {format_datetime(datetime.fromtimestamp(now, UTC))}",
        f"Message-ID: {_message_id(payload, message_key, sender[1].rpartition('@')[2])}",
        _text_header("X-Genro-Mail-ID", str(payload.get("id", ""))),
    ]
    headers.extend(_custom_headers(payload.get("headers")))
    headers.append("MIME-Version: 1.0")
    return headers


# -- bodies ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Part:
    headers: list[str]
    body: str

    def render(self) -> str:
        return CRLF.join(self.headers) + CRLF + CRLF + self.body


def _text_part(text: str, subtype: str) -> _Part:
    """7bit when the text allows it, else quoted-printable UTF-8 (RFC 2045 §6.7)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    if text.isascii() and max(map(len, text.split("\n"))) <= _MAX_LINE:
        cte, body = "7bit", text
    else:
        cte = "quoted-printable"
        body = binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii")
    return _Part(
        [f'Content-Type: text/{subtype}; charset="utf-8"', f"Content-Transfer-Encoding: {cte}"],
        body.replace("\n", CRLF),
    )


def _param(key: str, value: str) -> str:
    if value.isascii() and value.isprintable():
        quoted = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{key}="{quoted}"'
    return f"{key}*={encode_rfc2231(value, 'utf-8')}"


def _attachment_part(attachment: Attachment) -> _Part:
    encoded = base64.encodebytes(attachment.content).decode("ascii")
    return _Part(
        [
            f"Content-Type: {attachment.mime_type};{CRLF} {_param('name', attachment.filename)}",
            "Content-Transfer-Encoding: base64",
            f"Content-Disposition: attachment;{CRLF} {_param('filename', attachment.filename)}",
        ],
        encoded.replace("\n", CRLF),
    )


def _multipart(subtype: str, parts: Sequence[_Part], seed: str) -> _Part:
    rendered = [part.render() for part in parts]
    boundary = "=_gmp_" + hashlib.sha256(seed.encode()).hexdigest()[:24]
    while any(boundary in text for text in rendered):
        boundary += "_"
    body = "".join(f"--{boundary}{CRLF}{text}{CRLF}" for text in rendered)
    return _Part(
        [f'Content-Type: multipart/{subtype};{CRLF} boundary="{boundary}"'],
        f"{body}--{boundary}--{CRLF}",
    )


def _body(payload: Mapping[str, Any], html_text_alternative: bool, seed: str) -> _Part:
    text = str(payload.get("body") or "")
    if payload.get("content_type") != "html":
        return _text_part(text, "plain")
    html = _text_part(text, "html")
    if not html_text_alternative:
        return html
    return _multipart("alternative", [_text_part(html_to_text(text), "plain"), html], seed + "/a")


# -- attachments -------------------------------------------------------------------


def _guess_type(filename: str, given: object) -> str:
    if isinstance(given, str) and _MIME_TYPE.match(given.strip()):
        return given.strip().lower()
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return guessed or "application/octet-stream"


def inline_attachments(payload: Mapping[str, Any]) -> list[Attachment]:
    """Decode the attachments carried in the payload as base64.

    Other fetch modes (URL, filesystem, tenant endpoint) need I/O and are resolved
    elsewhere; meeting one here raises ``UnsupportedAttachment``.
    """
    found: list[Attachment] = []
    for spec in payload.get("attachments") or []:
        path = str(spec.get("storage_path") or "")
        mode = spec.get("fetch_mode") or infer_fetch_mode(path)
        filename = _MD5_MARKER.sub("", str(spec.get("filename") or "")) or "attachment"
        if mode != "base64":
            raise UnsupportedAttachment(f"attachment {filename}: fetch mode {mode!r} unsupported")
        data = "".join(path.removeprefix("base64:").split())
        try:
            content = base64.b64decode(data, validate=True)
        except binascii.Error as exc:
            raise MimeError(f"attachment {filename}: invalid base64") from exc
        found.append(Attachment(filename, content, _guess_type(filename, spec.get("mime_type"))))
    return found


# -- the message -------------------------------------------------------------------


def build_message(
    payload: Mapping[str, Any],
    *,
    attachments: Sequence[Attachment] = (),
    now: float,
    message_key: str,
    html_text_alternative: bool = True,
) -> bytes:
    """The complete message (headers and body, CRLF line ends) as bytes: ASCII
    unless an address needs SMTPUTF8 (then UTF-8 in those headers only).

    ``message_key`` identifies this queued message uniquely (tenant, id, queue
    position): it seeds the generated Message-ID and the MIME boundaries, so
    every attempt of one message carries the same Message-ID.
    """
    headers = _top_headers(payload, message_key=message_key, now=now)
    part = _body(payload, html_text_alternative, message_key)
    if attachments:
        parts = [part, *(_attachment_part(a) for a in attachments)]
        part = _multipart("mixed", parts, message_key + "/m")
    text = CRLF.join(headers + part.headers) + CRLF + CRLF + part.body
    return text.encode("utf-8")
