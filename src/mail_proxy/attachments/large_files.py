"""``LargeFilePolicy``: a tenant's ``large_file_config`` applied to one message.

Attachments above ``max_size_mb`` are, by ``action``: sent inline with a warning
(log and ``gmp_large_attachments``), refused (the message fails naming the file
and the limit), or uploaded to ``storage_url`` and replaced by a download link in
the body. Links to ``file://`` storage point at the proxy's own download route
with a signed token; S3 storage gets presigned URLs.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import structlog

from mail_proxy.attachments import offload_storage
from mail_proxy.attachments.errors import AttachmentRefused
from mail_proxy.domain.large_file_config import Action, LargeFileRules, large_file_rules
from mail_proxy.domain.large_files import (
    DownloadLink,
    OffloadedFile,
    file_expiry,
    human_size,
    lifespan_seconds,
    object_key,
    oversized,
    with_download_links,
)
from mail_proxy.domain.mime import Attachment
from mail_proxy.domain.models import Tenant
from mail_proxy.domain.outgoing import OutgoingMessage
from mail_proxy.metrics import Metrics
from mail_proxy.ports import OffloadedFiles
from mail_proxy.settings import Settings

log = structlog.get_logger(__name__)

DOWNLOAD_PATH = "/files/"
"""The proxy's download route (``api/routes/downloads.py``) under its base URL."""


class LargeFilePolicy:
    """The ``AttachmentPolicy`` of large files (see ``attachments.policy``)."""

    def __init__(self, files: OffloadedFiles, metrics: Metrics, settings: Settings) -> None:
        self._files = files
        self._metrics = metrics
        self._base_url = settings.public_base_url or f"http://{settings.host}:{settings.port}"

    async def apply(
        self, tenant: Tenant, message: OutgoingMessage, attachments: list[Attachment], now: float
    ) -> tuple[OutgoingMessage, list[Attachment]]:
        try:
            rules = large_file_rules(tenant.large_file_config)
        except ValueError as exc:
            raise AttachmentRefused(str(exc)) from None
        if rules is None:
            return message, attachments
        kept, over = oversized(rules, attachments)
        if not over:
            return message, attachments
        self._metrics.large_attachments.labels(action=rules.action.value).inc(len(over))
        if rules.action is Action.REJECT:
            raise AttachmentRefused(_too_large(rules, over))
        if rules.action is Action.WARN:
            log.warning(
                "large_attachment_sent_inline",
                tenant_id=tenant.id,
                message_id=message.id,
                detail=_too_large(rules, over),
            )
            return message, attachments
        links = [await self._offload(rules, tenant.id, message, a, now) for a in over]
        return with_download_links(message, links), kept

    async def _offload(
        self,
        rules: LargeFileRules,
        tenant_id: str,
        message: OutgoingMessage,
        attachment: Attachment,
        now: float,
    ) -> DownloadLink:
        """The row goes first: a file whose upload fails leaves a row the retention
        loop removes, never a stored file no row knows about."""
        file_id = secrets.token_hex(16)
        key = object_key(tenant_id, file_id, attachment.filename)
        file = OffloadedFile(
            id=file_id,
            tenant_id=tenant_id,
            message_id=message.id[:255],
            filename=attachment.filename[:255],
            url=offload_storage.object_url(rules, key),
            size=len(attachment.content),
            created_at=now,
            expires_at=file_expiry(rules, now),
            lifespan_after_download=lifespan_seconds(rules),
        )
        await self._files.add(file)
        await offload_storage.upload(rules, file.url, attachment.content)
        if rules.scheme == "s3":
            seconds = min(file.expires_at - now, offload_storage.PRESIGN_MAX_SECONDS)
            url = await offload_storage.presigned(rules, file.url, seconds)
            return DownloadLink(file.filename, file.size, url, now + seconds)
        base = (rules.public_base_url or self._base_url).rstrip("/")
        url = f"{base}{DOWNLOAD_PATH}{self._files.token(file)}"
        return DownloadLink(file.filename, file.size, url, file.expires_at)


def _too_large(rules: LargeFileRules, over: Sequence[Attachment]) -> str:
    limit = f"{rules.max_size_mb:g} MB"
    files = ", ".join(f"{a.filename[:100]} ({human_size(len(a.content))})" for a in over)
    return f"attachment above the tenant's large-file limit of {limit}: {files}"
