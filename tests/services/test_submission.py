"""The submission use case on a real SQLite store: validate, queue, wake."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from mail_proxy.domain.models import (
    Account,
    ClaimedMessage,
    LeaseRequest,
    Sent,
    Status,
    Tenant,
)
from mail_proxy.domain.outgoing import from_payload
from mail_proxy.errors import InvalidInput, TooLarge, WrongTenant
from mail_proxy.ports import Store
from mail_proxy.services.submission import (
    Refused,
    SubmissionLimits,
    SubmissionService,
)

NOW = 1_700_000_000.0


class Wakes:
    """Counts the dispatcher wake-ups the service asks for."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.fixture
async def store(sqlite_store: Store) -> Store:
    await sqlite_store.tenants.create(Tenant(id="acme"), None, NOW)
    await sqlite_store.tenants.create(Tenant(id="other"), None, NOW)
    account = Account(
        id="main", tenant_id="acme", host="smtp.example.com", default_from="noreply@acme.example"
    )
    await sqlite_store.accounts.upsert(account, NOW)
    return sqlite_store


def service(store: Store, wakes: Wakes, **limits: Any) -> SubmissionService:
    values: dict[str, Any] = {"max_messages": 10, "max_recipients": 20} | limits
    return SubmissionService(store, lambda: NOW, wakes, SubmissionLimits(**values))


def message(message_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": message_id, "to": "ann@example.com", "subject": "Hi"} | fields


async def test_valid_messages_are_queued_and_the_dispatcher_woken(store: Store) -> None:
    wakes = Wakes()
    batch = [message("m1"), message("bad", to="nope"), {"id": "m2"}, message("m3", priority=0)]
    result = await service(store, wakes).submit(batch, token_tenant_id="acme")
    assert result.queued == 2
    assert result.rejected == (
        Refused(1, "bad", "invalid address in to: 'nope'"),
        Refused(2, "m2", "missing field: to"),
    )
    assert wakes.count == 1
    record = await store.messages.get("acme", "m3")
    assert record is not None and record.status is Status.PENDING and record.priority == 0


async def test_the_stored_row_carries_the_default_sender_and_message_id(store: Store) -> None:
    """What the dispatcher will load: the account's sender applied, the Message-ID
    assigned at submission on the sender's domain."""
    await service(store, Wakes()).submit([message("m1")], token_tenant_id="acme")
    record = await store.messages.get("acme", "m1")
    assert record is not None
    loaded = from_payload(record.payload)
    assert loaded.sender.address == "noreply@acme.example"
    assert loaded.message_id is not None and loaded.message_id.endswith("@acme.example>")


async def test_nothing_queued_wakes_nobody(store: Store) -> None:
    wakes = Wakes()
    result = await service(store, wakes).submit([message("m1", to="")], token_tenant_id="acme")
    assert result.queued == 0 and len(result.rejected) == 1
    assert wakes.count == 0


async def test_the_queue_refuses_a_message_already_sent(store: Store) -> None:
    submission = service(store, Wakes())
    await submission.submit([message("m1")], token_tenant_id="acme")
    [claimed] = await store.queue.claim(now=NOW, lease_seconds=60, limit=1, per_account=1)
    assert await store.queue.finish(claimed.record.pk, claimed.lease_token, Sent(NOW))
    result = await submission.submit([message("m1"), message("m2")], token_tenant_id="acme")
    assert result.queued == 1
    [refused] = result.rejected
    assert refused.index == 0 and refused.id == "m1"


async def test_the_admin_names_the_tenant(store: Store) -> None:
    result = await service(store, Wakes()).submit(
        [message("m1", tenant_id="acme"), message("m2")], token_tenant_id=None
    )
    assert result.queued == 1
    assert result.rejected == (Refused(1, "m2", "missing field: tenant_id"),)


async def test_a_large_batch_is_validated_off_the_event_loop_alike(store: Store) -> None:
    """Above the inline threshold validation moves to a thread; the answer is the same."""
    recipients = [f"r{n}@example.com" for n in range(150)]
    wakes = Wakes()
    submission = service(store, wakes, max_recipients=1000)
    result = await submission.submit([message("big", to=recipients)], token_tenant_id="acme")
    assert result.queued == 1 and wakes.count == 1


@pytest.mark.parametrize(
    ("batch", "limits", "error"),
    [
        ([message(f"m{n}") for n in range(3)], {"max_messages": 2}, TooLarge),
        ([message("m1", to=["a@x.example", "b@x.example"])], {"max_recipients": 1}, TooLarge),
        ([message("m1", tenant_id="other")], {}, WrongTenant),
    ],
)
async def test_a_batch_refused_whole(
    store: Store, batch: list[dict[str, Any]], limits: dict[str, Any], error: type[Exception]
) -> None:
    wakes = Wakes()
    with pytest.raises(error):
        await service(store, wakes, **limits).submit(batch, token_tenant_id="acme")
    assert wakes.count == 0
    assert await store.messages.get("acme", "m1") is None


async def test_a_bad_default_priority_is_the_callers_to_fix(store: Store) -> None:
    with pytest.raises(InvalidInput) as raised:
        await service(store, Wakes()).submit(
            [message("m1")], token_tenant_id="acme", default_priority="urgent"
        )
    assert raised.value.field == "default_priority"


async def test_default_priorities_apply_in_order(store: Store) -> None:
    """The message's own, else the batch's, else the instance's."""
    submission = service(store, Wakes(), default_priority=3)
    await submission.submit([message("a")], token_tenant_id="acme")
    await submission.submit([message("b")], token_tenant_id="acme", default_priority="high")
    await submission.submit(
        [message("c", priority=0)], token_tenant_id="acme", default_priority="high"
    )
    priorities = [
        record.priority
        for record in [await store.messages.get("acme", key) for key in ("a", "b", "c")]
        if record is not None
    ]
    assert priorities == [3, 1, 0]


async def test_filesystem_attachments_follow_the_operators_roots(store: Store) -> None:
    """GMP_ATTACHMENT_BASE_DIR unset: a filesystem attachment is rejected at
    submission, saying why; set, a path under it is queued."""
    spec = {"filename": "a.pdf", "storage_path": "/srv/files/a.pdf"}
    closed = await service(store, Wakes()).submit(
        [message("m1", attachments=[spec])], token_tenant_id="acme"
    )
    assert closed.queued == 0
    assert "GMP_ATTACHMENT_BASE_DIR" in closed.rejected[0].reason
    opened = service(store, Wakes(), filesystem_roots=("/srv/files",))
    result = await opened.submit([message("m1", attachments=[spec])], token_tenant_id="acme")
    assert result.queued == 1


async def test_a_suppressed_recipient_rejects_its_whole_message(store: Store) -> None:
    """A message naming an address on its tenant's list (To, Cc or Bcc, any case) is
    rejected with the list's reason; other tenants and other messages are not."""
    await store.suppressions.add("acme", "gone@example.com", "hard bounce: 5.1.1 gone", NOW)
    batch = [
        message("m1", cc="Gone@Example.com"),
        message("m2"),
        message("m3", to=["x@example.com"], bcc=["gone@example.com"]),
    ]
    result = await service(store, Wakes()).submit(batch, token_tenant_id="acme")
    reason = "recipient gone@example.com is on the suppression list (hard bounce: 5.1.1 gone)"
    assert result.queued == 1
    assert result.rejected == (Refused(0, "m1", reason), Refused(2, "m3", reason))


class StartingHandoff:
    """An idle dispatcher whose ``take`` starts one send task per message, as the real
    one starts lane workers; ``started`` lists the ids whose task has begun."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.tasks: list[asyncio.Task[None]] = []

    def lease_for(self, count: int) -> LeaseRequest | None:
        return LeaseRequest("handoff-token", NOW + 300)

    def take(self, claimed: Sequence[ClaimedMessage]) -> None:
        for message in claimed:
            self.tasks.append(asyncio.create_task(self._send(message.record.id)))

    async def _send(self, message_id: str) -> None:
        self.started.append(message_id)


async def test_handed_over_sends_start_before_the_submission_returns(store: Store) -> None:
    """The request's response and command-log entry come after the send has begun:
    a message at idle does not wait behind its own request's bookkeeping."""
    handoff = StartingHandoff()
    limits = SubmissionLimits(max_messages=10, max_recipients=20)
    submission = SubmissionService(store, lambda: NOW, Wakes(), limits, handoff)
    result = await submission.submit([message("m1")], token_tenant_id="acme")
    assert result.queued == 1
    assert handoff.started == ["m1"]
    await asyncio.gather(*handoff.tasks)
