"""An .eml file (RFC 5322 message, MIME per RFC 2045-2049) as an add-messages entry.

The proxy builds the MIME message itself from fields, so the file is taken apart
here, client-side, with the stdlib ``email`` package: addresses, subject, one body
(the HTML part when there is one: the proxy adds the text alternative), every
other leaf part as a base64 attachment, and the remaining header fields as extra
headers (the proxy drops those it writes itself). The id is derived from the
file's bytes, so sending the same file again replaces the unsent message instead
of queueing a second copy.
"""

from __future__ import annotations

import base64
import hashlib
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from mail_proxy.domain.outgoing import RESERVED_HEADERS

MAX_EML_BYTES = 25 * 1024 * 1024
# Header fields that become message fields rather than extra headers.
_AS_FIELDS = frozenset({"return-path", "content-transfer-encoding", "content-disposition"})


class EmlError(Exception):
    """A file that is not a message the proxy can send (one sentence)."""


def _addresses(message: EmailMessage, name: str) -> list[str]:
    values = [str(value) for value in message.get_all(name, [])]
    return [
        f"{display} <{address}>" if display else address
        for display, address in getaddresses(values)
        if address
    ]


def _body(message: EmailMessage) -> tuple[str | None, str]:
    part = message.get_body(preferencelist=("html", "plain"))
    if part is None:
        return None, "plain"
    text = part.get_content()
    return str(text), "html" if part.get_content_subtype() == "html" else "plain"


def _attachments(message: EmailMessage) -> list[dict[str, Any]]:
    body = message.get_body(preferencelist=("html", "plain"))
    found = []
    for index, part in enumerate(message.walk()):
        if part.is_multipart() or part is body:
            continue
        if part.get_content_disposition() != "attachment" and part.get_content_maintype() == "text":
            continue  # an alternative text of the body, rebuilt by the proxy
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        found.append(
            {
                "filename": part.get_filename() or f"part-{index}",
                "storage_path": "base64:" + base64.b64encode(data).decode("ascii"),
                "fetch_mode": "base64",
                "mime_type": part.get_content_type(),
            }
        )
    return found


def _headers(message: EmailMessage) -> dict[str, str]:
    skipped = RESERVED_HEADERS | _AS_FIELDS
    return {name: str(value) for name, value in message.items() if name.lower() not in skipped}


def eml_message(path: Path) -> dict[str, Any]:
    """The add-messages entry of one .eml file."""
    raw = path.read_bytes()
    if len(raw) > MAX_EML_BYTES:
        raise EmlError(f"{path.name}: larger than {MAX_EML_BYTES // (1024 * 1024)} MiB")
    message = BytesParser(policy=policy.default).parsebytes(raw)
    if not isinstance(message, EmailMessage) or not message.get("To"):
        raise EmlError(f"{path.name}: not an e-mail message (no To header)")
    body, content_type = _body(message)
    entry: dict[str, Any] = {
        "id": "eml-" + hashlib.sha256(raw).hexdigest()[:32],
        "to": _addresses(message, "To"),
        "cc": _addresses(message, "Cc") or None,
        "bcc": _addresses(message, "Bcc") or None,
        "reply_to": _addresses(message, "Reply-To") or None,
        "from": ", ".join(_addresses(message, "From")) or None,
        "subject": str(message.get("Subject", "")),
        "body": body,
        "content_type": content_type,
        "message_id": str(message["Message-ID"]) if message.get("Message-ID") else None,
        "headers": _headers(message) or None,
        "attachments": _attachments(message) or None,
    }
    return {key: value for key, value in entry.items() if value is not None}


def eml_files(path: Path) -> list[Path]:
    """The file itself, or the .eml files of a folder in name order."""
    if path.is_dir():
        found = sorted(child for child in path.iterdir() if child.suffix.lower() == ".eml")
        if not found:
            raise EmlError(f"{path}: no .eml file in this folder")
        return found
    return [path]
