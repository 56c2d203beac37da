"""Bounces and the suppression list as tenants and the operator see them.

A tenant reads its own bounces and manages its own list; the operator reads every
tenant's and the unmatched bounces (no message found: kept for inspection). An
address is added by hand with a reason of the caller's, or by the mailbox pollers
on a hard bounce (or repeated soft ones); removing it lets it be mailed again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from mail_proxy.domain.addresses import InvalidAddress, addr_spec
from mail_proxy.domain.text import storable
from mail_proxy.errors import Forbidden, InvalidInput, NotFound
from mail_proxy.ports import Store
from mail_proxy.ports.returned_mail import BounceRecord, Suppression

EXPORT_PAGE = 1000
MAX_REASON = 500
MANUAL_REASON = "added by hand"


class BounceService:
    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock

    async def bounces(
        self,
        scope: str | None,
        *,
        unmatched: bool = False,
        is_admin: bool,
        limit: int = 100,
        offset: int = 0,
    ) -> list[BounceRecord]:
        """Newest first; ``unmatched`` (operator only) lists bounces no message matched."""
        if unmatched and not is_admin:
            raise Forbidden("Unmatched bounces belong to no tenant: admin token needed")
        return await self._store.bounces.search(
            scope, unmatched=unmatched, limit=limit, offset=offset
        )

    async def suppressions(
        self, scope: str | None, *, limit: int = 100, offset: int = 0
    ) -> list[Suppression]:
        return await self._store.suppressions.search(scope, limit=limit, offset=offset)

    async def export(self, scope: str | None) -> AsyncIterator[Suppression]:
        """Every entry in scope, a page at a time."""
        offset = 0
        while True:
            page = await self.suppressions(scope, limit=EXPORT_PAGE, offset=offset)
            for entry in page:
                yield entry
            if len(page) < EXPORT_PAGE:
                return
            offset += EXPORT_PAGE

    async def suppress(self, tenant_id: str, address: str, reason: str | None) -> bool:
        """Add ``address``; False when it was listed already (its entry is kept)."""
        if await self._store.tenants.get(tenant_id) is None:
            raise NotFound(f"Tenant {tenant_id!r} not found")
        normalised = _address(address)
        text = storable(reason, MAX_REASON) if reason else MANUAL_REASON
        return await self._store.suppressions.add(tenant_id, normalised, text, self._clock())

    async def unsuppress(self, tenant_id: str, address: str) -> None:
        if not await self._store.suppressions.remove(tenant_id, address.strip().lower()):
            raise NotFound(f"{address[:80]!r} is not on the suppression list of {tenant_id!r}")


def _address(address: str) -> str:
    try:
        return addr_spec(address.strip(), "address").lower()
    except InvalidAddress as exc:
        raise InvalidInput(str(exc), field="address") from None
