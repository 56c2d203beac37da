"""The account use cases over a real SQLite store: write-only passwords, target checks."""

from __future__ import annotations

import dataclasses

import pytest
from tests.services.conftest import Policy

from mail_proxy.domain.models import Account, Tenant
from mail_proxy.errors import InvalidInput, NotFound, TargetRefused
from mail_proxy.ports import Store
from mail_proxy.services.accounts import AccountService
from mail_proxy.services.requester import Requester

NOW = 1_700_000_000.0
MAIN = Account(id="main", tenant_id="acme", host="smtp.acme.example")


@pytest.fixture
async def accounts(sqlite_store: Store) -> AccountService:
    await sqlite_store.tenants.create(Tenant(id="acme"), None, NOW)
    return AccountService(sqlite_store, lambda: NOW)


async def test_replace_without_passwords_keeps_the_stored_ones(
    accounts: AccountService, sqlite_store: Store, admin: Requester
) -> None:
    """None keeps each stored password; a password given replaces it."""
    first = dataclasses.replace(MAIN, password="smtp-1", imap_password="imap-1")
    saved, created = await accounts.save(first, admin)
    assert created and saved.target_trusted
    _, created = await accounts.save(dataclasses.replace(MAIN, port=465), admin)
    stored = await sqlite_store.accounts.get("acme", "main")
    assert not created and stored is not None and stored.port == 465
    assert (stored.password, stored.imap_password) == ("smtp-1", "imap-1")
    await accounts.save(dataclasses.replace(MAIN, password="smtp-2"), admin)
    stored = await sqlite_store.accounts.get("acme", "main")
    assert stored is not None and (stored.password, stored.imap_password) == ("smtp-2", "imap-1")


async def test_unknown_tenant_and_bad_sender(accounts: AccountService, admin: Requester) -> None:
    """The tenant must exist; the default sender is one mailbox, stored normalised."""
    with pytest.raises(NotFound):
        await accounts.save(dataclasses.replace(MAIN, tenant_id="ghost"), admin)
    with pytest.raises(InvalidInput) as bad:
        await accounts.save(dataclasses.replace(MAIN, default_from="a@x.com, b@y.com"), admin)
    assert bad.value.field == "default_from"
    saved, _ = await accounts.save(
        dataclasses.replace(MAIN, default_from="ACME  <noreply@acme.example>"), admin
    )
    assert saved.default_from == "ACME <noreply@acme.example>"


async def test_tenant_hosts_are_judged_and_not_trusted(
    accounts: AccountService, tenant: Requester, policy: Policy
) -> None:
    """SMTP and IMAP hosts go to the policy (IMAP port from imap_ssl when not given);
    a refusal saves nothing."""
    with_imap = dataclasses.replace(MAIN, imap_host="imap.acme.example", imap_ssl=False)
    saved, _ = await accounts.save(with_imap, tenant)
    assert saved.target_trusted is False
    assert policy.asked == [
        ("smtp.acme.example", 587, "host"),
        ("imap.acme.example", 143, "imap_host"),
    ]
    policy.refused.add("10.0.0.1")
    with pytest.raises(TargetRefused):
        await accounts.save(dataclasses.replace(MAIN, id="other", host="10.0.0.1"), tenant)
    assert [a.id for a in await accounts.listing("acme")] == ["main"]


async def test_listing_and_delete(
    accounts: AccountService, sqlite_store: Store, admin: Requester
) -> None:
    """None lists every tenant's accounts; removing twice is NotFound."""
    await sqlite_store.tenants.create(Tenant(id="beta"), None, NOW)
    await accounts.save(MAIN, admin)
    await accounts.save(dataclasses.replace(MAIN, tenant_id="beta"), admin)
    assert [(a.tenant_id, a.id) for a in await accounts.listing(None)] == [
        ("acme", "main"),
        ("beta", "main"),
    ]
    await accounts.delete("acme", "main")
    with pytest.raises(NotFound):
        await accounts.delete("acme", "main")
