"""The messages service on a real SQLite store: listing, one message, removal."""

from __future__ import annotations

import pytest

from mail_proxy.domain.models import NewMessage, Sent, Status, Tenant
from mail_proxy.errors import NotFound
from mail_proxy.ports import MessageFilter, Store
from mail_proxy.services.messages import MessageService

NOW = 1_700_000_000.0
RETENTION = 3600.0


def _message(id_: str, tenant: str = "acme", batch_code: str | None = None) -> NewMessage:
    payload = {"from": "a@example.com", "to": ["b@example.com"], "subject": id_}
    return NewMessage(tenant, id_, "smtp1", 2, payload, batch_code=batch_code)


@pytest.fixture
async def store(sqlite_store: Store) -> Store:
    await sqlite_store.tenants.create(Tenant(id="acme", name="Acme"), None, NOW)
    await sqlite_store.tenants.create(Tenant(id="zeta"), None, NOW)
    await sqlite_store.intake.enqueue(
        [_message("m1", batch_code="news"), _message("m2"), _message("z1", tenant="zeta")], NOW
    )
    return sqlite_store


@pytest.fixture
def messages(store: Store) -> MessageService:
    return MessageService(store, retention_seconds=RETENTION, clock=lambda: NOW)


async def _send_all(store: Store, at: float) -> None:
    claimed = await store.queue.claim(now=NOW, lease_seconds=60, limit=10, per_account=10)
    await store.queue.finish_many([(c.record.pk, c.lease_token, Sent(ts=at)) for c in claimed])


async def test_search_pages_and_names_only_the_tenants_shown(messages: MessageService) -> None:
    page = await messages.search(MessageFilter(), limit=2, offset=0)
    assert [r.id for r in page.records] == ["m1", "m2"]
    assert page.total == 3
    assert page.tenant_names == {"acme": "Acme"}
    assert page.histories is None
    rest = await messages.search(MessageFilter(), limit=2, offset=2)
    assert ([r.id for r in rest.records], rest.tenant_names) == (["z1"], {"zeta": None})


async def test_search_filters(messages: MessageService) -> None:
    page = await messages.search(
        MessageFilter(tenant_id="acme", batch_code="news"), limit=10, offset=0
    )
    assert ([r.id for r in page.records], page.total) == (["m1"], 1)


async def test_search_with_history_gives_every_record_its_events(
    messages: MessageService, store: Store
) -> None:
    await _send_all(store, NOW)
    await store.intake.enqueue([_message("fresh")], NOW)
    page = await messages.search(
        MessageFilter(tenant_id="acme"), limit=10, offset=0, with_history=True
    )
    assert page.histories is not None
    assert {r.id: [str(e.type) for e in page.histories[r.pk]] for r in page.records} == {
        "m1": ["sent"],
        "m2": ["sent"],
        "fresh": [],
    }


async def test_get_gives_the_record_its_events_and_tenant_name(
    messages: MessageService, store: Store
) -> None:
    await _send_all(store, NOW)
    found = await messages.get("acme", "m2")
    assert (found.record.id, found.record.status, found.tenant_name) == ("m2", Status.SENT, "Acme")
    assert [str(e.type) for e in found.events] == ["sent"]
    assert [str(e.type) for e in await messages.events("acme", "m2")] == ["sent"]


async def test_another_tenants_message_is_not_found(messages: MessageService) -> None:
    with pytest.raises(NotFound):
        await messages.get("acme", "z1")
    with pytest.raises(NotFound):
        await messages.events("acme", "z1")


async def test_delete_removes_own_messages_only(messages: MessageService, store: Store) -> None:
    result = await messages.delete("acme", ["m1", "z1", "nope"])
    assert (result.removed, result.unauthorized, result.not_found) == (["m1"], ["z1"], ["nope"])
    assert await store.messages.get("acme", "m1") is None
    assert await store.messages.get("zeta", "z1") is not None


async def _reported(store: Store) -> None:
    events = await store.outbox.unreported(None, 100)
    await store.outbox.ack([e.event_id for e in events], NOW)


async def test_cleanup_defaults_to_the_retention(messages: MessageService, store: Store) -> None:
    await _send_all(store, NOW - RETENTION - 10)
    await _reported(store)
    assert await messages.cleanup("acme", None) == 2
    assert await store.messages.get("zeta", "z1") is not None
    assert await messages.cleanup(None, None) == 1


async def test_cleanup_with_an_age_of_its_own(messages: MessageService, store: Store) -> None:
    await _send_all(store, NOW - 100)
    await _reported(store)
    assert await messages.cleanup(None, None) == 0
    assert await messages.cleanup(None, 50) == 3
