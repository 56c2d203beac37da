"""``Intake.enqueue_leased``: queue and lease in one transaction, on both backends.

What it leases is exactly what a claim at the same moment would take of the
just-queued messages; the rest is left for claims, and the leased ones are finished
with the lease's token like any claimed message.
"""

from __future__ import annotations

from typing import Any

from mail_proxy.domain.models import EnqueueOutcome, LeaseRequest, Sent, Tenant

LEASE = LeaseRequest("handoff-token", 1_700_100_000.0)


async def _tenant(q: Any) -> None:
    await q.store.tenants.create(Tenant(id="acme"), None, q.now)


async def test_due_messages_are_queued_and_leased(q: Any) -> None:
    await _tenant(q)
    results, claimed = await q.store.intake.enqueue_leased(
        [q.message("b", priority=3), q.message("a", priority=1)], q.now, LEASE
    )
    assert [r.outcome for r in results] == [EnqueueOutcome.QUEUED] * 2
    assert [c.record.id for c in claimed] == ["a", "b"]  # dispatch order
    assert {(c.lease_token, c.lease_expires) for c in claimed} == {(LEASE.token, LEASE.expires)}
    assert claimed[0].record.payload["subject"] == "hello"
    assert await q.claim_ids() == []  # leased: no claim takes them
    assert await q.send_all(claimed) == [True, True]
    record = await q.store.messages.get("acme", "a")
    assert record is not None and record.status == "sent"


async def test_what_a_claim_would_not_take_is_left_unleased(q: Any) -> None:
    await _tenant(q)
    await q.store.control.suspend("acme", "held")
    batch = [
        q.message("later", deferred_ts=int(q.now) + 600),
        q.message("held", batch_code="held"),
        q.message("due", batch_code="other"),
    ]
    _, claimed = await q.store.intake.enqueue_leased(batch, q.now, LEASE)
    assert [c.record.id for c in claimed] == ["due"]
    assert await q.claim_ids(now=q.now + 700) == ["later"]


async def test_a_suspended_or_inactive_tenant_gets_nothing_leased(q: Any) -> None:
    await _tenant(q)
    await q.store.control.suspend("acme", "*")
    _, claimed = await q.store.intake.enqueue_leased([q.message("m")], q.now, LEASE)
    assert claimed == []
    await q.store.control.activate("acme", None)
    await q.store.tenants.create(Tenant(id="off", active=False), None, q.now)
    _, claimed = await q.store.intake.enqueue_leased([q.message("n", tenant="off")], q.now, LEASE)
    assert claimed == []
    assert await q.claim_ids() == ["m"]


async def test_a_replacement_is_leased_and_a_refusal_is_not(q: Any) -> None:
    await _tenant(q)
    await q.store.intake.enqueue([q.message("again"), q.message("done")], q.now)
    [done] = [c for c in await q.claim() if c.record.id == "done"]
    await q.store.queue.finish_many([(done.record.pk, done.lease_token, Sent(q.now))])
    await q.store.queue.release([])  # nothing else is held
    results, claimed = await q.store.intake.enqueue_leased(
        [q.message("again", subject="new"), q.message("done")], q.now + 61, LEASE
    )
    assert [r.outcome for r in results] == [EnqueueOutcome.REPLACED, EnqueueOutcome.REJECTED]
    assert [(c.record.id, c.record.payload["subject"]) for c in claimed] == [("again", "new")]
