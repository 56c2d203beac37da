"""``GET /files/{token}`` through the real API app: valid, expired, tampered, and
shortened by ``lifespan_after_download_days`` after the first download."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx

from mail_proxy.attachments.large_files import LargeFilePolicy
from mail_proxy.domain.large_file_config import DAY
from mail_proxy.domain.mime import Attachment
from mail_proxy.domain.models import Tenant
from mail_proxy.runtime import Runtime
from mail_proxy.testing import ManualClock, outgoing

NOW = 1_767_225_600.0
BIG = Attachment('<script>"x".html', b"<script>alert(1)</script>" * 1000, "text/html")
TOKEN_PATH = re.compile(r"http://proxy\.test(/files/\S+)")


async def _offload(runtime: Runtime, tenant: Tenant) -> str:
    """The path of the download link the policy put in the message."""
    policy = LargeFilePolicy(runtime.store.offloaded_files, runtime.metrics, runtime.settings)
    message = outgoing()
    rewritten, _ = await policy.apply(tenant, message, [BIG], runtime.clock.now())
    [path] = TOKEN_PATH.findall(rewritten.body)
    return str(path)


async def test_download_then_lifespan_after_download(
    runtime: Runtime,
    anonymous: httpx.AsyncClient,
    clock: ManualClock,
    local_tenant: Callable[..., Tenant],
) -> None:
    path = await _offload(runtime, local_tenant())
    await clock.advance(5 * DAY)
    answer = await anonymous.get(path)
    assert answer.status_code == 200
    assert answer.content == BIG.content
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["content-disposition"].startswith("attachment; filename*=utf-8''")
    await clock.advance(DAY)
    assert (await anonymous.get(path)).status_code == 200
    await clock.advance(DAY)  # two days after the first download, 23 before the TTL
    gone = await anonymous.get(path)
    assert gone.status_code == 404
    assert gone.json()["error"] == "Unknown or expired download link"


async def test_expired_by_ttl(
    runtime: Runtime,
    anonymous: httpx.AsyncClient,
    clock: ManualClock,
    local_tenant: Callable[..., Tenant],
) -> None:
    path = await _offload(runtime, local_tenant(file_ttl_days=1))
    await clock.advance(DAY)
    assert (await anonymous.get(path)).status_code == 404


async def test_tampered_forged_or_missing(
    runtime: Runtime,
    anonymous: httpx.AsyncClient,
    local_tenant: Callable[..., Tenant],
    storage_dir: Path,
) -> None:
    path = await _offload(runtime, local_tenant())
    file_id, expiry, signature = path.removeprefix("/files/").split(".")
    later = f"/files/{file_id}.{int(expiry) + 86_400}.{signature}"
    other_id = f"/files/{'0' * 32}.{expiry}.{signature}"
    for bad in (later, other_id, path[:-3] + "AAA", "/files/..%2F..%2Fetc%2Fpasswd", "/files/x"):
        answer = await anonymous.get(bad)
        assert answer.status_code == 404, bad
    too_long = await anonymous.get("/files/" + "a" * 500)
    assert too_long.status_code == 422
    assert too_long.json()["fields"][0]["field"] == "path.token"
    for stored in storage_dir.glob("acme/*/*"):
        stored.unlink()
    assert (await anonymous.get(path)).status_code == 404
