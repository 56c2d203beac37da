"""The group commit on a real SQLite store: a poison outcome never holds a batch back."""

from __future__ import annotations

from mail_proxy.domain.models import Deferred, NewMessage, Sent, Status
from mail_proxy.metrics import Metrics
from mail_proxy.ports import Store
from mail_proxy.workers.finish_buffer import FinishBuffer

NOW = 1_700_000_000.0


async def test_one_flush_commits_a_batch_holding_a_poison_reply(sqlite_store: Store) -> None:
    """A reply with undecodable bytes among 50 sends: one flush commits all 51
    outcomes, nothing stays buffered for a retry, and the metrics count them."""
    messages = [NewMessage("acme", f"m{i}", "smtp1", 2, {"subject": "s"}) for i in range(51)]
    await sqlite_store.intake.enqueue(messages, NOW)
    claimed = await sqlite_store.queue.claim(now=NOW, lease_seconds=60, limit=100, per_account=100)
    metrics = Metrics()
    buffer = FinishBuffer(sqlite_store, metrics)
    poison, *others = claimed
    buffer.finish(poison, Deferred(NOW + 60, "451 4.7.1 try later \udcff\udcfe\x00", NOW))
    for item in others:
        buffer.finish(item, Sent(NOW, details={"reply": "250 ok \udcff"}))
    assert await buffer.flush() is True
    assert len(buffer) == 0
    assert await sqlite_store.messages.count_by_status() == {
        Status.PENDING: 0, Status.DEFERRED: 1, Status.SENT: 50, Status.ERROR: 0,
    }  # fmt: skip
    assert metrics.registry.get_sample_value("gmp_sent_total", {"account_id": "smtp1"}) == 50
