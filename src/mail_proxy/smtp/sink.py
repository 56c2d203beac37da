"""A development SMTP sink: an in-process aiosmtpd server that keeps what it receives.

Started only by ``mail-proxy serve --dev-sink`` so a newcomer can watch a message
go through without an SMTP server of their own. It accepts everything, keeps the
most recent messages in memory and never relays anything anywhere.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from email import message_from_bytes, policy
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

KEEP_MESSAGES = 1000


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    received_at: float
    mail_from: str
    recipients: list[str]
    headers: dict[str, str]
    body: str
    size: int
    html: str | None = None
    """The HTML part, when the message has one (the dashboard's mailbox renders it)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "received_at": int(self.received_at),
            "mail_from": self.mail_from,
            "recipients": self.recipients,
            "subject": self.headers.get("Subject"),
            "from": self.headers.get("From"),
            "to": self.headers.get("To"),
            "message_id": self.headers.get("Message-ID"),
            "mail_id": self.headers.get("X-Genro-Mail-ID"),
            "size": self.size,
            "body": self.body,
        }


class PipeliningEhlo:
    """aiosmtpd handler part that offers PIPELINING (RFC 2920) in the EHLO reply.

    aiosmtpd reads one command line at a time from its buffer, so it serves a
    pipelined group correctly; it only never says so. Postfix, Exim and the large
    providers do, and the proxy pipelines when offered: a sink that offers it
    exercises the path real servers take. ``offers_pipelining`` turns it off.
    """

    offers_pipelining = True

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if self.offers_pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses


class _Handler(PipeliningEhlo):
    def __init__(self, sink: DevSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        self._sink.record(envelope.mail_from or "", list(envelope.rcpt_tos), raw)
        return "250 Message accepted for delivery"


class DevSink:
    """Accept-all SMTP server on the running loop, with the last messages kept."""

    def __init__(self, host: str = "127.0.0.1", port: int = 2525) -> None:
        self.host = host
        self.port = port
        self.messages: deque[ReceivedMessage] = deque(maxlen=KEEP_MESSAGES)
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        handler = _Handler(self)
        self._server = await loop.create_server(
            lambda: SMTP(handler, hostname="mail-proxy-dev-sink"), self.host, self.port
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def record(self, mail_from: str, recipients: list[str], raw: bytes) -> None:
        parsed = message_from_bytes(raw, policy=policy.default)
        headers = {key: str(value) for key, value in parsed.items()}
        part = parsed.get_body(preferencelist=("plain", "html"))
        body = part.get_content() if part is not None else ""
        html_part = parsed.get_body(preferencelist=("html",))
        html = html_part.get_content() if html_part is not None else None
        self.messages.append(
            ReceivedMessage(time.time(), mail_from, recipients, headers, body, len(raw), html)
        )
