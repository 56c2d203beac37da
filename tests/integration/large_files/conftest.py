"""Fixtures of the large-file tests: a store, a storage directory, tenants with a
``large_file_config``, and moto's S3 server started on loopback.

moto is a dev dependency: without it the S3 tests are skipped, or fail when
``GMP_TEST_REQUIRE_MOTO=1`` (as in CI).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mail_proxy.api import create_app
from mail_proxy.domain.models import Tenant
from mail_proxy.runtime import Runtime
from mail_proxy.settings import Settings
from mail_proxy.testing import ManualClock

NOW = 1_767_225_600.0  # 2026-01-01 00:00 UTC
ADMIN_TOKEN = "admin-token-for-large-files"
BUCKET = "mail-large-files"
MOTO_KEY = "testing-key-id"
MOTO_SECRET = "testing-secret"  # moto accepts any credentials


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    def config(self, **overrides: Any) -> dict[str, Any]:
        return {
            "enabled": True,
            "max_size_mb": 0.01,
            "action": "rewrite",
            "storage_url": f"s3://{BUCKET}/offloaded",
            "endpoint_url": self.endpoint_url,
            "region": "us-east-1",
            "access_key_id": MOTO_KEY,
            "secret_access_key": MOTO_SECRET,
            **overrides,
        }


@pytest.fixture
def storage_dir(tmp_path: Path) -> Path:
    path = tmp_path / "offloaded"
    path.mkdir()
    return path


@pytest.fixture
def local_tenant(storage_dir: Path) -> Callable[..., Tenant]:
    """A tenant offloading attachments above 10 KiB to ``storage_dir``."""

    def make(**overrides: Any) -> Tenant:
        config = {
            "enabled": True,
            "max_size_mb": 10 / 1024,
            "action": "rewrite",
            "storage_url": f"file://{storage_dir}",
            "file_ttl_days": 30,
            "lifespan_after_download_days": 2,
            **overrides,
        }
        return Tenant(id="acme", large_file_config=config)

    return make


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=NOW)


@pytest.fixture
async def runtime(
    settings_factory: Callable[..., Settings], clock: ManualClock
) -> AsyncIterator[Runtime]:
    settings = settings_factory(public_base_url="http://proxy.test", api_token=ADMIN_TOKEN)
    opened = await Runtime.open(settings, clock)
    yield opened
    await opened.close()


@pytest.fixture
async def anonymous(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The real API app over ASGI, without a token (as a recipient follows a link)."""
    app = create_app(runtime.settings, runtime)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://proxy.test") as client:
        yield client


@pytest.fixture
async def admin(anonymous: httpx.AsyncClient) -> httpx.AsyncClient:
    anonymous.headers["X-API-Token"] = ADMIN_TOKEN
    return anonymous


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    try:
        import boto3
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        problem = f"moto[server] not installed ({exc}); pip install -e '.[dev]'"
        if os.environ.get("GMP_TEST_REQUIRE_MOTO") == "1":
            pytest.fail(problem, pytrace=False)
        pytest.skip(problem)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=MOTO_KEY,
        aws_secret_access_key=MOTO_SECRET,
    )
    client.create_bucket(Bucket=BUCKET)
    try:
        yield S3Server(endpoint)
    finally:
        server.stop()
