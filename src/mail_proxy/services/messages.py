"""The queue as its owners see it: listing, one message with its history, removal.

Submission is a use case of its own (``services.submission``); here messages are
only read or removed. Tenant scoping is decided by the caller: these methods act on
the tenant they are given, and a listing without a tenant covers every tenant.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from mail_proxy.domain.models import Event, MessageRecord
from mail_proxy.errors import Conflict, NotFound
from mail_proxy.ports import DeleteResult, MessageFilter, Store


@dataclass(frozen=True, slots=True)
class MessagePage:
    """One page of a listing; ``histories`` (by message pk) only when asked for."""

    records: list[MessageRecord]
    total: int
    tenant_names: dict[str, str | None]
    histories: dict[int, list[Event]] | None = None


@dataclass(frozen=True, slots=True)
class MessageDetail:
    record: MessageRecord
    events: list[Event]
    tenant_name: str | None


class MessageService:
    def __init__(
        self,
        store: Store,
        *,
        retention_seconds: float,
        clock: Callable[[], float] = time.time,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._retention = retention_seconds
        self._clock = clock
        self._wake = wake

    async def search(
        self, flt: MessageFilter, *, limit: int, offset: int, with_history: bool = False
    ) -> MessagePage:
        records = await self._store.messages.search(flt, limit=limit, offset=offset)
        return MessagePage(
            records=records,
            total=await self._store.messages.count(flt),
            tenant_names=await self._tenant_names(r.tenant_id for r in records),
            histories=await self._histories(records) if with_history else None,
        )

    async def browse(
        self, flt: MessageFilter, *, before_pk: int | None, limit: int
    ) -> tuple[list[MessageRecord], int | None]:
        """Newest first; the cursor of the next (older) page, None on the last."""
        records = await self._store.messages.page(flt, before_pk=before_pk, limit=limit + 1)
        more = len(records) > limit
        return records[:limit], records[limit - 1].pk if more else None

    async def retry_now(self, tenant_id: str, message_id: str) -> None:
        """A waiting message becomes due now; the dispatcher is woken for it."""
        if not await self._store.messages.retry_now(tenant_id, message_id, self._clock()):
            await self._record(tenant_id, message_id)
            raise Conflict(
                f"Message {message_id!r} is not waiting: only pending or deferred "
                "messages not being sent can be retried now"
            )
        if self._wake is not None:
            self._wake()

    async def get(self, tenant_id: str, message_id: str) -> MessageDetail:
        record = await self._record(tenant_id, message_id)
        events = await self._store.messages.events(tenant_id, message_id)
        names = await self._tenant_names([tenant_id])
        return MessageDetail(record, events, names[tenant_id])

    async def events(self, tenant_id: str, message_id: str) -> list[Event]:
        """NotFound for an unknown message, rather than an empty history."""
        await self._record(tenant_id, message_id)
        return await self._store.messages.events(tenant_id, message_id)

    async def delete(self, tenant_id: str, ids: Sequence[str]) -> DeleteResult:
        return await self._store.messages.delete(tenant_id, ids)

    async def cleanup(self, tenant_id: str | None, older_than_seconds: float | None) -> int:
        """Only sent or failed messages whose reports were acknowledged go; the age
        defaults to the delivery report retention."""
        age = self._retention if older_than_seconds is None else older_than_seconds
        return await self._store.messages.cleanup(self._clock() - age, tenant_id)

    async def _record(self, tenant_id: str, message_id: str) -> MessageRecord:
        record = await self._store.messages.get(tenant_id, message_id)
        if record is None:
            raise NotFound(f"No message {message_id!r} for tenant {tenant_id!r}")
        return record

    async def _tenant_names(self, tenant_ids: Iterable[str]) -> dict[str, str | None]:
        """Display names of these tenants only (a tenant's page: one lookup)."""
        names: dict[str, str | None] = {}
        for tenant_id in set(tenant_ids):
            tenant = await self._store.tenants.get(tenant_id)
            names[tenant_id] = tenant.name if tenant else None
        return names

    async def _histories(self, records: list[MessageRecord]) -> dict[int, list[Event]]:
        histories: dict[int, list[Event]] = {r.pk: [] for r in records}
        for event in await self._store.messages.events_of([r.pk for r in records]):
            histories[event.message_pk].append(event)
        return histories
