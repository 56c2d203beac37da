"""What the mailbox pollers record: bounces, PEC receipts, and mail handled.

A batch of read mails is one transaction (one commit for a fetch of 50, not 50);
each mail starts by inserting its key into ``mailbox_processed``: when the key is
there already (a restart re-reading the
mailbox, or another process that held the lease before) nothing else happens, so
every mail is handled exactly once whatever fails between reading and flagging it.

A bounce is matched to its message by, in order: the ``X-Genro-Mail-ID`` returned
with it (with the original Message-ID to tell tenants apart when both are there),
the stored RFC Message-ID, then the failed recipient among the messages sent within
``match_window``. A matched bounce appends a ``bounce`` event (reported like any
other) and may suppress the address for the tenant; an unmatched one is kept with
``tenant_id`` NULL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.domain.bounces import BounceType, FailedRecipient
from mail_proxy.domain.models import EventType
from mail_proxy.domain.pec import PecReceipt
from mail_proxy.domain.returned_mail import Bounce, Returned
from mail_proxy.domain.suppression import suppression_reason
from mail_proxy.domain.text import storable_json
from mail_proxy.ports.returned_mail import BounceRecord, BounceRules, Mailboxes, Recorded
from mail_proxy.storage.database import Database
from mail_proxy.storage.leases import release_row_lease, take_row_lease
from mail_proxy.storage.records import dump_json
from mail_proxy.storage.tables import (
    accounts,
    bounces,
    mailbox_leases,
    mailbox_processed,
    message_events,
    messages,
    suppressions,
)

MSG = messages.c
EVT = message_events.c
BNC = bounces.c
SUP = suppressions.c
_LEASE = ("lease_holder", "lease_until")
_PEC_SETTLED = (EventType.PEC_ACCEPTANCE, EventType.PEC_ERROR, EventType.PEC_TIMEOUT)
#: How far past the timeout a send is still looked at: older sends were settled
#: (or the proxy was down for a week, and a timeout no longer helps anyone).
PEC_TIMEOUT_HORIZON = 7 * 86400.0

Match = tuple[int, str, str]  # (pk, tenant_id, id)


class SqlMailboxes(Mailboxes):
    """Inserts that may conflict say whether they inserted by what they RETURN: the
    PostgreSQL driver reports no row count for ``ON CONFLICT DO NOTHING``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def take_lease(self, mailbox: str, holder: str, now: float, until: float) -> bool:
        row = mailbox_leases.c.mailbox == mailbox
        create = self._db.insert(mailbox_leases).values(mailbox=mailbox).on_conflict_do_nothing()

        async def op(conn: AsyncConnection) -> bool:
            await conn.execute(create)
            return await take_row_lease(conn, mailbox_leases, row, _LEASE, holder, now, until)

        return await self._db.write(op, "take_mailbox_lease", writes_first=True)

    async def release_lease(self, mailbox: str, holder: str) -> None:
        row = mailbox_leases.c.mailbox == mailbox

        async def op(conn: AsyncConnection) -> None:
            await release_row_lease(conn, mailbox_leases, row, _LEASE, holder)

        await self._db.write(op, "release_mailbox_lease", writes_first=True)

    async def handled(self, mailbox: str, keys: Sequence[str]) -> set[str]:
        if not keys:
            return set()
        done = mailbox_processed.c
        query = sa.select(done.mail_key).where(
            done.mailbox == mailbox, self._db.in_(done.mail_key, keys)
        )

        async def op(conn: AsyncConnection) -> set[str]:
            return set((await conn.execute(query)).scalars())

        return await self._db.read(op, "mailbox_handled")

    async def record(
        self,
        mailbox: str,
        mails: Sequence[tuple[str, Returned]],
        *,
        tenant_id: str | None,
        rules: BounceRules,
        now: float,
    ) -> list[Recorded]:
        async def op(conn: AsyncConnection) -> list[Recorded]:
            done = []
            for key, found in mails:
                if not await self._first_time(conn, mailbox, key, now):
                    done.append(Recorded(new=False))
                elif isinstance(found, Bounce):
                    done.append(
                        Recorded(True, await self._bounce(conn, mailbox, found, rules, now))
                    )
                elif isinstance(found, PecReceipt) and tenant_id is not None:
                    matched = await _receipt(conn, found, tenant_id, now)
                    done.append(Recorded(True, receipt_matched=matched))
                else:
                    done.append(Recorded(new=True))
            return done

        return await self._db.write(op, "record_returned_mail", writes_first=True)

    async def _bounce(
        self, conn: AsyncConnection, mailbox: str, bounce: Bounce, rules: BounceRules, now: float
    ) -> tuple[BounceRecord, ...]:
        by_ids, how_ids = await _match_ids(conn, bounce)
        records = []
        for failed in bounce.recipients:
            match, how = by_ids, how_ids
            if match is None:
                match = await _match_recipient(conn, failed.address, rules, now)
                how = "recipient"
            records.append(await _record(conn, self._db, mailbox, failed, match, how, rules, now))
        return tuple(records)

    async def pec_timeouts(self, now: float, waited: float) -> int:
        settled = sa.exists().where(
            EVT.message_pk == MSG.pk, EVT.type.in_([e.value for e in _PEC_SETTLED])
        )
        pec_account = sa.exists().where(
            accounts.c.tenant_id == MSG.tenant_id,
            accounts.c.id == MSG.account_id,
            accounts.c.is_pec_account,
        )
        due = sa.select(MSG.pk, MSG.tenant_id, MSG.id).where(
            MSG.status == "sent",
            MSG.smtp_ts <= now - waited,
            MSG.smtp_ts > now - waited - PEC_TIMEOUT_HORIZON,
            pec_account,
            ~settled,
        )
        details = {"timeout_seconds": waited}

        async def op(conn: AsyncConnection) -> int:
            rows = (await conn.execute(self._db.for_update(due.limit(1000)))).all()
            for row in rows:
                await _append_event(conn, tuple(row), EventType.PEC_TIMEOUT, None, details, now)
            return len(rows)

        return await self._db.write(op, "pec_timeouts")

    async def _first_time(self, conn: AsyncConnection, mailbox: str, key: str, now: float) -> bool:
        statement = (
            self._db.insert(mailbox_processed)
            .values(mailbox=mailbox, mail_key=key, processed_at=now)
            .on_conflict_do_nothing()
            .returning(mailbox_processed.c.mail_key)
        )
        return (await conn.execute(statement)).first() is not None


async def _receipt(conn: AsyncConnection, receipt: PecReceipt, tenant_id: str, now: float) -> bool:
    """Append the receipt's event to the tenant's message it references, if found."""
    if receipt.referenced_id is None:
        return False
    query = sa.select(MSG.pk, MSG.tenant_id, MSG.id).where(
        MSG.rfc_message_id == receipt.referenced_id, MSG.tenant_id == tenant_id
    )
    found = (await conn.execute(query.limit(1))).first()
    if found is None:
        return False
    await _append_event(conn, tuple(found), receipt.event, None, receipt.details, now)
    return True


async def _match_ids(conn: AsyncConnection, bounce: Bounce) -> tuple[Match | None, str]:
    """By X-Genro-Mail-ID (narrowed by Message-ID when several tenants used the id),
    else by the stored Message-ID."""
    select = sa.select(MSG.pk, MSG.tenant_id, MSG.id)
    if bounce.mail_id is not None:
        query = select.where(MSG.id == bounce.mail_id)
        if bounce.original_message_id is not None:
            query = query.where(MSG.rfc_message_id == bounce.original_message_id)
        rows = (await conn.execute(query.limit(2))).all()
        if len(rows) == 1:
            return (rows[0].pk, rows[0].tenant_id, rows[0].id), "mail_id"
    if bounce.original_message_id is not None:
        query = select.where(MSG.rfc_message_id == bounce.original_message_id)
        rows = (await conn.execute(query.limit(2))).all()
        if len(rows) == 1:
            return (rows[0].pk, rows[0].tenant_id, rows[0].id), "message_id"
    return None, "none"


async def _match_recipient(
    conn: AsyncConnection, address: str, rules: BounceRules, now: float
) -> Match | None:
    """The latest message sent to ``address`` within the window: the payload holds the
    recipients as JSON strings, so the quoted address is what is looked for."""
    needle = json.dumps(address)[1:-1].replace("%", "\\%").replace("_", "\\_")
    query = (
        sa.select(MSG.pk, MSG.tenant_id, MSG.id)
        .where(
            MSG.status == "sent",
            MSG.updated_at >= now - rules.match_window,
            sa.func.lower(MSG.payload).like(f'%"{needle}%', escape="\\"),
        )
        .order_by(MSG.pk.desc())
        .limit(1)
    )
    row = (await conn.execute(query)).first()
    return None if row is None else (row.pk, row.tenant_id, row.id)


async def _record(
    conn: AsyncConnection,
    db: Database,
    mailbox: str,
    failed: FailedRecipient,
    match: Match | None,
    how: str,
    rules: BounceRules,
    now: float,
) -> BounceRecord:
    tenant_id, message_id = (None, None) if match is None else (match[1], match[2])
    values: dict[str, Any] = {
        "ts": now,
        "mailbox": mailbox,
        "tenant_id": tenant_id,
        "message_id": message_id,
        "message_pk": None if match is None else match[0],
        "matched_by": how if match is not None else "none",
        "recipient": failed.address,
        "bounce_type": failed.bounce_type.value,
        "bounce_code": failed.code,
        "bounce_reason": failed.reason,
    }
    bounce_id = (
        await conn.execute(sa.insert(bounces).values(values).returning(BNC.id))
    ).scalar_one()
    suppressed = False
    if match is not None:
        details = {
            "bounce_type": failed.bounce_type.value,
            "bounce_code": failed.code,
            "bounce_reason": failed.reason,
            "recipient": failed.address,
        }
        await _append_event(conn, match, EventType.BOUNCE, failed.reason, details, now)
        suppressed = await _suppress(conn, db, match[1], failed, bounce_id, rules, now)
    return BounceRecord(
        id=bounce_id,
        ts=int(now),
        mailbox=mailbox,
        tenant_id=tenant_id,
        message_id=message_id,
        matched_by=values["matched_by"],
        recipient=failed.address,
        bounce_type=failed.bounce_type.value,
        bounce_code=failed.code,
        bounce_reason=failed.reason,
        suppressed=suppressed,
    )


async def _suppress(
    conn: AsyncConnection,
    db: Database,
    tenant_id: str,
    failed: FailedRecipient,
    bounce_id: int,
    rules: BounceRules,
    now: float,
) -> bool:
    soft = 0
    if failed.bounce_type is BounceType.SOFT:
        count = sa.select(sa.func.count()).where(
            BNC.tenant_id == tenant_id,
            BNC.recipient == failed.address,
            BNC.bounce_type == BounceType.SOFT.value,
            BNC.ts >= now - rules.soft.window,
        )
        soft = int((await conn.execute(count)).scalar_one())
    reason = suppression_reason(failed, soft, rules.soft)
    if reason is None:
        return False
    entry = {
        "tenant_id": tenant_id,
        "address": failed.address,
        "reason": reason,
        "bounce_id": bounce_id,
        "created_at": now,
    }
    statement = (
        db.insert(suppressions).values(entry).on_conflict_do_nothing().returning(SUP.address)
    )
    return (await conn.execute(statement)).first() is not None


async def _append_event(
    conn: AsyncConnection,
    match: Match | tuple[Any, ...],
    kind: EventType,
    description: str | None,
    details: dict[str, Any],
    now: float,
) -> None:
    """The event, and the message made unreported again so that clean-up keeps it
    until the tenant has acknowledged this event too."""
    pk, tenant_id, message_id = match
    event = {
        "message_pk": pk,
        "tenant_id": tenant_id,
        "message_id": message_id,
        "type": kind.value,
        "ts": now,
        "description": description,
        "details": dump_json(storable_json(details)),
    }
    await conn.execute(sa.insert(message_events).values(event))
    await conn.execute(sa.update(messages).where(MSG.pk == pk).values(reported_ts=None))
