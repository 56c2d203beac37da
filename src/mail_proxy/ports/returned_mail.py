"""The ports of returned mail: what the mailbox pollers record, and the suppression list.

``Mailboxes`` is the pollers' side: the per-mailbox lease, the bookkeeping of mail
already handled, and recording a bounce or a PEC receipt in the same transaction
that marks the mail handled, so that a crash between the two never handles one twice
nor loses one. ``Bounces`` lists what was recorded (unmatched bounces included);
``Suppressions`` is each tenant's list of addresses not to mail again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from mail_proxy.domain.returned_mail import Returned
from mail_proxy.domain.suppression import SoftBouncePolicy


@dataclass(frozen=True, slots=True)
class BounceRecord:
    """One failed recipient as recorded; ``tenant_id`` None when no message matched.
    ``matched_by``: ``mail_id``, ``message_id``, ``recipient`` or ``none``."""

    id: int
    ts: int
    mailbox: str
    tenant_id: str | None
    message_id: str | None
    matched_by: str
    recipient: str
    bounce_type: str
    bounce_code: str | None
    bounce_reason: str
    suppressed: bool = False


@dataclass(frozen=True, slots=True)
class Suppression:
    tenant_id: str
    address: str
    reason: str
    bounce_id: int | None
    created_at: int


@dataclass(frozen=True, slots=True)
class Recorded:
    """What recording one mail did: ``new`` False when it was handled already;
    ``bounces`` its failed recipients as stored; ``receipt_matched`` for a PEC
    receipt, whether it found its message (None: not a receipt recorded)."""

    new: bool
    bounces: tuple[BounceRecord, ...] = ()
    receipt_matched: bool | None = None


@dataclass(frozen=True, slots=True)
class BounceRules:
    """What recording a bounce needs to know besides the bounce."""

    soft: SoftBouncePolicy
    match_window: float


class Mailboxes(ABC):
    @abstractmethod
    async def take_lease(self, mailbox: str, holder: str, now: float, until: float) -> bool:
        """Hold (or renew) the right to poll ``mailbox``: one poller per mailbox."""

    @abstractmethod
    async def release_lease(self, mailbox: str, holder: str) -> None: ...

    @abstractmethod
    async def handled(self, mailbox: str, keys: Sequence[str]) -> set[str]:
        """Which of these mail keys the mailbox has handled already."""

    @abstractmethod
    async def record(
        self,
        mailbox: str,
        mails: Sequence[tuple[str, Returned]],
        *,
        tenant_id: str | None,
        rules: BounceRules,
        now: float,
    ) -> list[Recorded]:
        """Record a batch of read mails (key, what it is) in one transaction, in order.
        A bounce is correlated, stored, given ``bounce`` events and may suppress; a PEC
        receipt (only for a PEC mailbox: ``tenant_id`` set) appends its event to the
        tenant's message it references; anything else is only marked handled. A key
        handled already (by this or another process) changes nothing."""

    @abstractmethod
    async def pec_timeouts(self, now: float, waited: float) -> int:
        """Append ``pec_timeout`` to every message sent through a PEC account more than
        ``waited`` seconds ago with no acceptance (nor error, nor timeout) yet."""


class Bounces(ABC):
    @abstractmethod
    async def search(
        self, tenant_id: str | None, *, unmatched: bool = False, limit: int = 100, offset: int = 0
    ) -> list[BounceRecord]:
        """Newest first. ``tenant_id`` None: every tenant's and the unmatched."""


class Suppressions(ABC):
    @abstractmethod
    async def search(
        self, tenant_id: str | None, *, limit: int = 1000, offset: int = 0
    ) -> list[Suppression]: ...

    @abstractmethod
    async def add(self, tenant_id: str, address: str, reason: str, now: float) -> bool:
        """False when the address was already suppressed (its entry is kept)."""

    @abstractmethod
    async def remove(self, tenant_id: str, address: str) -> bool: ...

    @abstractmethod
    async def suppressed(self, tenant_id: str, addresses: Sequence[str]) -> dict[str, str]:
        """The suppressed ones among ``addresses`` (lower-cased), with their reason."""
