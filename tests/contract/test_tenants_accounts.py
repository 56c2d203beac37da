"""Tenants, accounts, suspensions and sync state, with secrets encrypted at rest."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import pytest

from mail_proxy.domain.models import Account, AuthMethod, ClientAuth, LimitBehavior, Tenant
from mail_proxy.errors import Conflict, InvalidInput
from mail_proxy.ports import MessageFilter

if TYPE_CHECKING:
    from conftest import Queue

NOW = 1_700_000_000.0
KEY_HASH = hashlib.sha256(b"tenant-api-key").hexdigest()
SECRETS = ("s3cr3t-token", "s3cr3t-password", "s3cr3t-signing", "s3cr3t-smtp", "s3cr3t-imap")


def _tenant(**changes: object) -> Tenant:
    values: dict[str, object] = {
        "id": "acme",
        "name": "Acme",
        "client_base_url": "https://app.example.com",
        "client_auth": ClientAuth(AuthMethod.BEARER, token="s3cr3t-token"),
        "rate_limits": {"per_minute": 10},
    }
    values.update(changes)
    return Tenant(**values)  # type: ignore[arg-type]


async def test_create_and_read_tenant(q: Queue) -> None:
    """Every field round-trips; the API key is known only as 'has a key'."""
    created = await q.store.tenants.create(_tenant(signing_secret="s3cr3t-signing"), KEY_HASH, NOW)
    assert created == await q.store.tenants.get("acme")
    assert created.client_auth.token == "s3cr3t-token"
    assert (created.has_api_key, created.signing_secret) == (True, "s3cr3t-signing")
    assert created.rate_limits == {"per_minute": 10}
    assert created.sync_url == "https://app.example.com/mail-proxy/sync"
    assert await q.store.tenants.by_key_hash(KEY_HASH) == created
    assert await q.store.tenants.by_key_hash("0" * 64) is None


async def test_create_existing_tenant_is_a_conflict(q: Queue) -> None:
    """A second create with the same id raises Conflict and changes nothing."""
    await q.store.tenants.create(_tenant(), None, NOW)
    with pytest.raises(Conflict):
        await q.store.tenants.create(_tenant(name="Other"), None, NOW)
    tenant = await q.store.tenants.get("acme")
    assert tenant is not None and tenant.name == "Acme"


async def test_update_changes_fields_and_keeps_key_and_secret(q: Queue) -> None:
    """An update is partial: the key and the signing secret stay."""
    await q.store.tenants.create(_tenant(signing_secret="sig"), KEY_HASH, NOW)
    renamed = await q.store.tenants.update("acme", {"name": "New"}, NOW + 1)
    assert renamed is not None and (renamed.has_api_key, renamed.signing_secret) == (True, "sig")
    updated = await q.store.tenants.update(
        "acme",
        {"client_auth": {"method": "basic", "user": "u", "password": "p"}, "active": False},
        NOW + 2,
    )
    assert updated is not None and updated.client_auth == ClientAuth(
        AuthMethod.BASIC, None, "u", "p"
    )
    assert (updated.active, updated.name, updated.updated_at) == (False, "New", int(NOW) + 2)
    assert [t.id for t in await q.store.tenants.all(active_only=True)] == []
    assert await q.store.tenants.update("ghost", {"name": "x"}, NOW) is None
    with pytest.raises(InvalidInput):
        await q.store.tenants.update("acme", {"has_api_key": False}, NOW)


async def test_api_key_rotation_and_signing_secret(q: Queue) -> None:
    """Keys are replaced or revoked by hash; two tenants can't share a key hash."""
    await q.store.tenants.create(_tenant(), KEY_HASH, NOW)
    await q.store.tenants.create(_tenant(id="beta"), None, NOW)
    new_hash = hashlib.sha256(b"new").hexdigest()
    assert await q.store.tenants.set_api_key("acme", new_hash, 1_800_000_000) is True
    tenant = await q.store.tenants.by_key_hash(new_hash)
    assert tenant is not None and tenant.api_key_expires_at == 1_800_000_000
    assert await q.store.tenants.by_key_hash(KEY_HASH) is None
    with pytest.raises(Conflict):
        await q.store.tenants.set_api_key("beta", new_hash, None)
    assert await q.store.tenants.set_api_key("acme", None, None) is True
    revoked = await q.store.tenants.get("acme")
    assert revoked is not None and revoked.has_api_key is False
    assert await q.store.tenants.set_signing_secret("acme", "sig2") is True
    assert await q.store.tenants.set_signing_secret("ghost", "x") is False


async def test_delete_tenant_removes_everything_it_owns(q: Queue) -> None:
    """Accounts, messages, events and suspensions of the tenant go; others stay."""
    await q.store.tenants.create(_tenant(), None, NOW)
    await q.store.accounts.upsert(Account(id="smtp1", tenant_id="acme", host="h"), NOW)
    await q.store.intake.enqueue([q.message("m"), q.message("x", tenant="other")], NOW)
    await q.send_all(await q.claim(limit=1))
    await q.store.control.suspend("acme", "*")
    assert await q.store.tenants.delete("acme") is True
    assert await q.store.tenants.delete("acme") is False
    assert await q.store.accounts.all("acme") == []
    assert await q.store.control.suspensions("acme") == []
    assert await q.store.outbox.unreported(None, 10) == []
    assert [m.id for m in await q.store.messages.search(MessageFilter())] == ["x"]


async def test_suspensions_listing(q: Queue) -> None:
    """Suspending twice is harmless; activate with a code lifts only that code."""
    await q.store.control.suspend("acme", "b1")
    await q.store.control.suspend("acme", "b1")
    await q.store.control.suspend("acme", "*")
    assert await q.store.control.suspensions("acme") == ["*", "b1"]
    await q.store.control.activate("acme", "b1")
    assert await q.store.control.suspensions("acme") == ["*"]


async def test_sync_state_is_kept_per_tenant(q: Queue) -> None:
    """last_sync_ts and dnd_until persist; None leaves a value; clear_dnd ends DND."""
    await q.store.tenants.create(_tenant(), None, NOW)
    await q.store.sync_state.set("acme", last_sync_ts=NOW, dnd_until=NOW + 600)
    await q.store.sync_state.set("acme", last_sync_ts=NOW + 5)
    [state] = await q.store.sync_state.all()
    assert (state.tenant_id, state.last_sync_ts, state.dnd_until) == ("acme", NOW + 5, NOW + 600)
    await q.store.sync_state.set("acme", clear_dnd=True)
    [state] = await q.store.sync_state.all()
    assert state.dnd_until is None


async def test_account_crud(q: Queue) -> None:
    """upsert creates then replaces; update is partial; delete reports whether it did."""
    account = Account(
        id="smtp1",
        tenant_id="acme",
        host="mail.example.com",
        user="u",
        password="s3cr3t-smtp",
        use_tls=True,
        limit_per_minute=5,
        limit_behavior=LimitBehavior.REJECT,
        batch_size=10,
        is_pec_account=True,
        imap_password="s3cr3t-imap",
    )
    saved, created = await q.store.accounts.upsert(account, NOW)
    assert created is True
    assert saved == await q.store.accounts.get("acme", "smtp1")
    assert (saved.password, saved.imap_password, saved.use_tls) == (
        "s3cr3t-smtp", "s3cr3t-imap", True,
    )  # fmt: skip
    again, created = await q.store.accounts.upsert(account, NOW + 1)
    assert created is False and again.created_at == int(NOW)
    await q.store.accounts.upsert(Account(id="smtp0", tenant_id="beta", host="h"), NOW)
    assert [a.id for a in await q.store.accounts.all()] == ["smtp1", "smtp0"]
    assert [a.id for a in await q.store.accounts.all("beta")] == ["smtp0"]
    assert await q.store.accounts.delete("acme", "smtp1") is True
    assert await q.store.accounts.delete("acme", "smtp1") is False


async def test_secrets_are_unreadable_in_raw_rows(q: Queue) -> None:
    """No clear-text secret and no API key appears anywhere in the stored rows."""
    await q.store.tenants.create(
        _tenant(
            client_auth=ClientAuth(AuthMethod.BASIC, "s3cr3t-token", "u", "s3cr3t-password"),
            signing_secret="s3cr3t-signing",
        ),
        KEY_HASH,
        NOW,
    )
    await q.store.accounts.upsert(
        Account(
            id="a", tenant_id="acme", host="h", password="s3cr3t-smtp", imap_password="s3cr3t-imap"
        ),
        NOW,
    )
    dumped = repr(await q.raw_rows("SELECT * FROM tenants"))
    dumped += repr(await q.raw_rows("SELECT * FROM accounts"))
    assert KEY_HASH in dumped
    for secret in (*SECRETS, "tenant-api-key"):
        assert secret not in dumped
    [row] = await q.raw_rows("SELECT password_enc FROM accounts")
    assert row.password_enc.startswith("gAAAA")  # a Fernet token
