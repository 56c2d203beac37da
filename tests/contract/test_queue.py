"""The queue contract on every backend: enqueue, claim, finish, list, delete, clean up."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from mail_proxy.domain.models import (
    Account,
    Deferred,
    EnqueueOutcome,
    Failed,
    Outcome,
    Sent,
    Status,
    Tenant,
)
from mail_proxy.ports import MessageFilter

if TYPE_CHECKING:
    from conftest import Queue

NOW = 1_700_000_000.0
FinishItem = tuple[int, str, Outcome]
LEASE = 60.0


async def test_enqueue_queues_new_messages_in_input_order(q: Queue) -> None:
    """New ids are queued pending, with payload and fields kept as given."""
    results = await q.store.intake.enqueue([q.message("a"), q.message("b", batch_code="nl")], NOW)
    assert [(r.id, r.outcome) for r in results] == [
        ("a", EnqueueOutcome.QUEUED),
        ("b", EnqueueOutcome.QUEUED),
    ]
    record = await q.store.messages.get("acme", "b")
    assert record is not None
    assert (record.status, record.batch_code, record.attempts) == (Status.PENDING, "nl", 0)
    assert record.payload["subject"] == "hello"
    assert record.created_at == int(NOW)


async def test_enqueue_replaces_unsent_and_rejects_sent(q: Queue) -> None:
    """An unsent id is replaced (status reset); an already sent id is rejected."""
    await q.store.intake.enqueue([q.message("keep"), q.message("done")], NOW)
    [keep, done] = await q.claim()
    await q.store.queue.finish(done.record.pk, done.lease_token, Sent(ts=NOW))
    await q.store.queue.release([(keep.record.pk, keep.lease_token)])
    results = await q.store.intake.enqueue(
        [q.message("keep", subject="v2"), q.message("done", subject="v2")], NOW + 1
    )
    assert results[0].outcome == EnqueueOutcome.REPLACED
    assert (results[1].outcome, results[1].reason) == (EnqueueOutcome.REJECTED, "id already sent")
    kept = await q.store.messages.get("acme", "keep")
    assert kept is not None and kept.payload["subject"] == "v2"


async def test_enqueue_replaces_failed_message_and_resets_it(q: Queue) -> None:
    """A message that failed may be resubmitted: pending again, attempts and error reset."""
    await q.store.intake.enqueue([q.message("m")], NOW)
    [c] = await q.claim()
    await q.store.queue.finish(c.record.pk, c.lease_token, Failed(ts=NOW, error="550 no"))
    [result] = await q.store.intake.enqueue([q.message("m")], NOW + 5)
    assert result.outcome == EnqueueOutcome.REPLACED
    record = await q.store.messages.get("acme", "m")
    assert record is not None
    assert (record.status, record.attempts, record.error) == (Status.PENDING, 0, None)


async def test_enqueue_rejects_message_being_sent_until_lease_expires(q: Queue) -> None:
    """A leased message cannot be replaced; once its lease expired it can."""
    await q.store.intake.enqueue([q.message("m")], NOW)
    await q.claim()
    [busy] = await q.store.intake.enqueue([q.message("m")], NOW + 1)
    assert (busy.outcome, busy.reason) == (EnqueueOutcome.REJECTED, "message is being sent")
    [later] = await q.store.intake.enqueue([q.message("m")], NOW + LEASE + 1)
    assert later.outcome == EnqueueOutcome.REPLACED


async def test_enqueue_same_id_twice_in_one_batch_keeps_the_last(q: Queue) -> None:
    """A repeat inside one batch replaces the earlier copy; one row is stored."""
    results = await q.store.intake.enqueue(
        [q.message("d", subject="1"), q.message("d", subject="2")], NOW
    )
    assert [r.outcome for r in results] == [EnqueueOutcome.QUEUED, EnqueueOutcome.REPLACED]
    assert await q.store.messages.count(MessageFilter(tenant_id="acme")) == 1
    record = await q.store.messages.get("acme", "d")
    assert record is not None and record.payload["subject"] == "2"


async def test_same_id_under_two_tenants_are_two_messages(q: Queue) -> None:
    """Identity is (tenant_id, id)."""
    await q.store.intake.enqueue([q.message("x", tenant="t1"), q.message("x", tenant="t2")], NOW)
    assert await q.store.messages.count(MessageFilter()) == 2


async def test_claim_orders_by_priority_then_submission(q: Queue) -> None:
    """Priority 0 first, then 1..3; FIFO within one priority."""
    await q.store.intake.enqueue(
        [
            q.message("low", priority=3),
            q.message("m1"),
            q.message("imm", priority=0),
            q.message("m2"),
        ],
        NOW,
    )
    assert await q.claim_ids() == ["imm", "m1", "m2", "low"]


async def test_claim_respects_priority_range_and_limit(q: Queue) -> None:
    """Only priorities within [min, max]; never more than ``limit``."""
    await q.store.intake.enqueue([q.message(f"p{p}", priority=p) for p in range(4)], NOW)
    assert await q.claim_ids(min_priority=0, max_priority=0) == ["p0"]
    assert await q.claim_ids(min_priority=1, limit=2) == ["p1", "p2"]


async def test_claim_skips_messages_deferred_to_the_future(q: Queue) -> None:
    """A message is due only once ``deferred_ts`` has passed."""
    await q.store.intake.enqueue(
        [q.message("later", deferred_ts=int(NOW) + 100), q.message("now")], NOW
    )
    [due] = await q.claim()
    assert due.record.id == "now"
    await q.send_all([due])
    assert await q.claim_ids(now=NOW + 99) == []
    assert await q.claim_ids(now=NOW + 100) == ["later"]


async def test_claim_caps_per_account_and_uses_account_batch_size(q: Queue) -> None:
    """At most ``per_account`` per account, or the account's own ``batch_size``."""
    await q.store.accounts.upsert(
        Account(id="small", tenant_id="acme", host="h", batch_size=1), NOW
    )
    batch = [q.message(f"a{i}", account="big") for i in range(5)]
    batch += [q.message(f"s{i}", account="small") for i in range(3)]
    await q.store.intake.enqueue(batch, NOW)
    assert await q.claim_ids(per_account=2) == ["a0", "a1", "s0"]


async def test_claim_skips_suspended_tenants_and_batches(q: Queue) -> None:
    """Suspending '*' holds the whole tenant; a batch code holds only that batch."""
    await q.store.intake.enqueue(
        [
            q.message("n1", batch_code="newsletter"),
            q.message("t1", batch_code="transactional"),
            q.message("o1", tenant="other"),
        ],
        NOW,
    )
    await q.store.control.suspend("acme", "newsletter")
    await q.store.control.suspend("other", "*")
    assert await q.claim_ids() == ["t1"]
    await q.store.control.activate("other", None)
    await q.store.control.activate("acme", "newsletter")
    assert sorted(await q.claim_ids()) == ["n1", "o1"]


async def test_claim_skips_inactive_tenants(q: Queue) -> None:
    """Messages of a tenant with ``active=False`` wait until it is active again."""
    await q.store.tenants.create(Tenant(id="acme", active=False), None, NOW)
    await q.store.intake.enqueue([q.message("m")], NOW)
    assert await q.claim_ids() == []
    await q.store.tenants.update("acme", {"active": True}, NOW)
    assert await q.claim_ids() == ["m"]


async def test_expired_lease_is_taken_over_and_stale_finish_changes_nothing(
    q: Queue,
) -> None:
    """After expiry another claimer gets the message; the first token is then stale."""
    await q.store.intake.enqueue([q.message("m")], NOW)
    [first] = await q.claim()
    assert await q.claim(now=NOW + 1) == []
    [second] = await q.claim(now=NOW + LEASE + 1)
    assert second.lease_token != first.lease_token
    assert await q.store.queue.finish(first.record.pk, first.lease_token, Sent(ts=NOW)) is False
    record = await q.store.messages.get("acme", "m")
    assert record is not None and record.status == Status.PENDING
    assert await q.store.messages.events("acme", "m") == []
    assert (
        await q.store.queue.finish(second.record.pk, second.lease_token, Sent(ts=NOW + 70)) is True
    )


async def test_finish_outcomes_update_message_and_append_events(q: Queue) -> None:
    """Sent, Deferred and Failed each set their fields, clear the lease, add an event."""
    await q.store.intake.enqueue([q.message("s"), q.message("d"), q.message("f")], NOW)
    s, d, f = await q.claim()
    applied = await q.store.queue.finish_many(
        [
            (s.record.pk, s.lease_token, Sent(ts=NOW + 1, details={"reply": "250 ok"})),
            (d.record.pk, d.lease_token, Deferred(until=NOW + 60, reason="451 busy", ts=NOW + 1)),
            (f.record.pk, f.lease_token, Failed(ts=NOW + 1, error="550 unknown user")),
        ]
    )
    assert applied == [True, True, True]
    sent, deferred, failed = [await q.store.messages.get("acme", i) for i in ("s", "d", "f")]
    assert sent is not None and (sent.status, sent.smtp_ts) == (Status.SENT, int(NOW) + 1)
    assert deferred is not None
    assert (deferred.status, deferred.deferred_ts, deferred.attempts, deferred.error) == (
        Status.DEFERRED, int(NOW) + 60, 1, "451 busy",
    )  # fmt: skip
    assert failed is not None
    assert (failed.status, failed.error_ts, failed.error) == (
        Status.ERROR, int(NOW) + 1, "550 unknown user",
    )  # fmt: skip
    [sent_event] = await q.store.messages.events("acme", "s")
    assert (sent_event.type, sent_event.details) == ("sent", {"reply": "250 ok"})
    [deferred_event] = await q.store.messages.events("acme", "d")
    assert deferred_event.description == "451 busy"
    assert deferred_event.details == {"deferred_until": NOW + 60}
    [error_event] = await q.store.messages.events("acme", "f")
    assert (error_event.type, error_event.description) == ("error", "550 unknown user")


async def test_a_mixed_batch_is_applied_in_one_finish(q: Queue) -> None:
    """Every kind in one batch, with a stale lease and a pk given twice: each row gets
    its own change, only matching leases count, and the events' ids follow the batch."""
    ids = ("held", "sent", "stale", "failed", "deferred")
    await q.store.intake.enqueue([q.message(i) for i in ids], NOW)
    claimed = {c.record.id: c for c in await q.claim()}

    def item(message_id: str, outcome: Outcome, token: str | None = None) -> FinishItem:
        c = claimed[message_id]
        return (c.record.pk, token or c.lease_token, outcome)

    hold = Deferred(until=NOW + 30, reason="rate limit", ts=NOW, counts_attempt=False)
    applied = await q.store.queue.finish_many(
        [
            item("held", hold),
            item("sent", Sent(ts=NOW)),
            item("stale", Sent(ts=NOW), token="not-the-lease"),
            item("failed", Failed(ts=NOW, error="550 no")),
            item("sent", Failed(ts=NOW, error="given twice")),
            item("deferred", Deferred(until=NOW + 60, reason="451 later", ts=NOW)),
        ]
    )
    assert applied == [True, True, False, True, False, True]
    rows = {i: await q.store.messages.get("acme", i) for i in ids}
    assert {i: (r.status, r.attempts) for i, r in rows.items() if r is not None} == {
        "held": (Status.DEFERRED, 0),
        "sent": (Status.SENT, 1),
        "stale": (Status.PENDING, 0),
        "failed": (Status.ERROR, 1),
        "deferred": (Status.DEFERRED, 1),
    }
    events = await q.store.outbox.unreported(None, 10)
    assert [(e.message_id, e.type) for e in events] == [
        ("held", "deferred"),
        ("sent", "sent"),
        ("failed", "error"),
        ("deferred", "deferred"),
    ]
    assert [e.event_id for e in events] == sorted(e.event_id for e in events)


async def test_deferred_message_is_claimed_again_when_due(q: Queue) -> None:
    """A deferral puts the message back in the queue at ``until``."""
    await q.store.intake.enqueue([q.message("m")], NOW)
    [c] = await q.claim()
    await q.store.queue.finish(
        c.record.pk, c.lease_token, Deferred(until=NOW + 30, reason="x", ts=NOW)
    )
    assert await q.claim_ids(now=NOW + 29) == []
    [again] = await q.claim(now=NOW + 30)
    assert again.record.attempts == 1


async def test_finish_many_with_a_stale_item_applies_only_the_others(q: Queue) -> None:
    """Results are per item and in input order."""
    await q.store.intake.enqueue([q.message("a"), q.message("b")], NOW)
    a, b = await q.claim()
    applied = await q.store.queue.finish_many(
        [(a.record.pk, "not-the-token", Sent(ts=NOW)), (b.record.pk, b.lease_token, Sent(ts=NOW))]
    )
    assert applied == [False, True]
    assert await q.store.queue.finish_many([]) == []


async def test_release_returns_leased_messages_untouched(q: Queue) -> None:
    """Released messages are claimable at once; a wrong token releases nothing."""
    await q.store.intake.enqueue([q.message("a"), q.message("b")], NOW)
    a, b = await q.claim()
    released = await q.store.queue.release([(a.record.pk, a.lease_token), (b.record.pk, "wrong")])
    assert released == 1
    assert await q.claim_ids(now=NOW + 1) == ["a"]


async def test_listing_filters_and_counts(q: Queue) -> None:
    """Filters by tenant, status, activity, batch and account; pages in pk order."""
    await q.store.intake.enqueue(
        [q.message(f"m{i}", batch_code="b" if i % 2 else None) for i in range(5)]
        + [q.message("z", tenant="other", account="smtp2")],
        NOW,
    )
    [c] = await q.claim(limit=1)
    await q.send_all([c])
    page = await q.store.messages.search(MessageFilter(tenant_id="acme"), limit=2, offset=1)
    assert [m.id for m in page] == ["m1", "m2"]
    assert await q.store.messages.count(MessageFilter(status=Status.SENT)) == 1
    assert await q.store.messages.count(MessageFilter(active_only=True)) == 5
    assert await q.store.messages.count(MessageFilter(batch_code="b")) == 2
    assert await q.store.messages.count(MessageFilter(account_id="smtp2")) == 1
    counts = await q.store.messages.count_by_status()
    assert (counts[Status.PENDING], counts[Status.SENT], counts[Status.ERROR]) == (5, 1, 0)
    assert (await q.store.messages.count_by_status("other"))[Status.PENDING] == 1


async def test_oldest_due(q: Queue) -> None:
    """Queue age ignores future and leased messages."""
    await q.store.intake.enqueue([q.message("old")], NOW)
    await q.store.intake.enqueue([q.message("young")], NOW + 10)
    await q.store.intake.enqueue([q.message("future", deferred_ts=int(NOW) + 500)], NOW + 20)
    assert await q.store.queue.oldest_due_ts(NOW + 30) == NOW
    await q.claim(now=NOW + 30, limit=1)
    assert await q.store.queue.oldest_due_ts(NOW + 30) == NOW + 10


async def test_delete_messages_is_scoped_to_the_tenant(q: Queue) -> None:
    """Own ids are removed, other tenants' ids are unauthorized, unknown ids not found."""
    await q.store.intake.enqueue([q.message("mine"), q.message("theirs", tenant="other")], NOW)
    result = await q.store.messages.delete("acme", ["mine", "theirs", "ghost", "mine"])
    assert (result.removed, result.unauthorized, result.not_found) == (
        ["mine"], ["theirs"], ["ghost"],
    )  # fmt: skip
    assert await q.store.messages.get("acme", "mine") is None
    assert await q.store.messages.get("other", "theirs") is not None


async def test_cleanup_removes_only_reported_finished_messages(q: Queue) -> None:
    """Pending, unreported or too recent messages stay; events go with their message."""
    await q.store.intake.enqueue(
        [q.message(i) for i in ("acked", "unacked", "recent", "pending")], NOW
    )
    claimed = await q.claim(limit=3)
    await q.send_all(claimed[:2], ts=NOW)
    await q.send_all(claimed[2:], ts=NOW + 500)
    events = await q.store.outbox.unreported("acme", 10)
    acked = [e.event_id for e in events if e.message_id in ("acked", "recent")]
    await q.store.outbox.ack(acked, NOW + 600)
    assert await q.store.messages.cleanup(NOW + 100, tenant_id="other") == 0
    assert await q.store.messages.cleanup(NOW + 100) == 1
    assert await q.store.messages.get("acme", "acked") is None
    assert await q.store.messages.events("acme", "acked") == []
    remaining = await q.store.messages.search(MessageFilter())
    assert sorted(m.id for m in remaining) == ["pending", "recent", "unacked"]


async def test_rate_limit_hold_defers_without_spending_an_attempt(q: Queue) -> None:
    """``counts_attempt=False`` defers the message but leaves ``attempts`` alone."""
    await q.store.intake.enqueue([q.message("m")], NOW)
    [c] = await q.claim()
    hold = Deferred(until=NOW + 60, reason="rate limit", ts=NOW, counts_attempt=False)
    assert await q.store.queue.finish(c.record.pk, c.lease_token, hold) is True
    record = await q.store.messages.get("acme", "m")
    assert record is not None
    assert (record.status, record.attempts, record.deferred_ts) == (
        Status.DEFERRED, 0, int(NOW) + 60,
    )  # fmt: skip
    [event] = await q.store.messages.events("acme", "m")
    assert (event.type, event.description) == ("deferred", "rate limit")


async def test_same_message_twice_in_one_finish_applies_once(q: Queue) -> None:
    """A repeated pk in one batch: the first item wins, the repeat reports False."""
    await q.store.intake.enqueue([q.message("m")], NOW)
    [c] = await q.claim()
    applied = await q.store.queue.finish_many(
        [
            (c.record.pk, c.lease_token, Sent(ts=NOW)),
            (c.record.pk, c.lease_token, Failed(ts=NOW, error="x")),
        ]
    )
    assert applied == [True, False]
    assert len(await q.store.messages.events("acme", "m")) == 1


async def test_the_message_id_sent_is_stored_and_replaced_with_the_message(q: Queue) -> None:
    """The Message-ID goes in with the message (a bounce is traced back by it) and a
    replacement brings its own."""
    first = dataclasses.replace(q.message("m"), rfc_message_id="<one@example.com>")
    await q.store.intake.enqueue([first], NOW)
    stored = await q.store.messages.get("acme", "m")
    assert stored is not None and stored.rfc_message_id == "<one@example.com>"
    second = dataclasses.replace(first, rfc_message_id="<two@example.com>")
    await q.store.intake.enqueue([second], NOW + 1)
    [claimed] = await q.claim(now=NOW + 2)
    assert claimed.record.rfc_message_id == "<two@example.com>"
