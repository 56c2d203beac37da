"""SMTP accounts of a tenant: saved whole (create or replace), listed, removed.

Passwords (SMTP and IMAP) are write-only: a replace that gives none keeps the
stored one, so a client can save back an account it read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

from mail_proxy.domain.addresses import InvalidAddress, normalise_sender
from mail_proxy.domain.models import Account
from mail_proxy.errors import InvalidInput, NotFound
from mail_proxy.ports import Store
from mail_proxy.services.requester import Requester
from mail_proxy.services.write_only import kept
from mail_proxy.smtp.base import MailerError

Probe = Callable[[Account], Awaitable[None]]
"""Connects and logs in as a send would; raises what a send would have met."""


class AccountService:
    def __init__(
        self, store: Store, clock: Callable[[], float], probe: Probe | None = None
    ) -> None:
        self._store = store
        self._clock = clock
        self._probe = probe

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

    async def get(self, tenant_id: str, account_id: str) -> Account:
        account = await self._store.accounts.get(tenant_id, account_id)
        if account is None:
            raise NotFound(f"No account {account_id!r} for tenant {tenant_id!r}")
        return account

    async def check_connection(self, tenant_id: str, account_id: str) -> str | None:
        """None when the server accepted the connection (and the login, if the
        account has a user); otherwise why not, in the server's or the network's words."""
        if self._probe is None:
            raise InvalidInput("This process cannot test SMTP connections")
        try:
            await self._probe(await self.get(tenant_id, account_id))
        except MailerError as error:
            return str(error) or type(error).__name__
        return None

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
