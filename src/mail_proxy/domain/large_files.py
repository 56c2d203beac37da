"""Large files: a tenant's ``large_file_config`` and what it does to one message.

SMTP servers cap message size (RFC 1870 SIZE; common limits are 10-25 MB) and
every recipient's mailbox stores each copy, so a tenant may ask the proxy to treat
attachments above ``max_size_mb`` by ``action``: ``warn`` (log it, send inline),
``reject`` (fail the message, naming the file and the limit) or ``rewrite``
(upload the file to ``storage_url`` and put a download link in the body instead).

Everything here is pure: choosing the oversized attachments, the link text added
to the body, and the signed download tokens of files the proxy serves itself. The
config itself is read by ``large_file_config``; storage I/O lives in
``mail_proxy.attachments``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from urllib.parse import urlsplit

from mail_proxy.domain.large_file_config import DAY, LargeFileRules
from mail_proxy.domain.mime import Attachment
from mail_proxy.domain.outgoing import OutgoingMessage

MAX_TOKEN = 200
_TOKEN = re.compile(r"^([0-9a-f]{32})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})$")
_UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class OffloadedFile:
    """One uploaded file and its download state, shared by every process.

    ``expires_at`` starts at upload + ``file_ttl_days`` and is brought forward to
    first download + ``lifespan_after_download`` (seconds) when that is sooner.
    """

    id: str
    tenant_id: str
    message_id: str
    filename: str
    url: str
    size: int
    created_at: float
    expires_at: float
    lifespan_after_download: float | None = None
    first_download_at: float | None = None
    downloads: int = 0


@dataclass(frozen=True, slots=True)
class DownloadLink:
    filename: str
    size: int
    url: str
    expires_at: float


def oversized(
    rules: LargeFileRules, attachments: Sequence[Attachment]
) -> tuple[list[Attachment], list[Attachment]]:
    """(attachments within the limit, attachments above it), each in message order."""
    kept = [a for a in attachments if len(a.content) <= rules.max_bytes]
    over = [a for a in attachments if len(a.content) > rules.max_bytes]
    return kept, over


def file_expiry(rules: LargeFileRules, now: float) -> float:
    return now + rules.file_ttl_days * DAY


def lifespan_seconds(rules: LargeFileRules) -> float | None:
    days = rules.lifespan_after_download_days
    return None if days is None else days * DAY


def object_key(tenant_id: str, file_id: str, filename: str) -> str:
    """Where the file goes under ``storage_url``: the tenant and a random id keep
    keys unique and unguessable; the name is reduced to safe characters so that an
    outside file name can never climb out of the prefix (``..``, ``/``)."""
    safe = _UNSAFE_KEY_CHARS.sub("_", filename).strip("._")[:100] or "file"
    return f"{tenant_id}/{file_id}/{safe}"


def local_path(url: str) -> str:
    """The directory or file a ``file://`` URL names."""
    return urlsplit(url).path


# -- the body ------------------------------------------------------------------------


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KB", "MB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def _until(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def with_download_links(message: OutgoingMessage, links: Sequence[DownloadLink]) -> OutgoingMessage:
    """The message with a list of the links appended to its body.

    An HTML body gets an HTML list (names and URLs escaped) before ``</body>``
    when it has one; its text/plain alternative is rendered from it by MIME
    building, so both parts show the links. A text body gets a text list only.
    """
    if not links:
        return message
    if message.content_type == "html":
        return replace(message, body=_html_with(message.body, _html_block(links)))
    return replace(message, body=message.body.rstrip("\n") + "\n\n" + _text_block(links))


def _text_block(links: Sequence[DownloadLink]) -> str:
    lines = ["-- ", "Files available for download:"]
    for link in links:
        lines.append(
            f"- {link.filename} ({human_size(link.size)}, until {_until(link.expires_at)})"
        )
        lines.append(f"  {link.url}")
    return "\n".join(lines) + "\n"


def _html_block(links: Sequence[DownloadLink]) -> str:
    items = "".join(
        f'<li><a href="{html.escape(link.url, quote=True)}">{html.escape(link.filename)}</a>'
        f" ({human_size(link.size)}, until {_until(link.expires_at)})</li>"
        for link in links
    )
    return f"<hr><p><strong>Files available for download:</strong></p><ul>{items}</ul>"


def _html_with(body: str, block: str) -> str:
    end = body.lower().rfind("</body>")
    if end < 0:
        return body + block
    return body[:end] + block + body[end:]


# -- download tokens (files served by the proxy) ---------------------------------------


def download_token(key: bytes, file_id: str, expires_at: float) -> str:
    """``<file id>.<expiry>.<HMAC-SHA256>``: the proxy can tell a link it issued
    from a forged or altered one before touching the database (RFC 2104)."""
    expiry = int(expires_at)
    return f"{file_id}.{expiry}.{_signature(key, file_id, expiry)}"


def read_download_token(key: bytes, token: str, now: float) -> str | None:
    """The file id of a genuine, unexpired token; None for anything else."""
    match = _TOKEN.match(token) if len(token) <= MAX_TOKEN else None
    if match is None:
        return None
    file_id, expiry = match.group(1), int(match.group(2))
    if not hmac.compare_digest(match.group(3), _signature(key, file_id, expiry)):
        return None
    return file_id if now < expiry else None


def _signature(key: bytes, file_id: str, expiry: int) -> str:
    digest = hmac.new(key, f"{file_id}.{expiry}".encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
