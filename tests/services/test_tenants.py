"""The tenant use cases over a real SQLite store: keys, secrets, one write per save."""

from __future__ import annotations

import pytest
from tests.services.conftest import Policy

from mail_proxy.domain.models import AuthMethod, ClientAuth, Tenant
from mail_proxy.errors import Forbidden, InvalidInput, NotFound, TargetRefused
from mail_proxy.ports import Store
from mail_proxy.schemas import MASK, ClientAuthIn
from mail_proxy.services.requester import Requester
from mail_proxy.services.tenants import TenantService, hash_api_key

NOW = 1_700_000_000.0
URL = "https://app.acme.example"


@pytest.fixture
def tenants(sqlite_store: Store) -> TenantService:
    return TenantService(sqlite_store, lambda: NOW)


async def test_create_makes_key_and_signing_secret(
    tenants: TenantService, sqlite_store: Store, admin: Requester
) -> None:
    """The key is given once, stored as its digest; saving again issues none."""
    saved = await tenants.save("acme", {"name": "ACME"}, admin)
    assert saved.created and saved.api_key is not None and len(saved.api_key) == 43
    found = await sqlite_store.tenants.by_key_hash(hash_api_key(saved.api_key))
    assert found is not None and found.id == "acme" and found.created_at == int(NOW)
    assert saved.view.tenant.signing_secret and saved.view.suspended_batches == []
    again = await tenants.save("acme", {"client_base_url": URL}, admin)
    assert not again.created and again.api_key is None
    assert (again.view.tenant.name, again.view.tenant.client_base_url) == ("ACME", URL)


async def test_save_gives_a_tenant_without_signing_secret_one(
    tenants: TenantService, sqlite_store: Store, admin: Requester
) -> None:
    """A tenant stored before signing secrets existed gets one on its next save."""
    await sqlite_store.tenants.create(Tenant(id="old"), None, NOW)
    saved = await tenants.save("old", {"name": "Old"}, admin)
    stored = await sqlite_store.tenants.get("old")
    assert stored is not None and stored.signing_secret == saved.view.tenant.signing_secret
    assert stored.signing_secret is not None and stored.name == "Old"


async def test_admin_only_fields_and_not_nullable_fields(
    tenants: TenantService, admin: Requester, tenant: Requester
) -> None:
    """A tenant may not touch active or its key's expiry; a null for a field that
    cannot be null leaves it alone."""
    await tenants.save("acme", {}, admin)
    with pytest.raises(Forbidden):
        await tenants.update("acme", {"api_key_expires_at": None}, tenant)
    view = await tenants.update("acme", {"active": None, "client_sync_path": None}, admin)
    assert view.tenant.active is True and view.tenant.client_sync_path == "/mail-proxy/sync"
    with pytest.raises(NotFound):
        await tenants.update("ghost", {"name": "x"}, admin)


async def test_callback_secret_none_keeps_the_stored_one(
    tenants: TenantService, admin: Requester
) -> None:
    """None for the secret the method uses keeps it; another method drops it; None
    with nothing stored is refused rather than saved without a secret."""
    basic = ClientAuth(AuthMethod.BASIC, None, "u", "p1")
    await tenants.save("acme", {"client_auth": basic}, admin)
    kept = await tenants.update(
        "acme", {"client_auth": ClientAuth(AuthMethod.BASIC, user="u")}, admin
    )
    assert kept.tenant.client_auth.password == "p1"
    bearer = await tenants.update(
        "acme", {"client_auth": ClientAuth(AuthMethod.BEARER, token="t")}, admin
    )
    assert bearer.tenant.client_auth == ClientAuth(AuthMethod.BEARER, token="t")
    with pytest.raises(InvalidInput) as refused:
        await tenants.save("new", {"client_auth": ClientAuth(AuthMethod.BEARER)}, admin)
    assert refused.value.field == "client_auth"


def test_the_mask_sent_back_counts_as_the_secret_and_reads_as_none() -> None:
    """Bearer auth needs a token: the mask is one (the stored one), parsed as None."""
    parsed = ClientAuthIn.model_validate({"method": "bearer", "token": MASK})
    assert parsed.token is None
    with pytest.raises(ValueError, match="needs a token"):
        ClientAuthIn.model_validate({"method": "bearer"})


async def test_callback_url_judged_and_trust_follows_who_set_it(
    tenants: TenantService, admin: Requester, tenant: Requester, policy: Policy
) -> None:
    """The URL is checked when set; the mark is the setter's, and an edit that leaves
    the URL alone keeps it."""
    created = await tenants.save("acme", {"client_base_url": URL}, admin)
    assert created.view.tenant.target_trusted is True
    renamed = await tenants.update("acme", {"name": "n"}, tenant)
    assert renamed.tenant.target_trusted is True
    retargeted = await tenants.update("acme", {"client_base_url": URL + "/x"}, tenant)
    assert retargeted.tenant.target_trusted is False
    assert policy.asked == [(URL, None, "client_base_url"), (URL + "/x", None, "client_base_url")]
    policy.refused.add("https://evil.example")
    with pytest.raises(TargetRefused):
        await tenants.update("acme", {"client_base_url": "https://evil.example"}, tenant)


async def test_key_rotation_revocation_and_signing_secret(
    tenants: TenantService, sqlite_store: Store, admin: Requester
) -> None:
    """A rotated key replaces the old one; revoking leaves none; unknown tenants are NotFound."""
    first = (await tenants.save("acme", {}, admin)).api_key
    assert first is not None
    second = await tenants.rotate_api_key("acme", expires_at=2_000_000_000)
    assert await sqlite_store.tenants.by_key_hash(hash_api_key(first)) is None
    found = await sqlite_store.tenants.by_key_hash(hash_api_key(second))
    assert found is not None and found.api_key_expires_at == 2_000_000_000
    assert (await tenants.revoke_api_key("acme")).tenant.has_api_key is False
    before = (await tenants.get("acme")).tenant.signing_secret
    rotated = await tenants.rotate_signing_secret("acme")
    assert rotated != before and (await tenants.get("acme")).tenant.signing_secret == rotated
    with pytest.raises(NotFound):
        await tenants.rotate_api_key("ghost", None)
    with pytest.raises(NotFound):
        await tenants.revoke_api_key("ghost")
    with pytest.raises(NotFound):
        await tenants.rotate_signing_secret("ghost")


async def test_listing_and_delete(tenants: TenantService, admin: Requester) -> None:
    await tenants.save("acme", {}, admin)
    await tenants.save("sleepy", {"active": False}, admin)
    assert [t.id for t in await tenants.listing()] == ["acme", "sleepy"]
    assert [t.id for t in await tenants.listing(active_only=True)] == ["acme"]
    await tenants.delete("acme")
    with pytest.raises(NotFound):
        await tenants.delete("acme")
