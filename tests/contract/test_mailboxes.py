"""Returned mail recorded on both backends: correlation, once-only, suppression, leases."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from mail_proxy.domain.bounces import BounceType, FailedRecipient
from mail_proxy.domain.models import Account, EventType, Tenant
from mail_proxy.domain.pec import PecReceipt
from mail_proxy.domain.returned_mail import Bounce, Ignored
from mail_proxy.domain.suppression import SoftBouncePolicy
from mail_proxy.ports.returned_mail import BounceRecord, BounceRules, Mailboxes, Recorded
from mail_proxy.settings import Settings
from mail_proxy.storage import open_store

if TYPE_CHECKING:
    from conftest import Queue

NOW = 1_700_000_000.0
RULES = BounceRules(SoftBouncePolicy(limit=2, window=3600), match_window=86400)
HARD = FailedRecipient("b@example.com", BounceType.HARD, "5.1.1", "User unknown")
SOFT = FailedRecipient("b@example.com", BounceType.SOFT, "4.2.2", "Mailbox full")


async def _sent(q: Queue, *ids: str, tenant: str = "acme") -> None:
    batch = [
        dataclasses.replace(q.message(i, tenant=tenant), rfc_message_id=f"<{tenant}.{i}@x>")
        for i in ids
    ]
    await q.store.intake.enqueue(batch, NOW)
    await q.send_all(await q.claim(), ts=NOW)


async def _record_bounce(
    mb: Mailboxes, key: str, bounce: Bounce, now: float = NOW
) -> tuple[BounceRecord, ...] | None:
    [done] = await mb.record("box", [(key, bounce)], tenant_id=None, rules=RULES, now=now)
    return done.bounces if done.new else None


async def _record_receipt(mb: Mailboxes, key: str, receipt: PecReceipt, tenant: str) -> Recorded:
    [done] = await mb.record("pec", [(key, receipt)], tenant_id=tenant, rules=RULES, now=NOW)
    return done


def _bounce(mail_id: str | None, message_id: str | None, *failed: FailedRecipient) -> Bounce:
    return Bounce(failed or (HARD,), mail_id, message_id, standard=True)


async def test_bounce_matched_by_mail_id_message_id_or_recipient(q: Queue) -> None:
    """Each way of matching leads to the message and appends a ``bounce`` event; an
    id used by two tenants is told apart by the Message-ID."""
    await _sent(q, "m1", "m2", "m3")
    await _sent(q, "m1", tenant="beta")
    mb = q.store.mailboxes
    [by_both] = await _record_bounce(mb, "1:1", _bounce("m1", "<beta.m1@x>"))
    [by_mid] = await _record_bounce(mb, "1:2", _bounce(None, "<acme.m2@x>"))
    [by_rcpt] = await _record_bounce(mb, "1:3", _bounce(None, None))
    assert (by_both.tenant_id, by_both.message_id, by_both.matched_by) == ("beta", "m1", "mail_id")
    assert (by_mid.tenant_id, by_mid.message_id, by_mid.matched_by) == ("acme", "m2", "message_id")
    assert (by_rcpt.tenant_id, by_rcpt.matched_by) == ("beta", "recipient")  # the latest sent
    [event] = [e for e in await q.store.messages.events("acme", "m2") if e.type == "bounce"]
    assert event.details == {
        "bounce_type": "hard",
        "bounce_code": "5.1.1",
        "bounce_reason": "User unknown",
        "recipient": "b@example.com",
    }
    assert "acme" in await q.store.outbox.tenants_with_unreported()


async def test_unmatched_bounce_is_kept_and_each_mail_handled_once(q: Queue) -> None:
    """No message → kept with no tenant; the same key twice → nothing the second time."""
    unknown = FailedRecipient("x@nowhere.example", BounceType.HARD, None, "gone")
    mb = q.store.mailboxes
    [record] = await _record_bounce(mb, "7:1", _bounce("nope", None, unknown))
    assert (record.tenant_id, record.matched_by) == (None, "none")
    assert await _record_bounce(mb, "7:1", _bounce("nope", None, unknown)) is None
    noise = Ignored("automatic reply")
    first, again = await mb.record("box", [("7:2", noise), ("7:2", noise)], tenant_id=None,
                                   rules=RULES, now=NOW)  # fmt: skip
    assert (first.new, again.new) == (True, False)
    assert await mb.handled("box", ["7:1", "7:2", "7:3"]) == {"7:1", "7:2"}
    assert await mb.handled("other", ["7:1"]) == set()
    [listed] = await q.store.bounces.search(None, unmatched=True)
    assert listed.id == record.id and listed.recipient == "x@nowhere.example"
    assert await q.store.bounces.search("acme") == []


async def test_hard_suppresses_at_once_soft_after_the_limit(q: Queue) -> None:
    """A hard bounce suppresses; soft bounces do at the limit within the window."""
    await _sent(q, "h", "s")
    await _sent(q, "s", tenant="beta")
    mb, sup = q.store.mailboxes, q.store.suppressions
    [hard] = await _record_bounce(mb, "1", _bounce("h", "<acme.h@x>"))
    assert hard.suppressed
    soft = _bounce("s", "<beta.s@x>", SOFT)
    [first] = await _record_bounce(mb, "2", soft)
    [second] = await _record_bounce(mb, "3", soft, NOW + 10)
    assert (first.suppressed, second.suppressed) == (False, True)
    entries = await sup.search(None)
    assert [(e.tenant_id, e.address, e.bounce_id) for e in entries] == [
        ("acme", "b@example.com", hard.id),
        ("beta", "b@example.com", second.id),
    ]
    assert entries[0].reason == "hard bounce: 5.1.1 User unknown"
    assert await sup.suppressed("acme", ["B@Example.com", "c@example.com"]) == {
        "b@example.com": "hard bounce: 5.1.1 User unknown"
    }
    assert await sup.remove("acme", "b@example.com") is True
    assert await sup.remove("acme", "b@example.com") is False
    assert await sup.add("acme", "C@example.com", "asked by the user", NOW) is True
    assert await sup.add("acme", "c@example.com", "again", NOW) is False
    assert [e.address for e in await sup.search("acme")] == ["c@example.com"]


async def test_pec_receipts_and_timeouts(q: Queue) -> None:
    """A receipt appends its event to the tenant's message; a PEC send with no
    acceptance gets ``pec_timeout`` once, after the timeout only."""
    await q.store.tenants.create(Tenant(id="acme"), None, NOW)
    pec = Account(id="smtp1", tenant_id="acme", host="h", port=25, is_pec_account=True)
    await q.store.accounts.upsert(pec, NOW)
    await _sent(q, "p1", "p2")
    receipt = PecReceipt(EventType.PEC_ACCEPTANCE, "accettazione", "<acme.p1@x>", {"tipo": "x"})
    mb = q.store.mailboxes
    assert await _record_receipt(mb, "1", receipt, "acme") == Recorded(True, (), True)
    assert await _record_receipt(mb, "1", receipt, "acme") == Recorded(False)
    assert await _record_receipt(mb, "2", receipt, "beta") == Recorded(True, (), False)
    assert await mb.pec_timeouts(NOW + 100, 1800) == 0
    assert await mb.pec_timeouts(NOW + 1800, 1800) == 1
    assert await mb.pec_timeouts(NOW + 1900, 1800) == 0
    kinds = {e.message_id: e.type for e in await q.store.outbox.unreported("acme", 10)}
    assert kinds == {"p1": EventType.PEC_ACCEPTANCE, "p2": EventType.PEC_TIMEOUT}


async def test_one_poller_per_mailbox(db_settings: Settings) -> None:
    """Two stores (processes): one holds the mailbox lease until release or expiry."""
    a, b = await open_store(db_settings), await open_store(db_settings)
    try:
        assert await a.mailboxes.take_lease("box", "A", NOW, NOW + 30)
        assert not await b.mailboxes.take_lease("box", "B", NOW + 1, NOW + 31)
        assert await a.mailboxes.take_lease("box", "A", NOW + 2, NOW + 32)
        assert await b.mailboxes.take_lease("other", "B", NOW, NOW + 30)
        assert await b.mailboxes.take_lease("box", "B", NOW + 33, NOW + 60)
        await a.mailboxes.release_lease("box", "A")
        assert not await a.mailboxes.take_lease("box", "A", NOW + 34, NOW + 60)
        await b.mailboxes.release_lease("box", "B")
        assert await a.mailboxes.take_lease("box", "A", NOW + 35, NOW + 60)
    finally:
        await a.close()
        await b.close()
