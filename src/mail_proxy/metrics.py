"""Prometheus metrics of one proxy process, on a registry of its own.

A registry per ``Metrics`` object (not the global default) lets several proxies
live in one test process. Gauges that mirror the database are refreshed by the
``/metrics`` handler just before it renders, because collection is synchronous
and the store is not.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from mail_proxy.domain.models import active_total
from mail_proxy.ports import Outbox, Store

SMTP_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Every ``gmp_*`` series the proxy exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.sent = Counter("gmp_sent", "Messages accepted by SMTP.", ["account_id"], registry=r)
        self.errors = Counter("gmp_errors", "Messages failed for good.", ["account_id"], registry=r)
        self.deferred = Counter(
            "gmp_deferred", "Delivery attempts deferred for retry.", ["account_id"], registry=r
        )
        self.rate_limited = Counter(
            "gmp_rate_limited", "Sends held back by a rate limit.", ["account_id"], registry=r
        )
        self.pending = Gauge("gmp_pending_messages", "Messages not yet sent or failed.", registry=r)
        self.oldest_due_age = Gauge(
            "gmp_oldest_due_message_age_seconds",
            "Age of the oldest message that is due now (0 when none).",
            registry=r,
        )
        self.smtp_latency = Histogram(
            "gmp_smtp_send_seconds",
            "Time of one SMTP transaction (MAIL FROM to end of DATA).",
            ["account_id"],
            buckets=SMTP_LATENCY_BUCKETS,
            registry=r,
        )
        self.sync_calls = Counter(
            "gmp_sync_calls", "Client sync calls by outcome.", ["tenant_id", "outcome"], registry=r
        )
        self.reports_pending = Gauge(
            "gmp_reports_pending",
            "Events waiting to be acknowledged by an application.",
            registry=r,
        )
        self.oldest_unreported_age = Gauge(
            "gmp_oldest_unreported_event_age_seconds",
            "Age of the oldest event not yet acknowledged (0 when none).",
            registry=r,
        )
        self.attachment_cache = Counter(
            "gmp_attachment_cache",
            "Attachment cache look-ups: memory_hit, disk_hit or miss.",
            ["result"],
            registry=r,
        )
        self.attachment_fetches = Counter(
            "gmp_attachment_fetches",
            "Attachments fetched from their source, by fetch mode and outcome.",
            ["mode", "outcome"],
            registry=r,
        )
        self.large_attachments = Counter(
            "gmp_large_attachments",
            "Attachments above a tenant's large-file limit, by the action taken.",
            ["action"],
            registry=r,
        )
        self.loop_restarts = Counter(
            "gmp_loop_restarts",
            "Background loops restarted after a crash.",
            ["loop"],
            registry=r,
        )
        self.bounces = Counter(
            "gmp_bounces", "Failed recipients read from bounces, by type.", ["type"], registry=r
        )
        self.bounces_unmatched = Counter(
            "gmp_bounces_unmatched", "Failed recipients no message matched.", registry=r
        )
        self.pec_receipts = Counter(
            "gmp_pec_receipts", "PEC receipts read, by the event they gave.", ["event"], registry=r
        )
        self.mailbox_poll_errors = Counter(
            "gmp_mailbox_poll_errors", "Failed mailbox sessions.", ["mailbox"], registry=r
        )
        self.mailbox_backlog = Gauge(
            "gmp_mailbox_backlog",
            "Mail waiting to be handled in a mailbox at its last poll.",
            ["mailbox"],
            registry=r,
        )
        self.mailbox_last_poll = Gauge(
            "gmp_mailbox_last_poll_timestamp_seconds",
            "When a mailbox was last polled successfully (lag: time() minus this).",
            ["mailbox"],
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def mirror_outbox(self, outbox: Outbox, now: float) -> None:
        """Events not yet acknowledged: read from the database, which every process
        writes, so each process's gauges show the whole instance."""
        unreported, oldest = await outbox.unreported_stats()
        self.reports_pending.set(unreported)
        self.oldest_unreported_age.set(_age(now, oldest))

    async def mirror_database(self, store: Store, now: float) -> None:
        """Every gauge that mirrors the database; called just before rendering,
        because collection is synchronous and the store is not."""
        self.pending.set(active_total(await store.messages.count_by_status()))
        self.oldest_due_age.set(_age(now, await store.queue.oldest_due_ts(now)))
        await self.mirror_outbox(store.outbox, now)


def _age(now: float, since: float | None) -> float:
    """Gauges read 0 when there is nothing to be old, and never go negative."""
    return 0.0 if since is None else max(0.0, now - since)
