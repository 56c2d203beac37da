"""Bounces: which recipients a returned mail reports as failed, and how badly.

RFC 3464 delivery status notifications (``multipart/report;
report-type=delivery-status``) are read field by field: one ``Final-Recipient``,
``Action``, ``Status`` and ``Diagnostic-Code`` per recipient. Only ``Action:
failed`` is a bounce; ``delayed`` (the MTA is still trying), ``delivered``,
``relayed`` and ``expanded`` are not. Mail in no standard form (old qmail, Exim
and Exchange notices, provider-specific texts) is handed to ``flufl.bounce``, the
detectors GNU Mailman keeps, rather than to regexes of our own.

Classification (:func:`classify`) follows RFC 3463: the class digit of the
enhanced status code decides (5 hard, 4 soft), with the one refinement most MTAs
agree on, X.2.2 "mailbox full" being soft whatever its class. Without a code the
reason's words decide (unknown user or domain → hard; quota, greylisting → soft).

Every text taken from the mail is made storable and bounded here (``text.storable``),
so what leaves this module can be stored, logged and reported as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from enum import StrEnum

from flufl.bounce import all_failures

from mail_proxy.domain.text import storable

#: Longest diagnostic kept per recipient (a bounce can quote a whole SMTP session).
MAX_REASON = 500
#: Longest address kept: RFC 5321 §4.5.3.1.3 path limit.
MAX_ADDRESS = 256
#: Most recipients read from one notice: a report listing more is cut, not refused.
MAX_RECIPIENTS = 100

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_REPLY_CODE = re.compile(r"^\s*([245])\d\d\b")
_SOFT_WORDS = (
    "mailbox full",
    "mailbox is full",
    "quota",
    "greylist",
    "graylist",
    "try again later",
    "temporarily",
    "insufficient system storage",
)
_HARD_WORDS = (
    "user unknown",
    "unknown user",
    "no such user",
    "does not exist",
    "mailbox unavailable",
    "recipient address rejected",
    "host not found",
    "domain not found",
    "no mx",
    "unrouteable",
)


class BounceType(StrEnum):
    HARD = "hard"
    SOFT = "soft"


@dataclass(frozen=True, slots=True)
class FailedRecipient:
    """One recipient the notice reports as failed: ``code`` is the RFC 3463 status
    (``5.1.1``) when the notice gave one, else the SMTP reply code, else None."""

    address: str
    bounce_type: BounceType
    code: str | None
    reason: str


def classify(status: str | None, reason: str) -> tuple[BounceType, str | None]:
    """Hard or soft, and the code it was decided by (RFC 3463 §3.1)."""
    code = _status_code(status) or _status_code(reason)
    lowered = reason.lower()
    if code is not None:
        klass, subject, detail = code.split(".")
        if klass == "4" or (subject, detail) == ("2", "2"):
            return BounceType.SOFT, code
        return BounceType.HARD, code
    reply = _REPLY_CODE.match(reason)
    if reply is not None:
        kind = BounceType.SOFT if reply.group(1) == "4" else BounceType.HARD
        return kind, reply.group(0).strip()
    if any(word in lowered for word in _SOFT_WORDS):
        return BounceType.SOFT, None
    return BounceType.HARD, None


def _status_code(text: str | None) -> str | None:
    found = _STATUS.search(text or "")
    return None if found is None else ".".join(found.groups())


def dsn_failures(report: Message) -> list[FailedRecipient] | None:
    """The failed recipients of an RFC 3464 report, or None when ``report`` is none."""
    if report.get_content_type() != "multipart/report":
        return None
    status = next(
        (part for part in report.walk() if part.get_content_type() == "message/delivery-status"),
        None,
    )
    if status is None:
        return None
    blocks = status.get_payload()
    if not isinstance(blocks, list):
        return []
    failed = []
    for block in blocks[1:]:  # the first block holds the per-message fields (§2.2)
        if isinstance(block, Message) and _field(block, "Action").lower() == "failed":
            failed.append(_dsn_recipient(block))
        if len(failed) == MAX_RECIPIENTS:
            break
    return failed


def _dsn_recipient(block: Message) -> FailedRecipient:
    recipient = _field(block, "Final-Recipient") or _field(block, "Original-Recipient")
    address = recipient.partition(";")[2].strip() or recipient  # "rfc822; user@host"
    diagnostic = _field(block, "Diagnostic-Code")
    reason = diagnostic.partition(";")[2].strip() if ";" in diagnostic else diagnostic
    status = _field(block, "Status")
    kind, code = classify(status, reason)
    return FailedRecipient(
        storable(address, MAX_ADDRESS).lower(),
        kind,
        code,
        storable(reason or f"status {status}", MAX_REASON),
    )


def _field(block: Message, name: str) -> str:
    value = block.get(name)
    return "" if value is None else " ".join(str(value).split())


def heuristic_failures(mail: Message) -> list[FailedRecipient]:
    """Failed recipients of a notice in no standard form, by ``flufl.bounce``'s
    detectors; the reason and code come from the notice's first text part."""
    temporary, permanent = all_failures(mail)
    text = _first_text(mail)
    failed = []
    for addresses, kind in ((permanent, BounceType.HARD), (temporary, BounceType.SOFT)):
        for raw in sorted(addresses)[:MAX_RECIPIENTS]:
            address = storable(raw, MAX_ADDRESS).lower()
            line = _line_about(text, address)
            decided, code = classify(None, line)
            failed.append(FailedRecipient(address, kind if code is None else decided, code, line))
    return failed[:MAX_RECIPIENTS]


def _first_text(mail: Message) -> str:
    for part in mail.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return storable(payload, 20_000)
    return ""


def _line_about(text: str, address: str) -> str:
    """The notice's line naming a status for ``address`` (or its first with a code):
    what a person would quote as the reason."""
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    coded = [line for line in lines if _STATUS.search(line) or _REPLY_CODE.match(line)]
    about = [line for line in coded if address in line.lower()]
    words = [line for line in lines if any(w in line.lower() for w in _HARD_WORDS + _SOFT_WORDS)]
    chosen = (about or coded or words or ["undeliverable"])[0]
    return storable(chosen, MAX_REASON)
