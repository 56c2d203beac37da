"""The dashboard's store queries on every backend: keyset pages with filters,
retry-now, the overview's aggregates and sessions."""

from __future__ import annotations

from typing import Any

from mail_proxy.domain.models import Deferred, Failed, Tenant
from mail_proxy.ports import MessageFilter, SessionRecord

NOW = 1_700_000_000.0


async def _ids(
    q: Any, flt: MessageFilter, before: int | None = None, limit: int = 100
) -> list[str]:
    return [r.id for r in await q.store.messages.page(flt, before_pk=before, limit=limit)]


async def test_pages_are_newest_first_with_every_filter(q: Any) -> None:
    for tenant in ("acme", "other"):
        await q.store.tenants.create(Tenant(id=tenant), None, NOW)
    await q.store.intake.enqueue(
        [q.message("a"), q.message("b", batch_code="nl", subject="Café <ok>")], NOW
    )
    await q.store.intake.enqueue([q.message("c", tenant="other", account="smtp2")], NOW + 100)
    assert await _ids(q, MessageFilter()) == ["c", "b", "a"]
    first = await q.store.messages.page(MessageFilter(), before_pk=None, limit=1)
    assert await _ids(q, MessageFilter(), before=first[0].pk) == ["b", "a"]
    assert await _ids(q, MessageFilter(tenant_id="acme")) == ["b", "a"]
    assert await _ids(q, MessageFilter(batch_code="nl")) == ["b"]
    assert await _ids(q, MessageFilter(message_id="a")) == ["a"]
    assert await _ids(q, MessageFilter(account_id="smtp2")) == ["c"]
    assert await _ids(q, MessageFilter(text="CAFÉ")) == []  # non-ASCII case is not folded
    assert await _ids(q, MessageFilter(text="café <ok")) == ["b"]
    assert await _ids(q, MessageFilter(text="100%")) == []
    assert await _ids(q, MessageFilter(since=NOW + 50)) == ["c"]
    assert await _ids(q, MessageFilter(until=NOW + 50)) == ["b", "a"]
    assert await _ids(q, MessageFilter(since=NOW + 1, until=NOW + 2)) == []


async def test_an_id_without_its_tenant_is_found_in_every_tenant(q: Any) -> None:
    """No index on id alone: each tenant's (tenant_id, id) is looked up instead."""
    for tenant in ("acme", "other", "idle"):
        await q.store.tenants.create(Tenant(id=tenant), None, NOW)
    await q.store.intake.enqueue([q.message("same"), q.message("else")], NOW)
    await q.store.intake.enqueue([q.message("same", tenant="other", account="smtp2")], NOW)
    found = await q.store.messages.page(MessageFilter(message_id="same"), before_pk=None, limit=10)
    assert [(r.tenant_id, r.id) for r in found] == [("other", "same"), ("acme", "same")]
    one = MessageFilter(message_id="same", tenant_id="acme")
    assert [r.tenant_id for r in await q.store.messages.page(one, before_pk=None, limit=10)] == [
        "acme"
    ]
    assert await _ids(q, MessageFilter(message_id="missing")) == []


async def test_retry_now_makes_a_waiting_unleased_message_due(q: Any) -> None:
    await q.store.intake.enqueue([q.message("later", deferred_ts=int(NOW) + 3600)], NOW)
    await q.store.intake.enqueue([q.message("busy")], NOW)
    [busy] = [c for c in await q.claim() if c.record.id == "busy"]
    assert await q.store.messages.retry_now("acme", "later", NOW + 1)
    assert await q.claim_ids(NOW + 1) == ["later"]
    assert not await q.store.messages.retry_now("acme", "busy", NOW + 1)  # leased
    assert not await q.store.messages.retry_now("acme", "ghost", NOW + 1)
    await q.send_all([busy])
    assert not await q.store.messages.retry_now("acme", "busy", NOW + 1)  # sent


async def test_overview_aggregates(q: Any) -> None:
    await q.store.tenants.create(Tenant(id="acme"), None, NOW)
    await q.store.intake.enqueue([q.message(f"m{i}") for i in range(4)], NOW)
    await q.store.intake.enqueue([q.message("late")], NOW + 120)
    claimed = {c.record.id: c for c in await q.claim()}
    finish = q.store.queue.finish
    await finish(claimed["m0"].record.pk, claimed["m0"].lease_token, Failed(NOW, "550 no"))
    for name in ("m1", "m2"):
        c = claimed[name]
        await finish(c.record.pk, c.lease_token, Deferred(NOW + 60, "421 busy", NOW))
    await q.send_all([claimed["m3"]])
    minutes = await q.store.overview.per_minute(NOW - 60, None)
    by_minute = {m.minute: (m.queued, m.sent, m.failed) for m in minutes}
    assert by_minute == {int(NOW // 60): (4, 1, 1), int((NOW + 120) // 60): (1, 0, 0)}
    assert await q.store.overview.per_minute(NOW - 60, "other") == []
    assert await q.store.overview.oldest_active("acme") == NOW
    assert await q.store.overview.deferred_reasons(None, 5) == [("421 busy", 2)]
    [backlog] = await q.store.overview.backlogs(None)
    assert (backlog.tenant_id, backlog.unreported) == ("acme", 4)
    assert await q.store.overview.newest_pk("acme") == claimed["late"].record.pk
    assert await q.store.overview.newest_pk("other") == 0


async def test_sessions_are_kept_by_digest_and_purged_when_expired(q: Any) -> None:
    sessions = q.store.sessions
    await sessions.add(SessionRecord("a" * 64, None, "c" * 64, NOW, NOW + 10))
    await sessions.add(SessionRecord("b" * 64, "acme", "d" * 64, NOW, NOW + 100))
    assert await sessions.get("b" * 64) == SessionRecord("b" * 64, "acme", "d" * 64, NOW, NOW + 100)
    assert await sessions.purge(NOW + 10) == 1
    assert await sessions.get("a" * 64) is None
    await sessions.remove("b" * 64)
    assert await sessions.get("b" * 64) is None
