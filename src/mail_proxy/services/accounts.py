"""SMTP accounts of a tenant: saved whole (create or replace), listed, removed.

Passwords (SMTP and IMAP) are write-only: a replace that gives none keeps the
stored one, so a client can save back an account it read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from mail_proxy.domain.addresses import InvalidAddress, normalise_sender
from mail_proxy.domain.models import Account
from mail_proxy.errors import InvalidInput, NotFound
from mail_proxy.ports import Store
from mail_proxy.services.requester import Requester
from mail_proxy.services.write_only import kept


class AccountService:
    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock

    async def save(self, account: Account, by: Requester) -> tuple[Account, bool]:
        """The account as stored and whether it was created. A tenant's SMTP and IMAP
        hosts are judged by the target policy; the admin's are marked trusted."""
        if await self._store.tenants.get(account.tenant_id) is None:
            raise NotFound(f"Unknown tenant {account.tenant_id!r}")
        default_from = _sender(account.default_from)
        await by.check_host(account.host, account.port, "host")
        imap_port = account.imap_port or (993 if account.imap_ssl else 143)
        await by.check_host(account.imap_host, imap_port, "imap_host")
        stored = await self._store.accounts.get(account.tenant_id, account.id)
        complete = dataclasses.replace(
            account,
            default_from=default_from,
            target_trusted=by.is_admin,
            password=kept(account.password, stored.password if stored else None),
            imap_password=kept(account.imap_password, stored.imap_password if stored else None),
        )
        return await self._store.accounts.upsert(complete, self._clock())

    async def listing(self, tenant_id: str | None) -> list[Account]:
        """One tenant's accounts, or every tenant's for ``None``."""
        return await self._store.accounts.all(tenant_id)

    async def delete(self, tenant_id: str, account_id: str) -> None:
        if not await self._store.accounts.delete(tenant_id, account_id):
            raise NotFound(f"No account {account_id!r} for tenant {tenant_id!r}")


def _sender(default_from: str | None) -> str | None:
    if not default_from:
        return None
    try:
        return normalise_sender(default_from)
    except InvalidAddress as exc:
        raise InvalidInput(str(exc), field="default_from") from None
