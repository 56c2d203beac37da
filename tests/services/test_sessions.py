"""Dashboard sessions: stored by digest, expiring, closed at logout, CSRF bound."""

from __future__ import annotations

from mail_proxy.ports import Store
from mail_proxy.services.sessions import SessionService, csrf_token, csrf_valid
from mail_proxy.services.tenants import hash_api_key


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_a_session_lives_until_its_expiry_then_is_gone(sqlite_store: Store) -> None:
    clock = Clock()
    service = SessionService(sqlite_store, ttl_seconds=600, clock=clock)
    opened = await service.open("acme", "the-key")
    stored = await sqlite_store.sessions.get(hash_api_key(opened.session_id))
    assert stored is not None and stored.credential_hash == hash_api_key("the-key")
    assert await sqlite_store.sessions.get(opened.session_id) is None  # never the id itself
    clock.now += 599
    assert (await service.resolve(opened.session_id)) == stored
    clock.now += 1
    assert await service.resolve(opened.session_id) is None
    assert await sqlite_store.sessions.get(stored.id_hash) is None


async def test_logout_closes_and_csrf_tokens_belong_to_one_session(sqlite_store: Store) -> None:
    service = SessionService(sqlite_store, ttl_seconds=600, clock=Clock())
    one, two = await service.open(None, "admin"), await service.open(None, "admin")
    assert one.csrf_token == csrf_token(one.session_id) != two.csrf_token
    assert csrf_valid(one.session_id, one.csrf_token)
    assert not csrf_valid(one.session_id, two.csrf_token)
    assert not csrf_valid(one.session_id, None)
    await service.close(one.session_id)
    assert await service.resolve(one.session_id) is None
    assert await service.resolve(two.session_id) is not None
