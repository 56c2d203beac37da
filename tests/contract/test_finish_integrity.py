"""Finishing never gets stuck and never half-writes, on every backend.

An outcome carrying text the database cannot hold, or a row the database refuses for
another reason, is isolated: every other outcome of the batch is committed, and the
bad row is recorded in a safe form or left untouched. A finish whose event cannot be
written changes nothing at all (the message row and its event commit together).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from mail_proxy.domain.models import (
    ClaimedMessage,
    Deferred,
    EventType,
    Failed,
    NewMessage,
    Outcome,
    Sent,
    Status,
)
from mail_proxy.domain.text import is_storable
from mail_proxy.ports import Store
from mail_proxy.storage.engines import IMPLICIT_BEGIN, ImplicitBeginError
from mail_proxy.storage.outcomes import UNSTORABLE_REASON
from mail_proxy.storage.store import SqlStore

if TYPE_CHECKING:
    from conftest import Queue

NOW = 1_700_000_000.0
RETRY_AT = NOW + 300
REPLY = "451 4.7.1 try later \udcff\udcfe"  # b"\xff\xfe" decoded with surrogateescape

# Refuses, like a database rejecting a value, every event of message "bad" and every
# event whose description mentions "poison".
_SQLITE_TRIGGER = """
CREATE TRIGGER refuse_event BEFORE INSERT ON message_events
WHEN NEW.message_id = 'bad' OR NEW.description LIKE '%poison%'
BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END
"""
_PG_TRIGGER = (
    """
CREATE FUNCTION refuse_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.message_id = 'bad' OR NEW.description LIKE '%poison%' THEN
    RAISE EXCEPTION 'refused by the test trigger';
  END IF;
  RETURN NEW;
END $$
""",
    "CREATE TRIGGER refuse_event BEFORE INSERT ON message_events"
    " FOR EACH ROW EXECUTE FUNCTION refuse_event()",
)


async def _refuse_some_events(q: Queue) -> None:
    assert isinstance(q.store, SqlStore)
    engine = q.store.writer_engine
    statements = _PG_TRIGGER if engine.dialect.name == "postgresql" else (_SQLITE_TRIGGER,)
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(sa.text(statement))


async def _claim(q: Queue, *ids: str) -> dict[str, ClaimedMessage]:
    await q.store.intake.enqueue([q.message(i) for i in ids], NOW)
    claimed = {c.record.id: c for c in await q.claim()}
    assert set(claimed) == set(ids)
    return claimed


async def _finish(q: Queue, plan: list[tuple[ClaimedMessage, Outcome]]) -> list[bool]:
    return await q.store.queue.finish_many([(c.record.pk, c.lease_token, o) for c, o in plan])


async def _state(q: Queue, message_id: str) -> tuple[Status, str | None, list[Any]]:
    record = await q.store.messages.get("acme", message_id)
    assert record is not None
    events = await q.store.messages.events("acme", message_id)
    return record.status, record.error, [(e.type, e.description) for e in events]


async def test_outside_text_in_outcomes_is_stored_safely(q: Queue) -> None:
    """Surrogates, NUL and megabytes in reasons, errors and details: every outcome of
    the batch is applied, and what is stored is valid, NUL-free and bounded."""
    claimed = await _claim(q, "deferred", "failed", "sent", "plain")
    huge = "5" * 1_000_000
    details = {"reply\udcff": [REPLY, {"nested": "a\x00b"}], "size": 3}
    applied = await _finish(
        q,
        [
            (claimed["deferred"], Deferred(RETRY_AT, REPLY, NOW, details=details)),
            (claimed["failed"], Failed(NOW, "550 \x00 no such user " + huge, details=details)),
            (claimed["sent"], Sent(NOW, details=details)),
            (claimed["plain"], Sent(NOW)),
        ],
    )
    assert applied == [True, True, True, True]
    for message_id in ("deferred", "failed", "sent", "plain"):
        record = await q.store.messages.get("acme", message_id)
        assert record is not None and record.status != Status.PENDING
        assert record.error is None or (is_storable(record.error) and len(record.error) <= 1000)
        [event] = await q.store.messages.events("acme", message_id)
        assert event.description is None or is_storable(event.description)
        assert is_storable(repr(event.details))
    deferred = await q.store.messages.get("acme", "deferred")
    assert deferred is not None and deferred.error == "451 4.7.1 try later \ufffd\ufffd"
    [sent_event] = await q.store.messages.events("acme", "sent")
    assert sent_event.details == {
        "reply\ufffd": ["451 4.7.1 try later \ufffd\ufffd", {"nested": "ab"}],
        "size": 3,
    }


async def test_a_refused_row_is_isolated_and_the_rest_committed(q: Queue) -> None:
    """One outcome the database refuses in a batch of 40: the 39 others are committed;
    the refused one is recorded with its decision and a safe reason instead."""
    ids = [f"m{i}" for i in range(39)]
    claimed = await _claim(q, *ids, "odd")
    await _refuse_some_events(q)
    plan: list[tuple[ClaimedMessage, Outcome]] = [(claimed[i], Sent(NOW)) for i in ids]
    plan.insert(17, (claimed["odd"], Deferred(RETRY_AT, "421 poison", NOW)))
    applied = await _finish(q, plan)
    assert applied == [True] * 40
    assert (await q.store.messages.count_by_status())[Status.SENT] == 39
    assert await _state(q, "odd") == (
        Status.DEFERRED,
        UNSTORABLE_REASON,
        [(EventType.DEFERRED, UNSTORABLE_REASON)],
    )
    odd = await q.store.messages.get("acme", "odd")
    assert odd is not None and (odd.deferred_ts, odd.attempts) == (int(RETRY_AT), 1)


async def test_a_finish_whose_event_fails_changes_nothing(q: Queue) -> None:
    """The message row and its event are one transaction: when the event cannot be
    written (even in the safe form) the row keeps its lease and status, the other
    rows of the batch are committed, and the message is claimed again once the lease
    expires."""
    claimed = await _claim(q, "bad", "good")
    await _refuse_some_events(q)
    applied = await _finish(q, [(claimed["bad"], Sent(NOW)), (claimed["good"], Sent(NOW))])
    assert applied == [False, True]
    assert await _state(q, "bad") == (Status.PENDING, None, [])
    assert await _state(q, "good") == (Status.SENT, None, [(EventType.SENT, None)])
    rows = await q.raw_rows("SELECT attempts, lease_token FROM messages WHERE id = 'bad'")
    assert rows == [(0, claimed["bad"].lease_token)]
    assert await q.claim_ids(now=NOW + q.lease + 1) == ["bad"]


async def test_sqlite_refuses_a_first_statement_that_would_autocommit(
    sqlite_store: Store,
) -> None:
    """sqlite3 opens no transaction before ``WITH ... UPDATE``: a transaction relying
    on the driver's implicit BEGIN that starts so is refused before it changes
    anything, instead of silently committing its first half."""
    await sqlite_store.intake.enqueue([NewMessage("acme", "m", "smtp1", 2, {"subject": "s"})], NOW)
    assert isinstance(sqlite_store, SqlStore)
    async with sqlite_store.writer_engine.connect() as conn:
        await conn.execution_options(**{IMPLICIT_BEGIN: True})
        with pytest.raises(ImplicitBeginError, match="autocommit"):
            async with conn.begin():
                await conn.exec_driver_sql(
                    "WITH v(pk) AS (SELECT pk FROM messages) UPDATE messages SET status = 'sent'"
                    " WHERE pk IN (SELECT pk FROM v)"
                )
    record = await sqlite_store.messages.get("acme", "m")
    assert record is not None and record.status == Status.PENDING
