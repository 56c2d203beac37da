"""``large_file_config`` through the tenant API: checked when saved, its storage
secret write-only (masked in answers, kept when sent back masked) and sealed at rest."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from mail_proxy.runtime import Runtime
from mail_proxy.schemas.common import MASK
from mail_proxy.storage.store import SqlStore

CONFIG = {
    "enabled": True,
    "max_size_mb": 5,
    "action": "rewrite",
    "storage_url": "s3://bucket/prefix",
    "endpoint_url": "https://minio.acme.example",
    "access_key_id": "AKIAEXAMPLE",
    "secret_access_key": "very-secret-storage-key",
}


async def _stored_json(runtime: Runtime) -> str:
    assert isinstance(runtime.store, SqlStore)
    async with runtime.store.writer_engine.connect() as conn:
        query = sa.text("SELECT large_file_config FROM tenants WHERE id = 'acme'")
        return str((await conn.execute(query)).scalar_one())


async def test_secret_is_masked_kept_and_sealed(admin: httpx.AsyncClient, runtime: Runtime) -> None:
    created = await admin.post("/tenant", json={"id": "acme", "large_file_config": CONFIG})
    assert created.status_code == 200, created.text
    shown = (await admin.get("/tenant/acme")).json()["large_file_config"]
    assert shown["secret_access_key"] == MASK and shown["access_key_id"] == "AKIAEXAMPLE"
    assert "very-secret-storage-key" not in await _stored_json(runtime)
    sent_back = {**shown, "max_size_mb": 8}
    assert (await admin.put("/tenant/acme", json={"large_file_config": sent_back})).is_success
    tenant = await runtime.store.tenants.get("acme")
    assert tenant is not None and tenant.large_file_config is not None
    assert tenant.large_file_config["secret_access_key"] == "very-secret-storage-key"
    assert tenant.large_file_config["max_size_mb"] == 8


async def test_bad_config_is_refused_naming_the_problem(admin: httpx.AsyncClient) -> None:
    bad = {**CONFIG, "storage_url": "s3://AKIA:secret@bucket/prefix"}
    answer = await admin.post("/tenant", json={"id": "acme", "large_file_config": bad})
    assert answer.status_code == 422
    assert "not in storage_url" in answer.text and "AKIA:secret" not in answer.text
    answer = await admin.post(
        "/tenant", json={"id": "acme", "large_file_config": {"action": "rewrite"}}
    )
    assert answer.status_code == 422 and "needs a storage_url" in answer.text
