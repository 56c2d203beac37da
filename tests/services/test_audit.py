"""The audit service on a real SQLite store: filtered listing, export, retention."""

from __future__ import annotations

import pytest

from mail_proxy.ports import Store
from mail_proxy.services import audit
from mail_proxy.services.audit import AuditFilter, AuditService

NOW = 1_700_000_000.0
RETENTION = 100.0


async def _log(store: Store, ts: float, path: str, tenant_id: str | None = None) -> None:
    await store.audit.record(
        ts=ts, method="POST", path=path, actor="admin", tenant_id=tenant_id,
        status_code=200, body=None,
    )  # fmt: skip


@pytest.fixture
def service(sqlite_store: Store) -> AuditService:
    return AuditService(sqlite_store, retention_seconds=RETENTION, clock=lambda: NOW)


async def test_entries_are_filtered_and_paged(service: AuditService, sqlite_store: Store) -> None:
    await _log(sqlite_store, NOW - 30, "/tenant", "acme")
    await _log(sqlite_store, NOW - 20, "/commands/suspend", "acme")
    await _log(sqlite_store, NOW - 10, "/commands/suspend", "zeta")

    async def paths(flt: AuditFilter, **paging: int) -> list[str]:
        return [f"{e.path} {e.tenant_id}" for e in await service.entries(flt, **paging)]

    assert await paths(AuditFilter(tenant_id="acme")) == ["/tenant acme", "/commands/suspend acme"]
    assert await paths(AuditFilter(endpoint="suspend", since=NOW - 15)) == [
        "/commands/suspend zeta"
    ]
    assert await paths(AuditFilter(until=NOW - 20), limit=1, offset=1) == ["/commands/suspend acme"]


async def test_export_reads_every_page(
    service: AuditService, sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "EXPORT_PAGE", 2)
    for n in range(5):
        await _log(sqlite_store, NOW + n, f"/at/{n}")
    exported = [e.path async for e in service.export(AuditFilter(since=NOW + 1))]
    assert exported == ["/at/1", "/at/2", "/at/3", "/at/4"]


async def test_purge_forgets_entries_past_the_retention(
    service: AuditService, sqlite_store: Store
) -> None:
    await _log(sqlite_store, NOW - RETENTION - 1, "/old")
    await _log(sqlite_store, NOW - RETENTION + 1, "/recent")
    assert await service.purge() == 1
    assert [e.path for e in await service.entries(AuditFilter())] == ["/recent"]
