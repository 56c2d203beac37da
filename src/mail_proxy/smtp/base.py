"""The Mailer port: hand one message to an account's SMTP server, say what happened.

Workers depend on this interface only. A send either returns a ``SendResult`` (the
server accepted the message for at least one recipient, RFC 5321 §3.3) or raises
one of two errors:

    MailerError
    ├── SmtpRejected     the server answered with a negative reply (4yz/5yz)
    ├── SmtpUnavailable  no usable answer: refused, reset, timeout, TLS failure
    └── SmtpNotPossible  the proxy will not send this way: a target the network
                         policy refuses, AUTH over clear text, SMTPUTF8 missing

``classify`` turns each into the domain's Transient or Permanent. Every text in
these errors went through ``storable()``: it may become a stored reason.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from mail_proxy.domain.mime import Envelope
from mail_proxy.domain.models import Account
from mail_proxy.domain.smtp_replies import (
    Classification,
    Permanent,
    Reply,
    Stage,
    classify_refusals,
    classify_reply,
    connection_failure,
)


@dataclass(frozen=True, slots=True)
class SendResult:
    """Accepted by the server; ``refused`` lists recipients it turned down."""

    accepted: tuple[str, ...]
    reply: Reply
    refused: dict[str, Reply] = field(default_factory=dict)


class MailerError(Exception):
    """The message was not accepted."""


class SmtpRejected(MailerError):
    """A negative reply at ``stage``; ``refused`` holds every recipient's refusal."""

    def __init__(self, reply: Reply, stage: Stage, refused: dict[str, Reply] | None = None):
        super().__init__(f"{stage.value}: {reply}")
        self.reply = reply
        self.stage = stage
        self.refused = refused or {}


class SmtpUnavailable(MailerError):
    """No usable reply: ``kind`` is connection, timeout, tls, disconnected, …"""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


class SmtpNotPossible(MailerError):
    """Waiting will not help: the account or the message must change."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def classify(error: MailerError) -> Classification:
    """Transient or permanent, from the reply (RFC 5321 §4.2.1) or its absence."""
    if isinstance(error, SmtpRejected):
        if error.stage is Stage.RCPT and error.refused:
            return classify_refusals(error.refused)
        return classify_reply(error.reply, error.stage)
    if isinstance(error, SmtpUnavailable):
        return connection_failure(error.kind, error.detail)
    if isinstance(error, SmtpNotPossible):
        return Permanent(error.reason)
    return connection_failure("smtp error", str(error))


class Mailer(ABC):
    """Sends messages through SMTP accounts. Safe for concurrent use."""

    @abstractmethod
    async def send(self, account: Account, envelope: Envelope, message: bytes) -> SendResult:
        """Deliver ``message`` (CRLF-terminated RFC 5322 bytes) to ``envelope``."""

    @abstractmethod
    async def close(self) -> None:
        """Close idle connections; sends after this fail with ``SmtpUnavailable``."""
