"""The retention loop: expired files leave storage (local and S3) and the database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from mail_proxy.attachments.large_files import LargeFilePolicy
from mail_proxy.domain.large_file_config import DAY
from mail_proxy.domain.mime import Attachment
from mail_proxy.domain.models import Tenant
from mail_proxy.metrics import Metrics
from mail_proxy.ports import Store
from mail_proxy.settings import Settings
from mail_proxy.testing import ManualClock, outgoing
from mail_proxy.workers.offload_cleanup import OffloadCleanupLoop

from .conftest import BUCKET, MOTO_KEY, MOTO_SECRET, S3Server

NOW = 1_767_225_600.0
BIG = Attachment("big.bin", b"x" * 20_000, "application/octet-stream")
MESSAGE = outgoing()


async def _offload(store: Store, settings: Settings, tenant: Tenant, now: float) -> None:
    policy = LargeFilePolicy(store.offloaded_files, Metrics(), settings)
    await policy.apply(tenant, MESSAGE, [BIG], now)


async def test_expired_local_files_are_removed(
    sqlite_store: Store,
    settings_factory: Callable[..., Settings],
    local_tenant: Callable[..., Tenant],
    storage_dir: Path,
) -> None:
    settings = settings_factory(offload_cleanup_interval=3600)
    await sqlite_store.tenants.create(local_tenant(), None, NOW)
    await _offload(sqlite_store, settings, local_tenant(file_ttl_days=1), NOW)
    await _offload(sqlite_store, settings, local_tenant(file_ttl_days=3), NOW)
    clock = ManualClock(start=NOW + 2 * DAY)
    loop = OffloadCleanupLoop(sqlite_store, settings, clock)
    assert loop.name == "offload_cleanup"
    assert await loop.clean() == 1
    assert len(list(storage_dir.glob("acme/*/big.bin"))) == 1
    stop = asyncio.Event()
    running = asyncio.create_task(loop.run(stop))
    await clock.advance(DAY + 3600)  # the next round, after the second file expired
    stop.set()
    await running
    assert list(storage_dir.glob("acme/*/big.bin")) == []
    assert await sqlite_store.offloaded_files.expired(NOW + 99 * DAY, 10) == []


async def test_expired_s3_objects_are_removed(
    sqlite_store: Store, settings_factory: Callable[..., Settings], s3_server: S3Server
) -> None:
    tenant = Tenant(id="s3tenant", large_file_config=s3_server.config(file_ttl_days=1))
    await sqlite_store.tenants.create(tenant, None, NOW)
    settings = settings_factory()
    await _offload(sqlite_store, settings, tenant, NOW)
    [file] = await sqlite_store.offloaded_files.expired(NOW + DAY, 10)
    key = file.url.removeprefix(f"s3://{BUCKET}/")
    client = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=MOTO_KEY,
        aws_secret_access_key=MOTO_SECRET,
    )
    assert client.get_object(Bucket=BUCKET, Key=key)["ContentLength"] == len(BIG.content)
    loop = OffloadCleanupLoop(sqlite_store, settings, ManualClock(start=NOW + DAY))
    assert await loop.clean() == 1
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=key)
    assert listed["KeyCount"] == 0


@pytest.mark.slow  # s3fs retries the dead endpoint with back-off (~6 s)
async def test_a_file_that_cannot_be_removed_keeps_its_row(
    sqlite_store: Store, settings_factory: Callable[..., Settings], s3_server: S3Server
) -> None:
    """Storage that cannot be reached (a closed loopback port) keeps the row: the
    file is tried again next round rather than forgotten."""
    config = s3_server.config(file_ttl_days=1)
    tenant = Tenant(id="s3tenant", large_file_config=config)
    await sqlite_store.tenants.create(tenant, None, NOW)
    settings = settings_factory()
    await _offload(sqlite_store, settings, tenant, NOW)
    broken = {**config, "access_key_id": "unknown", "endpoint_url": "http://127.0.0.1:9"}
    await sqlite_store.tenants.update("s3tenant", {"large_file_config": broken}, NOW)
    loop = OffloadCleanupLoop(sqlite_store, settings, ManualClock(start=NOW + DAY))
    assert await loop.clean() == 0
    assert len(await sqlite_store.offloaded_files.expired(NOW + DAY, 10)) == 1
