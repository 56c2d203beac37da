"""The command log store on both backends: time window, endpoint match, pruning."""

from __future__ import annotations

from tests.contract.conftest import Queue

NOW = 1_700_000_000.0


async def _log(q: Queue, ts: float, method: str, path: str) -> None:
    await q.store.audit.record(
        ts=ts, method=method, path=path, actor="admin", tenant_id=None,
        status_code=200, body=None,
    )  # fmt: skip


async def test_until_and_endpoint_filters(q: Queue) -> None:
    """until is inclusive; endpoint matches part of "METHOD /path", any case, with
    LIKE wildcards taken literally."""
    await _log(q, NOW, "POST", "/tenant")
    await _log(q, NOW + 1, "DELETE", "/account/a_1?tenant_id=acme")
    await _log(q, NOW + 2, "POST", "/commands/add-messages")

    async def paths(**filters: object) -> list[str]:
        return [e.path for e in await q.store.audit.entries(**filters)]  # type: ignore[arg-type]

    assert await paths(until=NOW + 1) == ["/tenant", "/account/a_1?tenant_id=acme"]
    assert await paths(since=NOW + 1, until=NOW + 1) == ["/account/a_1?tenant_id=acme"]
    assert await paths(endpoint="delete /ACCOUNT") == ["/account/a_1?tenant_id=acme"]
    assert await paths(endpoint="post") == ["/tenant", "/commands/add-messages"]
    assert await paths(endpoint="a_1") == ["/account/a_1?tenant_id=acme"]
    assert await paths(endpoint="a%1") == []
    assert await paths(endpoint="ccount_") == []


async def test_purge_removes_only_older_entries(q: Queue) -> None:
    for offset in (0, 10, 20):
        await _log(q, NOW + offset, "POST", f"/at/{offset}")
    assert await q.store.audit.purge(NOW + 10) == 1
    assert [e.path for e in await q.store.audit.entries()] == ["/at/10", "/at/20"]
    assert await q.store.audit.purge(NOW) == 0
