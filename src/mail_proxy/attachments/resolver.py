"""From a message's attachment specs to the attachments its MIME message carries.

Per spec, by ``fetch_mode``: ``base64`` decoded from the payload; ``filesystem``
read by ``ConfinedFiles``; ``http_url`` (GET) and ``endpoint`` (POST
``{"storage_path": ...}`` to the tenant's ``client_base_url`` +
``client_attachment_path``, with the tenant's ``client_auth`` and, when it has one,
its signing secret) fetched by ``HttpFetcher``. Fetched content goes through the
cache; content whose MD5 differs from the one given is refused rather than sent.

Fetches are limited to ``GMP_ATTACHMENT_FETCH_CONCURRENCY`` at once for the
process and ``GMP_ATTACHMENT_FETCH_CONCURRENCY_PER_TENANT`` per tenant (cache hits
take no slot), and all of one message's fetches end by its ``deadline`` (the
dispatcher's lease budget): past it, the message is deferred, not kept leased.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mail_proxy.attachments.cache import MB, AttachmentCache, Blob
from mail_proxy.attachments.errors import AttachmentRefused, AttachmentUnavailable
from mail_proxy.attachments.filesystem import ConfinedFiles
from mail_proxy.attachments.http import HttpFetcher
from mail_proxy.domain import signature
from mail_proxy.domain.attachment_spec import (
    AttachmentSpec,
    InvalidAttachment,
    expected_md5,
    inline_content,
    sent_filename,
)
from mail_proxy.domain.mime import Attachment, attachment_of
from mail_proxy.domain.models import Tenant
from mail_proxy.domain.outgoing import OutgoingMessage
from mail_proxy.metrics import Metrics
from mail_proxy.network import auth_headers
from mail_proxy.settings import Settings


@dataclass(frozen=True, slots=True)
class _Fetch:
    tenant: Tenant
    spec: AttachmentSpec
    name: str
    md5: str | None
    deadline: float
    now: float


class AttachmentResolver:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self._files = ConfinedFiles(
            settings.attachment_base_dir, settings.own_paths, settings.attachment_max_bytes
        )
        self._http = HttpFetcher(settings)
        self._cache = AttachmentCache(
            int(settings.cache_memory_max_mb * MB),
            settings.cache_disk_dir,
            int(settings.cache_disk_max_mb * MB),
            metrics,
        )
        self._metrics = metrics
        self._slots = asyncio.Semaphore(settings.attachment_fetch_concurrency)
        self._per_tenant = settings.attachment_fetch_concurrency_per_tenant
        self._tenant_slots: dict[str, asyncio.Semaphore] = {}

    async def resolve(
        self, tenant: Tenant, message: OutgoingMessage, deadline: float, now: float
    ) -> list[Attachment]:
        """Every attachment of ``message``, fetched by ``deadline`` (event-loop time).

        Raises ``AttachmentRefused`` or ``AttachmentUnavailable`` naming the first
        attachment that could not be had.
        """
        found = []
        for spec in message.attachments:
            name = sent_filename(spec)
            try:
                async with asyncio.timeout_at(deadline):
                    blob = await self._blob(tenant, spec, name, deadline, now)
            except TimeoutError:
                reason = f"attachment {name}: not fetched before the delivery deadline"
                raise AttachmentUnavailable(reason) from None
            found.append(attachment_of(spec, blob.content, blob.mime_type))
        return found

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _blob(
        self, tenant: Tenant, spec: AttachmentSpec, name: str, deadline: float, now: float
    ) -> Blob:
        md5 = expected_md5(spec)
        if spec.fetch_mode == "base64":
            try:
                return _checked(Blob(inline_content(spec.storage_path)), md5, name)
            except InvalidAttachment as exc:
                raise AttachmentRefused(f"attachment {name} {exc}") from None
        if md5 is not None:
            key = f"md5\0{tenant.id}\0{md5}"
            cached = await self._cache.get(key)
            if cached is not None:
                return cached
        else:  # nothing to look up; identical requests in flight still share one fetch
            key = f"src\0{tenant.id}\0{spec.fetch_mode}\0{spec.storage_path}\0{spec.auth!r}"
        fetch = _Fetch(tenant, spec, name, md5, deadline, now)
        return await self._cache.shared(key, lambda: self._fetch(fetch))

    async def _fetch(self, job: _Fetch) -> Blob:
        """One fetch, shared by every message waiting for the same key; it ends by
        the deadline of the message that started it, so a server trickling bytes
        cannot keep it (and its slots) past that lease."""
        tenant, spec, name = job.tenant, job.spec, job.name
        async with asyncio.timeout_at(job.deadline), self._tenant_slot(tenant.id), self._slots:
            try:
                blob = await self._source(tenant, spec, name, job.now)()
            except AttachmentRefused:
                self._metrics.attachment_fetches.labels(spec.fetch_mode, "refused").inc()
                raise
            except AttachmentUnavailable:
                self._metrics.attachment_fetches.labels(spec.fetch_mode, "unavailable").inc()
                raise
        self._metrics.attachment_fetches.labels(spec.fetch_mode, "fetched").inc()
        blob = _checked(blob, job.md5, name)
        actual = job.md5 or hashlib.md5(blob.content, usedforsecurity=False).hexdigest()
        await self._cache.put(f"md5\0{tenant.id}\0{actual}", blob)
        return blob

    def _source(
        self, tenant: Tenant, spec: AttachmentSpec, name: str, now: float
    ) -> Callable[[], Awaitable[Blob]]:
        """The one call that gets this spec's bytes."""
        if spec.fetch_mode == "filesystem":

            async def read_file() -> Blob:
                return Blob(await asyncio.to_thread(self._files.read, spec.storage_path, name))

            return read_file
        if spec.fetch_mode == "http_url":

            async def get() -> Blob:
                headers = auth_headers(spec.auth) if spec.auth else {}
                fetched = await self._http.get(
                    spec.storage_path, headers, tenant.target_trusted, name
                )
                return Blob(fetched.content, fetched.mime_type)

            return get

        async def post() -> Blob:
            url, body, headers = _endpoint_call(tenant, spec, name, now)
            fetched = await self._http.post(url, body, headers, tenant.target_trusted, name)
            return Blob(fetched.content, fetched.mime_type)

        return post

    def _tenant_slot(self, tenant_id: str) -> asyncio.Semaphore:
        slot = self._tenant_slots.get(tenant_id)
        if slot is None:
            slot = self._tenant_slots[tenant_id] = asyncio.Semaphore(self._per_tenant)
        return slot


def _endpoint_call(
    tenant: Tenant, spec: AttachmentSpec, name: str, now: float
) -> tuple[str, bytes, dict[str, str]]:
    """URL, body and headers of the POST to the tenant's attachment endpoint."""
    if not tenant.client_base_url:
        raise AttachmentRefused(
            f"attachment {name}: endpoint mode needs the tenant's client_base_url"
        )
    url = tenant.client_base_url.rstrip("/") + "/" + tenant.client_attachment_path.lstrip("/")
    body = json.dumps({"storage_path": spec.storage_path}).encode()
    headers = {"Content-Type": "application/json", **auth_headers(spec.auth or tenant.client_auth)}
    if tenant.signing_secret:
        headers[signature.HEADER] = signature.sign(tenant.signing_secret, int(now), body)
    return url, body, headers


def _checked(blob: Blob, md5: str | None, name: str) -> Blob:
    """``blob`` when it is the content ``md5`` names (or no MD5 was given)."""
    if md5 is not None and hashlib.md5(blob.content, usedforsecurity=False).hexdigest() != md5:
        raise AttachmentRefused(
            f"attachment {name}: content does not match its MD5 {md5} (not sent)"
        )
    return blob
