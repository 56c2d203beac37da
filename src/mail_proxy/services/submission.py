"""Submitting messages: validate a batch, queue what passes, wake the dispatcher.

Every door that takes mail in (the HTTP API today, the SMTP listener and the
dashboard later) calls ``SubmissionService.submit`` with the batch as plain JSON
values. Each message is judged on its own, so one bad message never rejects its
neighbours; the batch as a whole is refused only above the configured limits
(``TooLarge``), for a ``default_priority`` that is no priority (``InvalidInput``),
or for a tenant token naming another tenant (``WrongTenant``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from mail_proxy.domain.models import (
    ClaimedMessage,
    EnqueueOutcome,
    EnqueueResult,
    LeaseRequest,
    NewMessage,
    Priority,
)
from mail_proxy.domain.outgoing import OutgoingMessage
from mail_proxy.domain.priority import InvalidPriority, parse_priority
from mail_proxy.domain.text import is_storable
from mail_proxy.domain.validation import (
    MAX_ID_LENGTH,
    Rejection,
    ValidationContext,
    new_message,
    recipient_count,
    validate_message,
)
from mail_proxy.errors import InvalidInput, TooLarge, WrongTenant
from mail_proxy.ports import Store

log = structlog.get_logger(__name__)

INLINE_RECIPIENTS = 100
"""Batches naming more addresses are validated in a worker thread, off the event loop:
checking 20,000 addresses takes long enough to hold up every other request."""


@dataclass(frozen=True, slots=True)
class SubmissionLimits:
    """The operator's bounds on one batch, and the priority of messages giving none."""

    max_messages: int
    max_recipients: int
    default_priority: int = int(Priority.MEDIUM)
    filesystem_roots: tuple[str, ...] = ()  # GMP_ATTACHMENT_BASE_DIR


@dataclass(frozen=True, slots=True)
class Refused:
    """One message not queued: its position in the batch, its id when it had one."""

    index: int
    id: str | None
    reason: str


class Handoff(Protocol):
    """An idle dispatcher that takes freshly queued messages straight from the intake
    (``Dispatcher.lease_for`` / ``take``): one message at idle then costs no claim."""

    def lease_for(self, count: int) -> LeaseRequest | None: ...

    def take(self, claimed: Sequence[ClaimedMessage]) -> None: ...


@dataclass(frozen=True, slots=True)
class SubmissionResult:
    """How many messages were queued (or replaced) and the others, in batch order."""

    queued: int
    rejected: tuple[Refused, ...]


class SubmissionService:
    def __init__(
        self,
        store: Store,
        clock: Callable[[], float],
        wake: Callable[[], None],
        limits: SubmissionLimits,
        handoff: Handoff | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._wake = wake
        self._limits = limits
        self._handoff = handoff

    async def submit(
        self,
        messages: Sequence[object],
        *,
        token_tenant_id: str | None,
        default_priority: int | str | None = None,
        actor: str = "admin",
    ) -> SubmissionResult:
        """Queue the messages that pass; ``token_tenant_id`` is the tenant a tenant
        token acts for (None for the admin), ``actor`` who is logged for rejections."""
        recipients = self._refuse_oversized(messages)
        _refuse_other_tenants(token_tenant_id, messages)
        context = await self._context(messages, token_tenant_id, default_priority)
        if recipients > INLINE_RECIPIENTS:
            checked = await asyncio.to_thread(_validate_all, messages, context)
        else:
            checked = _validate_all(messages, context)
        accepted = [(index, item) for index, item in checked if isinstance(item, OutgoingMessage)]
        rejected = [
            Refused(index, item.id, item.reason)
            for index, item in checked
            if isinstance(item, Rejection)
        ]
        accepted = await self._refuse_suppressed(accepted, rejected)
        queued, handed = await self._enqueue(accepted, rejected)
        if queued > handed:
            self._wake()
        if rejected:
            log.info("messages_rejected", actor=actor, rejected=len(rejected), queued=queued)
        rejected.sort(key=lambda item: item.index)
        return SubmissionResult(queued, tuple(rejected))

    def _refuse_oversized(self, messages: Sequence[object]) -> int:
        """Refuse before any work a batch above the message or recipient limits;
        else the number of recipients."""
        limit = self._limits.max_messages
        if len(messages) > limit:
            raise TooLarge(f"Too many messages in one request: {len(messages)} > {limit}")
        limit = self._limits.max_recipients
        named = recipient_count(messages)
        if named > limit:
            raise TooLarge(f"Too many recipients (to, cc, bcc) in one request: {named} > {limit}")
        return named

    async def _context(
        self,
        messages: Sequence[object],
        token_tenant_id: str | None,
        default_priority: int | str | None,
    ) -> ValidationContext:
        """The tenants and accounts the batch names, looked up once for all of it; a
        tenant and its accounts side by side, on two connections: one round trip
        less before an idle dispatcher can start the send."""
        batch_priority: Priority | None = None
        if default_priority is not None:
            try:
                batch_priority = parse_priority(default_priority)
            except InvalidPriority as exc:
                raise InvalidInput(str(exc), field="default_priority") from None
        named = {_named_tenant(raw) for raw in messages}
        wanted = {t for t in named if t} | ({token_tenant_id} if token_tenant_id else set())
        tenants = {}
        accounts = {}
        for tenant_id in wanted:
            tenant, its_accounts = await asyncio.gather(
                self._store.tenants.get(tenant_id), self._store.accounts.all(tenant_id)
            )
            if tenant is not None:
                tenants[tenant_id] = tenant
                accounts[tenant_id] = its_accounts
        return ValidationContext(
            tenants=tenants,
            accounts=accounts,
            token_tenant_id=token_tenant_id,
            batch_priority=batch_priority,
            instance_priority=self._limits.default_priority,
            filesystem_roots=self._limits.filesystem_roots,
        )

    async def _refuse_suppressed(
        self, accepted: list[tuple[int, OutgoingMessage]], rejected: list[Refused]
    ) -> list[tuple[int, OutgoingMessage]]:
        """Reject whole each message naming an address on its tenant's suppression
        list (docs/bounces.md): dropping only that recipient would send the others a
        message whose To/Cc no longer says who it was for, so the client decides."""
        named: dict[str, set[str]] = {}
        for _, message in accepted:
            named.setdefault(message.tenant_id, set()).update(_addresses(message))
        suppressed: dict[str, dict[str, str]] = {}
        for tenant_id, addresses in named.items():
            suppressed[tenant_id] = await self._store.suppressions.suppressed(
                tenant_id, sorted(addresses)
            )
        kept = []
        for index, message in accepted:
            blocked = suppressed[message.tenant_id]
            hit = next((a for a in _addresses(message) if a in blocked), None)
            if hit is None:
                kept.append((index, message))
                continue
            reason = f"recipient {hit} is on the suppression list ({blocked[hit]})"
            rejected.append(Refused(index, message.id, reason))
        return kept

    async def _enqueue(
        self, accepted: list[tuple[int, OutgoingMessage]], rejected: list[Refused]
    ) -> tuple[int, int]:
        """Queue the accepted messages; the queue may still refuse one (already sent,
        being sent), which joins ``rejected``. How many were queued, and how many of
        those an idle dispatcher took at once."""
        if not accepted:
            return 0, 0
        stored = [new_message(message) for _, message in accepted]
        results, handed = await self._store_batch(stored)
        queued = 0
        for (index, message), result in zip(accepted, results, strict=True):
            if result.outcome is EnqueueOutcome.REJECTED:
                reason = result.reason or "rejected by the queue"
                rejected.append(Refused(index, message.id, reason))
            else:
                queued += 1
        return queued, handed

    async def _store_batch(self, stored: list[NewMessage]) -> tuple[list[EnqueueResult], int]:
        now = self._clock()
        lease = self._handoff.lease_for(len(stored)) if self._handoff else None
        if lease is None or self._handoff is None:
            return await self._store.intake.enqueue(stored, now), 0
        results, claimed = await self._store.intake.enqueue_leased(stored, now, lease)
        if claimed:
            self._handoff.take(claimed)
            # Yield once: the sends just handed over write to their SMTP sessions
            # before this request's response and command-log entry take the loop.
            await asyncio.sleep(0)
        return results, len(claimed)


def _validate_all(
    messages: Sequence[object], context: ValidationContext
) -> list[tuple[int, OutgoingMessage | Rejection]]:
    return [(index, validate_message(raw, context)) for index, raw in enumerate(messages)]


def _addresses(message: OutgoingMessage) -> list[str]:
    """Every recipient (To, Cc, Bcc) lower-cased, as the suppression list keeps them."""
    return [box.address.lower() for box in message.recipients]


def _refuse_other_tenants(token_tenant_id: str | None, messages: Sequence[object]) -> None:
    if token_tenant_id is None:
        return
    for raw in messages:
        named = raw.get("tenant_id") if isinstance(raw, dict) else None
        if named not in (None, "", token_tenant_id):
            raise WrongTenant()


def _named_tenant(raw: object) -> str | None:
    """The tenant id a message names, when it is text worth looking up."""
    named = raw.get("tenant_id") if isinstance(raw, dict) else None
    if isinstance(named, str) and len(named) <= MAX_ID_LENGTH and is_storable(named):
        return named
    return None
