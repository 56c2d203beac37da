"""``LargeFilePolicy`` with real storage: a local directory, and moto's S3 server.

The message it returns is built with ``build_message`` and sent to a real SMTP
server (the dev sink, aiosmtpd), as the dispatcher will do once the policy is
wired in.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import httpx
import pytest

from mail_proxy.attachments.errors import AttachmentRefused
from mail_proxy.attachments.large_files import LargeFilePolicy
from mail_proxy.attachments.offload_storage import StorageUnavailable
from mail_proxy.domain.large_file_config import DAY
from mail_proxy.domain.mime import Attachment, build_message, envelope_of
from mail_proxy.domain.models import Tenant
from mail_proxy.domain.outgoing import ContentType, OutgoingMessage
from mail_proxy.metrics import Metrics
from mail_proxy.ports import Store
from mail_proxy.settings import Settings
from mail_proxy.smtp.sink import DevSink
from mail_proxy.testing import outgoing

from .conftest import S3Server

NOW = 1_767_225_600.0  # 2026-01-01 00:00 UTC
SMALL = Attachment("note.txt", b"small", "text/plain")
BIG = Attachment("big report.pdf", b"%PDF" + b"x" * 20_000, "application/pdf")
LINK = re.compile(r"https?://\S+?(?=[\s\"<])")


def _message(content_type: ContentType = "plain", body: str = "Hello.") -> OutgoingMessage:
    return outgoing(body=body, content_type=content_type)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def large_files(
    sqlite_store: Store, metrics: Metrics, settings_factory: Callable[..., Settings]
) -> LargeFilePolicy:
    settings = settings_factory(public_base_url="https://proxy.example")
    return LargeFilePolicy(sqlite_store.offloaded_files, metrics, settings)


def _count(metrics: Metrics, action: str) -> float | None:
    return metrics.registry.get_sample_value("gmp_large_attachments_total", {"action": action})


async def test_no_config_or_nothing_oversized_changes_nothing(
    large_files: LargeFilePolicy, local_tenant: Callable[..., Tenant], storage_dir: Path
) -> None:
    message = _message()
    for tenant in (Tenant(id="acme"), local_tenant(enabled=False), local_tenant()):
        got = await large_files.apply(tenant, message, [SMALL], NOW)
        assert got == (message, [SMALL])
    assert list(storage_dir.iterdir()) == []


async def test_warn_sends_inline_and_counts(
    large_files: LargeFilePolicy, local_tenant: Callable[..., Tenant], metrics: Metrics
) -> None:
    message = _message()
    got = await large_files.apply(local_tenant(action="warn"), message, [SMALL, BIG], NOW)
    assert got == (message, [SMALL, BIG])
    assert _count(metrics, "warn") == 1


async def test_reject_names_the_file_and_the_limit(
    large_files: LargeFilePolicy, local_tenant: Callable[..., Tenant], metrics: Metrics
) -> None:
    tenant = local_tenant(action="reject", max_size_mb=0.01)
    with pytest.raises(AttachmentRefused) as caught:
        await large_files.apply(tenant, _message(), [SMALL, BIG], NOW)
    assert str(caught.value) == (
        "attachment above the tenant's large-file limit of 0.01 MB: big report.pdf (19.5 KB)"
    )
    assert _count(metrics, "reject") == 1


async def test_a_broken_stored_config_fails_the_message(large_files: LargeFilePolicy) -> None:
    tenant = Tenant(id="acme", large_file_config={"enabled": True, "action": "rewrite"})
    with pytest.raises(AttachmentRefused, match="needs a storage_url"):
        await large_files.apply(tenant, _message(), [BIG], NOW)


async def test_rewrite_to_local_storage(
    large_files: LargeFilePolicy,
    local_tenant: Callable[..., Tenant],
    storage_dir: Path,
    sqlite_store: Store,
) -> None:
    message, kept = await large_files.apply(local_tenant(), _message(), [SMALL, BIG], NOW)
    assert kept == [SMALL]
    [stored] = list(storage_dir.glob("acme/*/big_report.pdf"))
    assert stored.read_bytes() == BIG.content
    [url] = LINK.findall(message.body + " ")
    assert url.startswith("https://proxy.example/files/")
    assert "- big report.pdf (19.5 KB, until 2026-01-31 00:00 UTC)" in message.body
    file = await sqlite_store.offloaded_files.redeem(url.rsplit("/", 1)[1], NOW + DAY)
    assert file is not None and file.url == f"file://{stored}" and file.size == len(BIG.content)


async def test_rewritten_message_is_built_and_delivered(
    large_files: LargeFilePolicy, local_tenant: Callable[..., Tenant]
) -> None:
    """An HTML message: the link is in the HTML part and its text alternative, the
    big file is no longer attached, the small one still is."""
    html = "<html><body><p>Numbers attached.</p></body></html>"
    tenant = local_tenant(public_base_url="https://files.acme.example")
    message, kept = await large_files.apply(tenant, _message("html", html), [SMALL, BIG], NOW)
    raw = build_message(message, attachments=kept, now=NOW, message_key="acme/m1/1")
    sink = DevSink(port=0)
    await sink.start()
    try:
        envelope = envelope_of(message)
        await aiosmtplib.send(
            raw, sender=envelope.sender, recipients=list(envelope.recipients),
            hostname=sink.host, port=sink.port,
        )  # fmt: skip
    finally:
        await sink.stop()
    [received] = sink.messages
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    html_part, text_part = parsed.get_body(("html",)), parsed.get_body(("plain",))
    assert html_part is not None and text_part is not None
    [url] = set(LINK.findall(html_part.get_content()))
    assert url.startswith("https://files.acme.example/files/")
    assert url in text_part.get_content() and url in received.body
    assert [p.get_filename() for p in parsed.iter_attachments()] == ["note.txt"]
    assert received.size < len(BIG.content)


async def test_rewrite_to_s3_gives_a_presigned_link(
    large_files: LargeFilePolicy, s3_server: S3Server, sqlite_store: Store
) -> None:
    tenant = Tenant(id="acme", large_file_config=s3_server.config(file_ttl_days=30))
    message, kept = await large_files.apply(tenant, _message(), [BIG], NOW)
    assert kept == []
    [url] = LINK.findall(message.body + " ")
    assert url.startswith(f"{s3_server.endpoint_url}/mail-large-files/offloaded/acme/")
    assert "X-Amz-Expires=604800" in url  # SigV4's longest validity, below the 30-day TTL
    assert "until 2026-01-08 00:00 UTC" in message.body
    async with httpx.AsyncClient() as client:
        answer = await client.get(url)
    assert answer.status_code == 200 and answer.content == BIG.content
    [file] = await sqlite_store.offloaded_files.expired(NOW + 31 * DAY, limit=10)
    assert file.url.startswith("s3://mail-large-files/offloaded/acme/")


async def test_storage_that_cannot_be_written_is_a_temporary_failure(
    large_files: LargeFilePolicy, local_tenant: Callable[..., Tenant], storage_dir: Path
) -> None:
    """A path that cannot hold the file (under a regular file) raises the one type
    the dispatcher defers on, naming the storage problem."""
    blocker = storage_dir / "not-a-dir"
    blocker.write_text("")
    tenant = local_tenant(storage_url=f"file://{blocker}")
    with pytest.raises(StorageUnavailable, match=r"^large-file storage: "):
        await large_files.apply(tenant, _message(), [BIG], NOW)
