"""Classify what an SMTP server (or the network) said into retry or give up.

RFC 5321 §4.2.1: the first digit of a reply code decides — 2yz success, 4yz a
transient negative completion (try again later), 5yz a permanent one. Two
refinements, both from the RFCs:

- RFC 5321 §4.5.3.1.10: a 552 answer to RCPT ("too many recipients", an old RFC 821
  error) SHOULD be treated as temporary.
- RFC 3463 §3.1: the class of an enhanced status code ("4.2.2", "5.1.1") at the
  start of the reply text must agree with the reply code; when a server sends a
  5yz reply with a 4.x.x enhanced code, the enhanced code wins, so the more
  specific word of the server is honoured.

Failures that never produced a reply (connection refused or reset, timeouts, TLS
handshake failures, the peer dropping mid-DATA) are transient: the next attempt
may well succeed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

_ENHANCED = re.compile(r"^([245])\.\d{1,3}\.\d{1,3}\b")


class Stage(StrEnum):
    """The step of the SMTP dialogue that answered."""

    CONNECT = "connect"
    HELO = "helo"
    TLS = "tls"
    AUTH = "auth"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply: its three-digit code and its text."""

    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


@dataclass(frozen=True, slots=True)
class Transient:
    """Worth another attempt later; ``reason`` is what the user reads."""

    reason: str


@dataclass(frozen=True, slots=True)
class Permanent:
    """Will not succeed by waiting; ``reason`` is what the user reads."""

    reason: str


Classification = Transient | Permanent


def without_banner(code: int, text: str) -> Reply:
    """A greeting or EHLO refusal as its code and enhanced status code only.

    The text at those stages is the server's banner: host names, software versions,
    whatever the far side chose to say. It is not shown to tenants; the enhanced
    code (RFC 3463) is kept because it decides the class and says what went wrong.
    """
    enhanced = _ENHANCED.match(text.strip())
    return Reply(code, enhanced.group(0) if enhanced else "")


def classify_reply(reply: Reply, stage: Stage) -> Classification:
    """Transient or permanent for a negative reply received at ``stage``."""
    reason = str(reply)
    if stage is Stage.RCPT and reply.code == 552:
        return Transient(reason)
    enhanced = _ENHANCED.match(reply.text.strip())
    klass = enhanced.group(1) if enhanced else str(reply.code)[:1]
    if klass == "5":
        return Permanent(reason)
    return Transient(reason)


def classify_refusals(refused: dict[str, Reply]) -> Classification:
    """Every recipient was refused: permanent only if every refusal is permanent."""
    verdicts = [classify_reply(reply, Stage.RCPT) for reply in refused.values()]
    reason = "; ".join(f"{rcpt}: {reply}" for rcpt, reply in refused.items())
    if verdicts and all(isinstance(v, Permanent) for v in verdicts):
        return Permanent(f"all recipients refused: {reason}")
    return Transient(f"recipients refused: {reason}")


def connection_failure(kind: str, detail: str) -> Transient:
    """A failure without a reply (refused, reset, timeout, TLS): always transient."""
    return Transient(f"{kind}: {detail}" if detail else kind)
