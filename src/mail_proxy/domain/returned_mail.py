"""Mail that comes back to the proxy's mailboxes: a bounce, a PEC receipt, or noise.

:func:`read_returned` decides in this order: a PEC receipt (its ``X-Ricevuta``
header is authoritative); an automatic reply (RFC 3834 ``Auto-Submitted:
auto-replied``, ``X-Autoreply``, ``Precedence: auto_reply``, out-of-office
subjects) is ignored, so that a holiday notice never suppresses anybody; an RFC
3464 report; then the heuristic detectors for everything else. A mail nobody
recognises is ignored, and says why. Reports are read before the auto-reply
marks because MTAs label their bounces ``Auto-Submitted: auto-replied`` too.

Correlation keys are read from the returned headers (``text/rfc822-headers`` or
``message/rfc822`` part, else the quoted text): the ``X-Genro-Mail-ID`` the proxy
stamps on every message, and the original ``Message-ID``.

Only the first ``MAX_PARSED`` bytes are parsed: the part that matters (report and
returned headers) comes first, and a mailbox holding a 50 MB bounce must not cost
the poller its memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import Message

from mail_proxy.domain.bounces import FailedRecipient, dsn_failures, heuristic_failures
from mail_proxy.domain.pec import PecReceipt, pec_receipt
from mail_proxy.domain.text import storable

MAX_PARSED = 512 * 1024
_ID_LIMIT = 255
_AUTO_SUBJECTS = (
    "out of office",
    "out of the office",
    "auto-reply",
    "autoreply",
    "automatic reply",
    "risposta automatica",
    "fuori sede",
    "abwesenheitsnotiz",
    "vacation",
    "réponse automatique",
)
_QUOTED_HEADER = re.compile(
    rb"^(x-genro-mail-id|message-id):[ \t]*(\S[^\r\n]*)", re.IGNORECASE | re.MULTILINE
)


@dataclass(frozen=True, slots=True)
class Bounce:
    """A notice of failed delivery: who failed, and the keys to find the message."""

    recipients: tuple[FailedRecipient, ...]
    mail_id: str | None
    original_message_id: str | None
    standard: bool


@dataclass(frozen=True, slots=True)
class Ignored:
    """Not a bounce and not a receipt; ``reason`` says what it was taken for."""

    reason: str


Returned = Bounce | PecReceipt | Ignored


def read_returned(raw: bytes) -> Returned:
    """What one mail found in a bounce or PEC mailbox is (never raises)."""
    mail = message_from_bytes(raw[:MAX_PARSED], policy=policy.compat32)
    receipt = pec_receipt(mail)
    if receipt is not None:
        return receipt
    try:
        failed = dsn_failures(mail)
        standard = failed is not None
        if failed is None:
            if is_vacation_reply(mail):
                return Ignored("automatic reply")
            failed = heuristic_failures(mail)
    except Exception:  # malformed mail (or a detector tripping on it) must not stop the mailbox
        return Ignored("unreadable notice")
    if not failed:
        if _auto_submitted(mail) and not standard:
            return Ignored("automatic reply")
        return Ignored("no failed recipient" if standard else "not a bounce")
    mail_id, message_id = returned_ids(mail)
    return Bounce(tuple(failed), mail_id, message_id, standard)


def is_vacation_reply(mail: Message) -> bool:
    """The de-facto marks of vacation responders (``X-Autoreply``, ``Precedence:
    auto_reply``, an out-of-office subject). ``Auto-Submitted: auto-replied`` alone
    (RFC 3834 §5) does not decide: MTAs put it on their bounces too."""
    if mail.get("X-Autoreply") is not None or mail.get("X-Autorespond") is not None:
        return True
    if str(mail.get("Precedence", "")).strip().lower() == "auto_reply":
        return True
    subject = str(mail.get("Subject", "")).lower()
    return any(word in subject for word in _AUTO_SUBJECTS)


def _auto_submitted(mail: Message) -> bool:
    return str(mail.get("Auto-Submitted", "")).strip().lower().startswith("auto-replied")


def returned_ids(mail: Message) -> tuple[str | None, str | None]:
    """(X-Genro-Mail-ID, Message-ID) of the returned original, when present."""
    for part in mail.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return _header(inner[0], "X-Genro-Mail-ID"), _header(inner[0], "Message-ID")
        if kind == "text/rfc822-headers":
            return _quoted_ids(part.get_payload(decode=True))
    return _quoted_ids(_body_bytes(mail))


def _header(mail: Message, name: str) -> str | None:
    value = mail.get(name)
    return None if value is None else storable(str(value).strip(), _ID_LIMIT) or None


def _quoted_ids(text: object) -> tuple[str | None, str | None]:
    if not isinstance(text, bytes):
        return None, None
    found: dict[str, str] = {}
    for name, value in _QUOTED_HEADER.findall(text):
        found.setdefault(name.decode().lower(), storable(value.strip(), _ID_LIMIT))
    return found.get("x-genro-mail-id"), found.get("message-id")


def _body_bytes(mail: Message) -> bytes:
    chunks = []
    for part in mail.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                chunks.append(payload)
    return b"\n".join(chunks)
