#!/usr/bin/env python3
"""An application that hands its e-mail to mail-proxy the recommended way.

The pattern (walked through in docs/integration.md):

1. commit every outgoing message to *your* database first, so nothing is lost;
2. hand it to the proxy (``POST /commands/add-messages``), best effort;
3. ask for immediate dispatch (``POST /commands/run-now``), best effort;
4. learn each outcome from the proxy's delivery reports (the ``proxy_sync`` call);
5. a polling loop resubmits what the proxy has not taken, so a message written
   while the proxy is down is delivered once it is back.

Run ``python examples/client/example_client.py [--config example_config.ini]``.
It needs fastapi, uvicorn and the mail-proxy SDK (``pip install mail-proxy``
without extras: pydantic and httpx, for the signature check); aiohttp would do as
well as httpx for the calls.
Logging is the standard library's, so the example pulls in nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import configparser
import contextlib
import hmac
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse

from mail_proxy.client import HEADER as SIGNATURE_HEADER
from mail_proxy.client import InvalidSignature, check_signature

log = logging.getLogger("example_client")

SYNC_PATH = "/email/mailproxy/mp_endpoint/proxy_sync"
STATES = ("pending", "submitted", "delivered", "failed")

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbound_emails (
    id TEXT PRIMARY KEY,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    submitted_at INTEGER,
    delivered_at INTEGER,
    error TEXT,
    status TEXT DEFAULT 'pending'
);
CREATE INDEX IF NOT EXISTS idx_status ON outbound_emails(status);
"""


def log_event(level: int, event: str, **fields: object) -> None:
    """Log ``event key=value ...``: greppable, and never a message body or a token."""
    log.log(level, " ".join([event, *(f"{key}={value}" for key, value in fields.items())]))


# --- configuration ---------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """Everything example_config.ini can set; the defaults are the documented ones."""

    mail_service_url: str = "http://localhost:8000"
    api_token: str = ""
    tenant_id: str | None = None
    timeout: float = 5.0
    recipient_email: str = "your@email.com"
    sender_email: str = "test@example.com"
    sender_name: str = "Example Client Test"
    account_id: str | None = None
    db_path: str = "example_client.db"
    host: str = "127.0.0.1"
    port: int = 8081
    poll_interval: float = 60.0
    resubmit_submitted_after: float = 1800.0
    sync_bearer_token: str | None = None
    signing_secret: str | None = None
    signature_tolerance: float = 300.0

    @classmethod
    def load(cls, path: Path) -> Config:
        """Read an INI file; a missing file is an error, missing keys take defaults."""
        ini = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))
        if not ini.read(path, encoding="utf-8"):
            raise FileNotFoundError(f"config file not found: {path}")
        d = cls()

        def text(section: str, key: str, default: str | None) -> str | None:
            return ini.get(section, key, fallback=default) or default

        return cls(
            mail_service_url=str(text("mail_service", "url", d.mail_service_url)).rstrip("/"),
            api_token=ini.get("mail_service", "api_token", fallback=d.api_token),
            tenant_id=text("mail_service", "tenant_id", None),
            timeout=ini.getfloat("mail_service", "timeout", fallback=d.timeout),
            recipient_email=str(text("test", "recipient_email", d.recipient_email)),
            sender_email=str(text("test", "sender_email", d.sender_email)),
            sender_name=str(text("test", "sender_name", d.sender_name)),
            account_id=text("test", "account_id", None),
            db_path=str(text("database", "path", d.db_path)),
            host=str(text("server", "host", d.host)),
            port=ini.getint("server", "port", fallback=d.port),
            poll_interval=ini.getfloat("polling", "interval", fallback=d.poll_interval),
            resubmit_submitted_after=ini.getfloat(
                "polling", "resubmit_submitted_after", fallback=d.resubmit_submitted_after
            ),
            sync_bearer_token=text("proxy_sync", "bearer_token", None),
            signing_secret=text("proxy_sync", "signing_secret", None),
            signature_tolerance=ini.getfloat(
                "proxy_sync", "signature_tolerance", fallback=d.signature_tolerance
            ),
        )


# --- the local database: written first, the source of truth ----------------------


@dataclass(frozen=True)
class OutboundEmail:
    id: str
    recipient: str
    subject: str
    body: str


class LocalStore:
    """The application's own table of outgoing mail: pending → submitted → delivered|failed.

    Every method is one committed transaction, so a crash never loses a message
    that a caller has been told about.
    """

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _update(self, sql: str, params: Iterable[Any]) -> bool:
        """Run one UPDATE; True when it matched a row (the id is ours)."""
        with self._db:
            return self._db.execute(sql, tuple(params)).rowcount > 0

    def add(self, emails: list[OutboundEmail], now: float) -> None:
        with self._db:
            self._db.executemany(
                "INSERT INTO outbound_emails (id, recipient, subject, body, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [(e.id, e.recipient, e.subject, e.body, int(now)) for e in emails],
            )

    def mark_submitted(self, ids: list[str], now: float) -> None:
        """Record the hand-over; never downgrades a message a report already settled."""
        with self._db:
            self._db.executemany(
                "UPDATE outbound_emails SET status = 'submitted', submitted_at = ?"
                " WHERE id = ? AND status IN ('pending', 'submitted')",
                [(int(now), message_id) for message_id in ids],
            )

    def mark_delivered(self, message_id: str, ts: float) -> bool:
        return self._update(
            "UPDATE outbound_emails SET status = 'delivered', delivered_at = ?, error = NULL"
            " WHERE id = ?",
            (int(ts), message_id),
        )

    def mark_failed(self, message_id: str, error: str) -> bool:
        return self._update(
            "UPDATE outbound_emails SET status = 'failed', error = ? WHERE id = ?",
            (error, message_id),
        )

    def exists(self, message_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM outbound_emails WHERE id = ?", (message_id,))
        return row.fetchone() is not None

    def due_for_submission(self, now: float, submitted_before: float | None) -> list[OutboundEmail]:
        """Messages still pending, plus submitted ones older than ``submitted_before``."""
        rows = self._db.execute(
            "SELECT id, recipient, subject, body FROM outbound_emails"
            " WHERE status = 'pending' OR (status = 'submitted' AND submitted_at < ?)"
            " ORDER BY created_at",
            (int(submitted_before) if submitted_before is not None else -1,),
        )
        return [OutboundEmail(**dict(row)) for row in rows]

    def messages(self, statuses: Iterable[str], limit: int) -> list[dict[str, Any]]:
        wanted = list(statuses)
        rows = self._db.execute(
            "SELECT id, recipient, subject, status, created_at, submitted_at, delivered_at,"
            f" error FROM outbound_emails WHERE status IN ({','.join('?' * len(wanted))})"
            " ORDER BY created_at, id LIMIT ?",
            (*wanted, limit),
        )
        return [dict(row) for row in rows]

    def counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT status, COUNT(*) FROM outbound_emails GROUP BY status")
        found = {status: count for status, count in rows}
        counts = {state: found.get(state, 0) for state in STATES}
        return {"total": sum(found.values()), **counts}


# --- the proxy's API, as this application uses it ---------------------------------


class MailServiceError(Exception):
    """The proxy could not be reached or refused the call; the message stays local."""


class MailService:
    """``POST /commands/add-messages`` and ``/commands/run-now`` with ``X-API-Token``."""

    def __init__(self, base_url: str, api_token: str, http: httpx.AsyncClient) -> None:
        self._base_url = base_url
        self._headers = {"X-API-Token": api_token}
        self._http = http

    async def _post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self._base_url}{path}"
        try:
            response = await self._http.post(url, json=body, headers=self._headers)
        except httpx.HTTPError as exc:
            raise MailServiceError(f"cannot reach mail service at {url}: {exc!r}") from exc
        try:
            answer: dict[str, Any] = response.json()
        except ValueError:
            answer = {}
        if response.status_code >= 400 or answer.get("ok") is False:
            reason = answer.get("error") or response.reason_phrase
            raise MailServiceError(f"mail service answered {response.status_code}: {reason}")
        return answer

    async def add_messages(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return await self._post("/commands/add-messages", {"messages": messages})

    async def run_now(self) -> None:
        await self._post("/commands/run-now")


# --- delivery reports: both formats the proxy may send -----------------------------


@dataclass(frozen=True)
class Report:
    """One outcome: ``delivered``, ``failed`` or ``in_progress`` (deferred, still queued)."""

    id: str
    outcome: str
    ts: float
    error: str | None = None


def parse_reports(payload: dict[str, Any], now: float) -> list[Report]:
    """Read ``{"reports": [...]}`` (status sent|error) and ``{"delivery_report": [...]}``.

    The second is the proxy's client-sync format: ``sent_ts``; ``error_ts`` + ``error``;
    ``deferred_ts`` (retry later); ``bounce_ts`` + ``bounce_type`` (hard bounces fail).
    Entries without an ``id`` or with another event (PEC receipts) are skipped.
    """
    reports: list[Report] = []
    for item in payload.get("reports") or []:
        status = item.get("status")
        outcome = {"sent": "delivered", "error": "failed"}.get(str(status))
        if item.get("id") and outcome:
            ts = float(item.get("timestamp") or now)
            reports.append(Report(str(item["id"]), outcome, ts, item.get("error")))
    for item in payload.get("delivery_report") or []:
        report = _proxy_event(item)
        if report is not None:
            reports.append(report)
    return reports


def _proxy_event(item: dict[str, Any]) -> Report | None:
    message_id = str(item.get("id") or "")
    if not message_id:
        return None
    if item.get("sent_ts"):
        return Report(message_id, "delivered", float(item["sent_ts"]))
    if item.get("error_ts"):
        return Report(message_id, "failed", float(item["error_ts"]), item.get("error"))
    if item.get("bounce_ts") and item.get("bounce_type") == "hard":
        reason = f"bounced: {item.get('bounce_reason') or item.get('bounce_code')}"
        return Report(message_id, "failed", float(item["bounce_ts"]), reason)
    if item.get("deferred_ts"):
        return Report(message_id, "in_progress", float(item["deferred_ts"]))
    return None


def signature_problem(
    header: str | None, body: bytes, secret: str, now: float, tolerance: float
) -> str | None:
    """Why the header does not prove the proxy sent ``body``; None when it does.

    The check is the SDK's (``mail_proxy.client``), the one the proxy's own tests
    hold to its signer, so this example cannot drift from the scheme.
    """
    try:
        check_signature(body, header, secret, tolerance, now)
    except InvalidSignature as problem:
        return str(problem)
    return None


# --- the application's logic --------------------------------------------------------


class ExampleClient:
    """Creates test mail, hands it to the proxy, applies reports, and polls for stragglers."""

    def __init__(self, config: Config, store: LocalStore, service: MailService) -> None:
        self.config = config
        self.store = store
        self.service = service
        self._in_flight: set[str] = set()
        self._triggers: set[asyncio.Task[None]] = set()

    def create_test_emails(self, count: int, subject: str) -> list[OutboundEmail]:
        """Step 1: write the messages to the local database and commit, before any I/O."""
        now = time.time()
        emails = [self._test_email(subject, i, count, now) for i in range(1, count + 1)]
        self.store.add(emails, now)
        return emails

    def _test_email(self, subject: str, index: int, count: int, now: float) -> OutboundEmail:
        message_id = f"test_{int(now * 1000)}_{uuid.uuid4().hex[:8]}"
        title = subject if count == 1 else f"{subject} ({index}/{count})"
        body = f"Test message {message_id} from the mail-proxy example client."
        return OutboundEmail(message_id, self.config.recipient_email, title, body)

    def _wire(self, email: OutboundEmail) -> dict[str, Any]:
        message = {
            "id": email.id,
            "to": email.recipient,
            "from": self.config.sender_email,
            "from_name": self.config.sender_name,
            "subject": email.subject,
            "body": email.body,
        }
        if self.config.tenant_id:
            message["tenant_id"] = self.config.tenant_id
        if self.config.account_id:
            message["account_id"] = self.config.account_id
        return message

    async def hand_over(self, emails: list[OutboundEmail]) -> dict[str, Any]:
        """Steps 2 and 3: submit and trigger run-now. Raises MailServiceError if not taken."""
        emails = [e for e in emails if e.id not in self._in_flight]
        if not emails:
            return {"ok": True, "queued": 0, "rejected": []}
        ids = {e.id for e in emails}
        self._in_flight |= ids
        try:
            answer = await self.service.add_messages([self._wire(e) for e in emails])
            self._record_answer(list(ids), answer)
        finally:
            self._in_flight -= ids
        self._trigger_run_now()
        return answer

    def _record_answer(self, ids: list[str], answer: dict[str, Any]) -> None:
        rejected = {str(r.get("id")): str(r.get("reason")) for r in answer.get("rejected") or []}
        self.store.mark_submitted([i for i in ids if i not in rejected], time.time())
        for message_id, reason in rejected.items():
            self._record_rejection(message_id, reason)

    def _record_rejection(self, message_id: str, reason: str) -> None:
        """A resubmitted id the proxy already has is not a failure: it sent or is sending it."""
        if "already sent" in reason.lower():
            self.store.mark_delivered(message_id, time.time())
        elif "being sent" in reason.lower():
            self.store.mark_submitted([message_id], time.time())
        else:
            self.store.mark_failed(message_id, f"rejected: {reason}")
            log_event(logging.WARNING, "message_rejected", id=message_id, reason=reason)

    def _trigger_run_now(self) -> None:
        """Step 3, in the background: the caller need not wait for an optimisation."""
        task = asyncio.create_task(self._run_now(), name="run-now")
        self._triggers.add(task)
        task.add_done_callback(self._triggers.discard)

    async def _run_now(self) -> None:
        try:
            await self.service.run_now()
        except MailServiceError as exc:
            log_event(logging.WARNING, "run_now_failed_non_fatal", error=exc)

    async def submit_due(self, include_stale: bool = True) -> int:
        """Hand over what is pending (and, for polling, long-unconfirmed); never raises."""
        now = time.time()
        stale_before = now - self.config.resubmit_submitted_after if include_stale else None
        due = self.store.due_for_submission(now, stale_before)
        if not due:
            return 0
        try:
            await self.hand_over(due)
        except MailServiceError as exc:
            log_event(logging.WARNING, "resubmission_failed", count=len(due), error=exc)
            return 0
        log_event(logging.INFO, "messages_resubmitted", count=len(due))
        return len(due)

    async def poll_forever(self) -> None:
        """Step 5: the safety net. Runs at start, then every ``poll_interval`` seconds."""
        while True:
            try:
                await self.submit_due()
            except Exception:
                log.exception("polling_failed")
            await asyncio.sleep(self.config.poll_interval)

    async def settle(self) -> None:
        """Let run-now calls still in flight finish before the HTTP client closes."""
        await asyncio.gather(*self._triggers, return_exceptions=True)

    def apply_reports(self, reports: list[Report]) -> list[str]:
        """Step 4: record outcomes. Returns the ids this application does not know."""
        not_found: list[str] = []
        for report in reports:
            if report.outcome == "delivered":
                known = self.store.mark_delivered(report.id, report.ts)
            elif report.outcome == "failed":
                known = self.store.mark_failed(report.id, report.error or "delivery failed")
            else:
                known = self.store.exists(report.id)
            if not known:
                not_found.append(report.id)
        return not_found


# --- HTTP endpoints -----------------------------------------------------------------


def error_response(status_code: int, error: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": error}, status_code=status_code)


def iso(ts: int | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def create_app(config: Config) -> FastAPI:
    """The application; its lifespan opens the database, the HTTP client and the poller."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = LocalStore(config.db_path)
        async with httpx.AsyncClient(timeout=config.timeout) as http:
            client = ExampleClient(
                config, store, MailService(config.mail_service_url, config.api_token, http)
            )
            app.state.client = client
            poller = asyncio.create_task(client.poll_forever(), name="example-client-poller")
            try:
                yield
            finally:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
                await client.settle()
                store.close()

    app = FastAPI(title="mail-proxy example client", lifespan=lifespan)

    @app.post("/send-test-email")
    async def send_test_email(
        request: Request,
        count: int = Query(1, ge=1, le=100),
        subject: str = Query("Test Email from Example Client", min_length=1, max_length=200),
    ) -> dict[str, Any]:
        client: ExampleClient = request.app.state.client
        emails = client.create_test_emails(count, subject)
        ids = [e.id for e in emails]
        try:
            answer = await client.hand_over(emails)
        except MailServiceError as exc:
            log_event(logging.WARNING, "submission_failed_non_fatal", count=count, error=exc)
            return {
                "status": "queued_locally",
                "message": f"Saved {count} test email(s) locally; the mail service did not"
                " take them, the polling loop will resubmit them",
                "messages": ids,
                "mail_service_response": None,
                "mail_service_error": str(exc),
                "note": "Check /stats endpoint to monitor delivery status",
            }
        return {
            "status": "success",
            "message": f"Successfully queued {count} test email(s)",
            "messages": ids,
            "mail_service_response": answer,
            "note": "Check /stats endpoint to monitor delivery status",
        }

    @app.get("/messages")
    async def list_messages(
        request: Request,
        status: str = Query("open", pattern="^(open|all|pending|submitted|delivered|failed)$"),
        limit: int = Query(100, ge=1, le=1000),
    ) -> dict[str, Any]:
        """Messages not yet settled (``open``), or one state, or ``all``."""
        statuses = {"open": ("pending", "submitted"), "all": STATES}.get(status, (status,))
        rows = request.app.state.client.store.messages(statuses, limit)
        for row in rows:
            for key in ("created_at", "submitted_at", "delivered_at"):
                row[key] = iso(row[key])
        return {"status": "success", "count": len(rows), "messages": rows}

    @app.get("/stats")
    async def stats(request: Request) -> dict[str, Any]:
        return {"status": "success", "statistics": request.app.state.client.store.counts()}

    async def receive_reports(request: Request) -> JSONResponse:
        """The proxy's client-sync call (and the older delivery-report call)."""
        client: ExampleClient = request.app.state.client
        body = await request.body()
        problem = _authentication_problem(client.config, request, body)
        if problem:
            log_event(logging.WARNING, "sync_call_refused", reason=problem)
            return error_response(401, problem)
        try:
            payload = json.loads(body)
            reports = parse_reports(payload, time.time())
        except (ValueError, TypeError, AttributeError) as exc:
            return error_response(400, f"body is not a delivery report: {exc}")
        not_found = client.apply_reports(reports)
        await client.submit_due(include_stale=False)
        queued = client.store.counts()["pending"]
        log_event(logging.INFO, "reports_applied", count=len(reports), queued=queued)
        return JSONResponse(
            {
                "ok": True,
                "queued": queued,
                "next_sync_after": None,
                "not_found": not_found,
                "status": "ok",
                "processed": len(reports),
            }
        )

    app.add_api_route(SYNC_PATH, receive_reports, methods=["POST"])
    app.add_api_route("/delivery-report", receive_reports, methods=["POST"])
    return app


def _authentication_problem(config: Config, request: Request, body: bytes) -> str | None:
    """Check the tenant's bearer token and the proxy's signature, when configured."""
    if config.sync_bearer_token:
        expected = f"Bearer {config.sync_bearer_token}"
        if not hmac.compare_digest(request.headers.get("Authorization", ""), expected):
            return "missing or wrong bearer token"
    if config.signing_secret:
        return signature_problem(
            request.headers.get(SIGNATURE_HEADER),
            body,
            config.signing_secret,
            time.time(),
            config.signature_tolerance,
        )
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description="mail-proxy example client")
    parser.add_argument(
        "--config",
        type=Path,
        default=Path("example_config.ini"),
        help="INI file (default: ./example_config.ini)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise
    try:
        config = Config.load(args.config)
    except (FileNotFoundError, ValueError, configparser.Error) as exc:
        parser.exit(2, f"error: {exc}\n")
    uvicorn.run(create_app(config), host=config.host, port=config.port)


if __name__ == "__main__":
    main()
