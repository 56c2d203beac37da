"""The outbox contract: events in order, acknowledgement, statistics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mail_proxy.domain.models import Deferred, EventType, Sent

if TYPE_CHECKING:
    from conftest import Queue

NOW = 1_700_000_000.0


async def test_events_of_a_message_come_in_order(q: Queue) -> None:
    """Each finish appends one event, in the order they happened."""
    await q.store.intake.enqueue([q.message("m")], NOW)
    [c] = await q.claim()
    await q.store.queue.finish(
        c.record.pk, c.lease_token, Deferred(until=NOW, reason="421", ts=NOW)
    )
    [c] = await q.claim(now=NOW + 1)
    await q.store.queue.finish(c.record.pk, c.lease_token, Sent(ts=NOW + 2))
    events = await q.store.messages.events("acme", "m")
    assert [e.type for e in events] == [EventType.DEFERRED, EventType.SENT]
    assert events[0].event_id < events[1].event_id
    assert events[0].description == "421"
    assert all(e.message_pk == c.record.pk and e.tenant_id == "acme" for e in events)


async def test_unreported_events_per_tenant_and_overall(q: Queue) -> None:
    """Oldest first, optionally for one tenant, bounded by ``limit``."""
    await q.store.intake.enqueue(
        [q.message("a1"), q.message("b1", tenant="beta"), q.message("a2")], NOW
    )
    await q.send_all(await q.claim())
    everything = await q.store.outbox.unreported(None, 10)
    assert [e.message_id for e in everything] == ["a1", "b1", "a2"]
    assert [e.message_id for e in await q.store.outbox.unreported("acme", 1)] == ["a1"]
    assert await q.store.outbox.tenants_with_unreported() == ["acme", "beta"]
    assert await q.store.outbox.unreported_stats() == (3, NOW)


async def test_ack_marks_exactly_the_given_events(q: Queue) -> None:
    """Acked events leave the outbox; the others stay; acking twice changes nothing."""
    await q.store.intake.enqueue([q.message("a"), q.message("b")], NOW)
    await q.send_all(await q.claim())
    a, b = await q.store.outbox.unreported(None, 10)
    assert await q.store.outbox.ack([a.event_id], NOW + 5) == 1
    assert await q.store.outbox.ack([a.event_id], NOW + 9) == 0
    assert await q.store.outbox.ack([], NOW) == 0
    assert [e.event_id for e in await q.store.outbox.unreported(None, 10)] == [b.event_id]
    [acked] = await q.store.messages.events("acme", "a")
    assert acked.reported_ts == int(NOW) + 5
    assert await q.store.outbox.tenants_with_unreported() == ["acme"]


async def test_message_is_reported_once_finished_and_all_events_acked(q: Queue) -> None:
    """``reported_ts`` on the message: only when finished with nothing left to report."""
    await q.store.intake.enqueue([q.message("m")], NOW)
    [c] = await q.claim()
    await q.store.queue.finish(c.record.pk, c.lease_token, Deferred(until=NOW, reason="x", ts=NOW))
    [deferred_event] = await q.store.outbox.unreported(None, 10)
    await q.store.outbox.ack([deferred_event.event_id], NOW + 1)
    record = await q.store.messages.get("acme", "m")
    assert record is not None and record.reported_ts is None
    [c] = await q.claim(now=NOW + 2)
    await q.store.queue.finish(c.record.pk, c.lease_token, Sent(ts=NOW + 2))
    [sent_event] = await q.store.outbox.unreported(None, 10)
    await q.store.outbox.ack([sent_event.event_id], NOW + 3)
    record = await q.store.messages.get("acme", "m")
    assert record is not None and record.reported_ts == int(NOW) + 3
