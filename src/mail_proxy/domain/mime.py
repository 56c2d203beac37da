"""Turn an ``OutgoingMessage`` into the bytes handed to SMTP DATA.

The message's fields are typed already (validation parsed them once); nothing is
parsed here, only encoded.

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

Attachments arrive already fetched (``mail_proxy.attachments``) and named as sent.
Bodies are assembled as lists of byte chunks joined once at the end, and base64 is
encoded in blocks: a large attachment is held as its content, its encoded blocks
and the finished message, not as a copy per nesting level.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import mimetypes
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.utils import encode_rfc2231, format_datetime, formataddr
from functools import lru_cache

from mail_proxy.domain.addresses import Mailbox, format_mailbox
from mail_proxy.domain.attachment_spec import AttachmentSpec, sent_filename
from mail_proxy.domain.html_text import html_to_text
from mail_proxy.domain.outgoing import OutgoingMessage, Unsendable

CRLF = "\r\n"
_FOLD_AT = 78
_MAX_LINE = 998
_BASE64_BLOCK = 57 * 1000  # 57 input bytes make one 76-character line
_MIME_TYPE = re.compile(r"^[\w!#$&^.+-]+/[\w!#$&^.+-]+$")


class MimeError(Unsendable):
    """The message cannot be encoded; waiting will not fix it."""


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


@lru_cache(maxsize=4096)
def _wire_address(addr: str) -> str:
    """The address as sent: the domain in ASCII; a non-ASCII local part is kept
    (it needs SMTPUTF8, RFC 6531 §3.3)."""
    local, _, domain = addr.rpartition("@")
    if domain.isascii():
        return addr
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError as exc:
        raise MimeError(f"invalid domain: {domain}") from exc


def _wire(boxes: Iterable[Mailbox]) -> list[Mailbox]:
    return [Mailbox(box.name, _wire_address(box.address)) for box in boxes]


def envelope_of(message: OutgoingMessage) -> Envelope:
    """Envelope sender (``return_path`` or From) and de-duplicated recipients."""
    seen: dict[str, str] = {}
    for box in _wire(message.recipients):
        seen.setdefault(box.address.lower(), box.address)
    headers = _wire((message.sender, *message.reply_to))
    return Envelope(
        _wire_address(message.envelope_sender),
        tuple(seen.values()),
        not all(box.address.isascii() for box in headers),
    )


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


def _mailbox(box: Mailbox) -> str:
    """One mailbox; an SMTPUTF8 address is written raw (RFC 6532 §3.2), which
    ``formataddr`` refuses, with its display name quoted."""
    if box.address.isascii():
        return formataddr(box, charset="utf-8")
    return format_mailbox(*box)


def _address_header(name: str, boxes: Sequence[Mailbox]) -> str:
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


def _message_id(message: OutgoingMessage, message_key: str, domain: str) -> str:
    """The id given at submission; a row queued before ids were given there gets
    one derived from its queue position, the same on every attempt."""
    if message.message_id is not None:
        return message.message_id
    digest = hashlib.sha256(message_key.encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


@lru_cache(maxsize=4)
def _date(second: int) -> str:
    """The Date header's value (RFC 5322 §3.3) for a whole second: messages built in
    the same second share it, and formatting it was a tenth of building a message."""
    return format_datetime(datetime.fromtimestamp(second, UTC))


def _top_headers(message: OutgoingMessage, *, message_key: str, now: float) -> list[str]:
    [sender] = _wire([message.sender])
    headers = [_address_header("From", [sender])]
    for boxes, name in ((message.to, "To"), (message.cc, "Cc"), (message.reply_to, "Reply-To")):
        if boxes:
            headers.append(_address_header(name, _wire(boxes)))
    headers += [
        _text_header("Subject", message.subject),
        f"Date: {_date(int(now))}",
        f"Message-ID: {_message_id(message, message_key, sender.address.rpartition('@')[2])}",
        _text_header("X-Genro-Mail-ID", message.id),
    ]
    headers.extend(_text_header(name, value) for name, value in message.headers)
    headers.append("MIME-Version: 1.0")
    return headers


# -- bodies ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Part:
    headers: list[str]
    body: list[bytes]

    def render(self) -> list[bytes]:
        return [(CRLF.join(self.headers) + CRLF + CRLF).encode("utf-8"), *self.body]


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
        [body.replace("\n", CRLF).encode("ascii")],
    )


def _param(key: str, value: str) -> str:
    if value.isascii() and value.isprintable():
        quoted = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{key}="{quoted}"'
    return f"{key}*={encode_rfc2231(value, 'utf-8')}"


def _attachment_part(attachment: Attachment) -> _Part:
    return _Part(
        [
            f"Content-Type: {attachment.mime_type};{CRLF} {_param('name', attachment.filename)}",
            "Content-Transfer-Encoding: base64",
            f"Content-Disposition: attachment;{CRLF} {_param('filename', attachment.filename)}",
        ],
        _base64_lines(attachment.content),
    )


def _base64_lines(content: bytes) -> list[bytes]:
    """RFC 2045 §6.8 base64 in CRLF lines of 76 characters, by blocks of 57,000
    input bytes (1,000 lines), so no second copy of the whole encoding is made."""
    view = memoryview(content)
    return [
        base64.encodebytes(view[start : start + _BASE64_BLOCK]).replace(b"\n", b"\r\n")
        for start in range(0, len(content), _BASE64_BLOCK)
    ]


def _multipart(subtype: str, parts: Sequence[_Part], seed: str) -> _Part:
    rendered = [part.render() for part in parts]
    # Chunks are whole lines or whole headers: a boundary cannot straddle two.
    boundary = "=_gmp_" + hashlib.sha256(seed.encode()).hexdigest()[:24]
    while any(boundary.encode() in chunk for chunks in rendered for chunk in chunks):
        boundary += "_"
    delimiter = f"--{boundary}\r\n".encode()
    body: list[bytes] = []
    for chunks in rendered:
        body += [delimiter, *chunks, b"\r\n"]
    body.append(f"--{boundary}--{CRLF}".encode())
    return _Part([f'Content-Type: multipart/{subtype};{CRLF} boundary="{boundary}"'], body)


def _body(message: OutgoingMessage, html_text_alternative: bool, seed: str) -> _Part:
    text = message.body
    if message.content_type != "html":
        return _text_part(text, "plain")
    html = _text_part(text, "html")
    if not html_text_alternative:
        return html
    return _multipart("alternative", [_text_part(html_to_text(text), "plain"), html], seed + "/a")


# -- attachments -------------------------------------------------------------------


def attachment_type(filename: str, given: str | None) -> str:
    """The MIME type given (by the sender or the server that served the file) when
    it is well formed, else guessed from the file name, else octet-stream."""
    essence = (given or "").split(";", 1)[0].strip()  # parameters dropped (RFC 2045 §5.1)
    if _MIME_TYPE.match(essence):
        return essence.lower()
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return guessed or "application/octet-stream"


def attachment_of(
    spec: AttachmentSpec, content: bytes, served_type: str | None = None
) -> Attachment:
    """The attachment as sent: named without its MD5 marker, typed by the spec, else
    by the server that served it, else by the name."""
    name = sent_filename(spec)
    return Attachment(name, content, attachment_type(name, spec.mime_type or served_type))


# -- the message -------------------------------------------------------------------


def build_message(
    message: OutgoingMessage,
    *,
    attachments: Sequence[Attachment] = (),
    now: float,
    message_key: str,
    html_text_alternative: bool = True,
) -> bytes:
    """The complete message (headers and body, CRLF line ends) as bytes: ASCII
    unless an address needs SMTPUTF8 (then UTF-8 in those headers only).

    ``message_key`` identifies this queued message uniquely (tenant, id, queue
    position): it seeds the MIME boundaries, and the Message-ID of a row queued
    before submission assigned one.
    """
    headers = _top_headers(message, message_key=message_key, now=now)
    part = _body(message, html_text_alternative, message_key)
    if attachments:
        parts = [part, *(_attachment_part(a) for a in attachments)]
        part = _multipart("mixed", parts, message_key + "/m")
    head = (CRLF.join(headers + part.headers) + CRLF + CRLF).encode("utf-8")
    return b"".join([head, *part.body])
