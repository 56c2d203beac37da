"""The values the whole proxy passes around: tenants, accounts, messages, events.

They are plain frozen dataclasses so that storage, workers and the API agree on
one shape without importing each other. Times are Unix seconds (floats inside the
process, integers on the wire).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any


class Status(StrEnum):
    """Lifecycle of a queued message. ``pending`` and ``deferred`` are *active*."""

    PENDING = "pending"
    DEFERRED = "deferred"
    SENT = "sent"
    ERROR = "error"

    @property
    def active(self) -> bool:
        return self in (Status.PENDING, Status.DEFERRED)


def active_total(counts: Mapping[Status, int]) -> int:
    """Messages still to be sent, from counts by status."""
    return sum(n for state, n in counts.items() if Status(state).active)


class Priority(IntEnum):
    """Dispatch order: 0 goes first in a pass of its own, then 1, 2, 3."""

    IMMEDIATE = 0
    HIGH = 1
    MEDIUM = 2
    LOW = 3


class EventType(StrEnum):
    """What happened to a message; each becomes one entry of a delivery report."""

    SENT = "sent"
    DEFERRED = "deferred"
    ERROR = "error"
    BOUNCE = "bounce"
    PEC_ACCEPTANCE = "pec_acceptance"
    PEC_DELIVERY = "pec_delivery"
    PEC_ERROR = "pec_error"
    PEC_RELAY = "pec_relay"
    PEC_TIMEOUT = "pec_timeout"


class LimitBehavior(StrEnum):
    DEFER = "defer"
    REJECT = "reject"


class AuthMethod(StrEnum):
    """How the proxy proves itself to a tenant's server: the one list the API
    schemas, client sync and attachment specs accept."""

    NONE = "none"
    BEARER = "bearer"
    BASIC = "basic"


@dataclass(frozen=True, slots=True)
class ClientAuth:
    """How the proxy authenticates to a tenant's own endpoints (sync, attachments)."""

    method: AuthMethod = AuthMethod.NONE
    token: str | None = None
    user: str | None = None
    password: str | None = None


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Sends allowed per sliding window; ``None`` means unlimited."""

    per_minute: int | None = None
    per_hour: int | None = None
    per_day: int | None = None

    @property
    def unlimited(self) -> bool:
        return self.per_minute is None and self.per_hour is None and self.per_day is None


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str | None = None
    client_base_url: str | None = None
    client_sync_path: str = "/mail-proxy/sync"
    client_attachment_path: str = "/mail-proxy/attachments"
    client_auth: ClientAuth = field(default_factory=ClientAuth)
    rate_limits: dict[str, Any] | None = None
    large_file_config: dict[str, Any] | None = None
    active: bool = True
    api_key_expires_at: int | None = None
    has_api_key: bool = False
    signing_secret: str | None = None
    # Saved by the admin: its callback may point at private addresses (network_policy).
    target_trusted: bool = False
    created_at: int | None = None
    updated_at: int | None = None

    @property
    def sync_url(self) -> str | None:
        """Where delivery reports for this tenant go, or None to use the global URL."""
        if not self.client_base_url:
            return None
        return self.client_base_url.rstrip("/") + "/" + self.client_sync_path.lstrip("/")


@dataclass(frozen=True, slots=True)
class Account:
    """An SMTP account of one tenant; ``password`` is clear text only in memory."""

    id: str
    tenant_id: str
    host: str
    port: int = 587
    user: str | None = None
    password: str | None = None
    use_tls: bool | None = None
    ttl: int = 300
    limit_per_minute: int | None = None
    limit_per_hour: int | None = None
    limit_per_day: int | None = None
    limit_behavior: LimitBehavior = LimitBehavior.DEFER
    batch_size: int | None = None
    is_default: bool = False
    default_from: str | None = None
    timeout: float = 30.0
    is_pec_account: bool = False
    imap_host: str | None = None
    imap_port: int | None = None
    imap_user: str | None = None
    imap_password: str | None = None
    imap_ssl: bool = True
    imap_folder: str | None = None
    # Saved by the admin: its hosts may be private addresses (network_policy).
    target_trusted: bool = False
    created_at: int | None = None
    updated_at: int | None = None

    @property
    def rate_limits(self) -> RateLimits:
        return RateLimits(self.limit_per_minute, self.limit_per_hour, self.limit_per_day)

    @property
    def implicit_tls(self) -> bool:
        """Port 465 speaks TLS from the first byte (RFC 8314); others may STARTTLS."""
        return self.port == 465


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A validated message ready to enqueue. ``payload`` is the normalised message;
    ``rfc_message_id`` its RFC 5322 Message-ID, stored apart so that a bounce or a
    PEC receipt naming it finds the message."""

    tenant_id: str
    id: str
    account_id: str
    priority: int
    payload: dict[str, Any]
    deferred_ts: int | None = None
    batch_code: str | None = None
    #: The Message-ID header it is sent with (RFC 5322 §3.6.4), kept so that a
    #: bounce or a PEC receipt quoting it leads back to this message.
    rfc_message_id: str | None = None


class EnqueueOutcome(StrEnum):
    QUEUED = "queued"
    REPLACED = "replaced"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    id: str
    outcome: EnqueueOutcome
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """A row of the queue as the API and workers see it."""

    pk: int
    tenant_id: str
    id: str
    account_id: str
    priority: int
    status: Status
    payload: dict[str, Any]
    batch_code: str | None
    deferred_ts: int | None
    attempts: int
    created_at: int
    updated_at: int
    smtp_ts: int | None = None
    error_ts: int | None = None
    error: str | None = None
    reported_ts: int | None = None
    rfc_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class LeaseRequest:
    """A lease an idle dispatcher asks to be taken on messages as they are queued,
    in the enqueue's own transaction, so that it sends them without claiming."""

    token: str
    expires: float


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """A message leased to one dispatcher; ``lease_token`` must be shown to finish it."""

    record: MessageRecord
    lease_token: str
    lease_expires: float


@dataclass(frozen=True, slots=True)
class Sent:
    ts: float
    details: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Deferred:
    """Try again at ``until``. ``counts_attempt=False`` (a rate-limit hold, not a
    failed delivery) leaves ``attempts`` and so the retry schedule untouched."""

    until: float
    reason: str
    ts: float
    details: dict[str, Any] | None = None
    counts_attempt: bool = True


@dataclass(frozen=True, slots=True)
class Failed:
    ts: float
    error: str
    details: dict[str, Any] | None = None


Outcome = Sent | Deferred | Failed


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened to a message; ``reported_ts`` is set once acknowledged."""

    event_id: int
    message_pk: int
    tenant_id: str
    message_id: str
    type: EventType
    ts: int
    description: str | None = None
    details: dict[str, Any] | None = None
    reported_ts: int | None = None


@dataclass(frozen=True, slots=True)
class SendWindow:
    """Sends already made by one account in each sliding window, with the oldest time.

    The oldest send of a full window is what decides when the next one may go.
    """

    minute: int = 0
    hour: int = 0
    day: int = 0
    oldest_minute: float | None = None
    oldest_hour: float | None = None
    oldest_day: float | None = None


@dataclass(frozen=True, slots=True)
class CommandLogEntry:
    id: int
    ts: int
    method: str
    path: str
    actor: str
    tenant_id: str | None
    status_code: int
    body: dict[str, Any] | None = None
