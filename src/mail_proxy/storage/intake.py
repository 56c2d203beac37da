"""Enqueue: new messages in, unsent ones replaced, sent ones refused.

A message is identified by (tenant_id, id). A batch goes in with one multi-row
``INSERT ... ON CONFLICT DO NOTHING RETURNING``: what it returns was queued; only the
keys that were taken are then looked up, to be replaced (not yet sent, not leased),
or rejected (already sent, or being sent right now).

The lookup locks the rows it reads (``FOR UPDATE`` on PostgreSQL; on SQLite the
transaction holds the database's write lock from its start): a dispatcher claiming
one of them either leased it before, and the resubmission is rejected as being sent,
or skips it until the replacement is committed. Checking an unlocked snapshot once
let a claim slip in between check and replace on PostgreSQL, and the lease it took
was wiped: the message went out twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.domain.models import (
    ClaimedMessage,
    EnqueueOutcome,
    EnqueueResult,
    LeaseRequest,
    NewMessage,
    Status,
)
from mail_proxy.ports import Intake
from mail_proxy.storage import records
from mail_proxy.storage.cipher import Cipher
from mail_proxy.storage.database import Database
from mail_proxy.storage.tables import ACTIVE_STATUSES, messages, suspensions, tenants

MSG = messages.c
SUSP = suspensions.c
TEN = tenants.c
ALREADY_SENT = "id already sent"
BEING_SENT = "message is being sent"

# Executed with many parameter sets; their keys (account_id, priority, payload, ...)
# become further SET columns, as SQLAlchemy does for executemany UPDATEs.
_REPLACE = (
    sa.update(messages)
    .where(MSG.pk == sa.bindparam("b_pk"))
    .values(
        status="pending",
        attempts=0,
        smtp_ts=None,
        error_ts=None,
        error=None,
        reported_ts=None,
        lease_token=None,
        lease_expires=None,
    )
)


NEW_COLUMNS = (
    "tenant_id", "id", "account_id", "priority", "status", "payload", "batch_code",
    "deferred_ts", "attempts", "created_at", "updated_at", "rfc_message_id",
)  # fmt: skip


class SqlIntake(Intake):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def enqueue(self, messages: Sequence[NewMessage], now: float) -> list[EnqueueResult]:
        if not messages:
            return []

        async def op(conn: AsyncConnection) -> list[EnqueueResult]:
            results = await self._store_batch(conn, messages, now)
            if _queued_keys(messages, results):
                await self._db.dialect.announce_work(conn)
            return results

        return await self._db.write(op, "enqueue", writes_first=True)

    async def enqueue_leased(
        self, messages: Sequence[NewMessage], now: float, lease: LeaseRequest
    ) -> tuple[list[EnqueueResult], list[ClaimedMessage]]:
        if not messages:
            return [], []

        async def op(conn: AsyncConnection) -> tuple[list[EnqueueResult], list[ClaimedMessage]]:
            results = await self._store_batch(conn, messages, now)
            keys = _queued_keys(messages, results)
            rows: Sequence[Any] = []
            if keys:
                rows = (await conn.execute(_lease_due(self._db, keys, lease, now))).all()
            claimed = [
                ClaimedMessage(
                    records.message_record(row, self._db.cipher), lease.token, lease.expires
                )
                for row in rows
            ]
            if len(claimed) < len(keys):
                await self._db.dialect.announce_work(conn)
            claimed.sort(key=lambda c: (c.record.priority, c.record.pk))
            return results, claimed

        return await self._db.write(op, "enqueue", writes_first=True)

    async def _store_batch(
        self, conn: AsyncConnection, messages: Sequence[NewMessage], now: float
    ) -> list[EnqueueResult]:
        inserted = await self._db.dialect.insert_new(self._db, conn, messages, now)
        results: dict[int, EnqueueResult] = {}
        seen: set[tuple[str, str]] = set()
        for index, message in enumerate(messages):
            key = (message.tenant_id, message.id)
            if key in inserted and key not in seen:
                results[index] = EnqueueResult(message.id, EnqueueOutcome.QUEUED)
            seen.add(key)
        others = [(i, m) for i, m in enumerate(messages) if i not in results]
        if others:
            existing = await self._existing(conn, [m for _, m in others])
            decided, replaces = _plan_replacements(others, existing, now, self._db.cipher)
            results.update(decided)
            if replaces:
                await conn.execute(_REPLACE, replaces)
        return [results[i] for i in range(len(messages))]

    async def _existing(
        self, conn: AsyncConnection, batch: Sequence[NewMessage]
    ) -> dict[tuple[str, str], Any]:
        """Rows already stored under the batch's (tenant_id, id) keys, locked until the
        transaction ends; in pk order, so overlapping batches of one tenant take their
        locks in the same order (a deadlock would still only cost a retry)."""
        by_tenant: dict[str, set[str]] = {}
        for message in batch:
            by_tenant.setdefault(message.tenant_id, set()).add(message.id)
        found: dict[tuple[str, str], Any] = {}
        for tenant_id, ids in by_tenant.items():
            query = self._db.for_update(
                sa.select(MSG.pk, MSG.id, MSG.status, MSG.lease_expires)
                .where(MSG.tenant_id == tenant_id, self._db.in_(MSG.id, ids))
                .order_by(MSG.pk)
            )
            for row in await conn.execute(query):
                found[(tenant_id, row.id)] = row
        return found


def _queued_keys(
    messages: Sequence[NewMessage], results: Sequence[EnqueueResult]
) -> set[tuple[str, str]]:
    """The (tenant_id, id) of the messages this batch made due or pending."""
    taken = (EnqueueOutcome.QUEUED, EnqueueOutcome.REPLACED)
    return {
        (message.tenant_id, message.id)
        for message, result in zip(messages, results, strict=True)
        if result.outcome in taken
    }


def _lease_due(
    db: Database, keys: set[tuple[str, str]], lease: LeaseRequest, now: float
) -> sa.Update:
    """Lease the just-queued messages a claim could take now: the claim's rules
    (``claiming._DUE``) for rows named by key instead of found by scanning."""
    suspended = sa.exists().where(
        SUSP.tenant_id == MSG.tenant_id,
        sa.or_(SUSP.batch_code == "*", SUSP.batch_code == MSG.batch_code),
    )
    inactive = sa.exists().where(TEN.id == MSG.tenant_id, sa.not_(TEN.active))
    return (
        sa.update(messages)
        .where(
            db.pairs_in(MSG.tenant_id, MSG.id, sorted(keys)),
            MSG.status.in_(ACTIVE_STATUSES),
            sa.or_(MSG.deferred_ts.is_(None), MSG.deferred_ts <= now),
            sa.or_(MSG.lease_expires.is_(None), MSG.lease_expires <= now),
            sa.not_(suspended),
            sa.not_(inactive),
        )
        .values(lease_token=lease.token, lease_expires=lease.expires)
        .returning(*messages.columns)
    )


def _plan_replacements(
    items: list[tuple[int, NewMessage]],
    existing: dict[tuple[str, str], Any],
    now: float,
    cipher: Cipher,
) -> tuple[dict[int, EnqueueResult], list[dict[str, Any]]]:
    """Messages whose key was taken: replaced unless sent or being sent; a later repeat
    within the batch wins."""
    results: dict[int, EnqueueResult] = {}
    replaces: dict[tuple[str, str], dict[str, Any]] = {}
    for index, message in items:
        row = existing[(message.tenant_id, message.id)]
        if row.status == Status.SENT.value:
            results[index] = EnqueueResult(message.id, EnqueueOutcome.REJECTED, ALREADY_SENT)
        elif row.lease_expires is not None and row.lease_expires > now:
            results[index] = EnqueueResult(message.id, EnqueueOutcome.REJECTED, BEING_SENT)
        else:
            key = (message.tenant_id, message.id)
            replaces[key] = _row_values(message, now, cipher) | {"b_pk": row.pk}
            results[index] = EnqueueResult(message.id, EnqueueOutcome.REPLACED)
    return results, list(replaces.values())


def _row_values(message: NewMessage, now: float, cipher: Cipher) -> dict[str, Any]:
    return {
        "account_id": message.account_id,
        "priority": int(message.priority),
        "payload": records.payload_json(message.payload, cipher),
        "batch_code": message.batch_code,
        "deferred_ts": message.deferred_ts,
        "rfc_message_id": message.rfc_message_id,
        "updated_at": now,
    }


def new_row(message: NewMessage, now: float, cipher: Cipher) -> tuple[Any, ...]:
    """Values of ``NEW_COLUMNS`` for a message queued now (one type per column)."""
    return (
        message.tenant_id,
        message.id,
        message.account_id,
        int(message.priority),
        "pending",
        records.payload_json(message.payload, cipher),
        message.batch_code,
        None if message.deferred_ts is None else float(message.deferred_ts),
        0,
        now,
        now,
        message.rfc_message_id,
    )
