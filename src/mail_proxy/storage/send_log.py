"""The shared send log behind rate limits.

The send log lives in the database so that every proxy process sharing it shares
the limits: ``reserve_send`` reads the sliding windows of the account (and of the
whole tenant, when the tenant has limits) and records the send in one transaction
serialised per account (and per tenant). Rows older than the longest window
(a day) are purged now and then from inside that same call.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.domain import rate_limit
from mail_proxy.domain.models import RateLimits, SendWindow
from mail_proxy.domain.rate_limit import DAY, HOUR, MINUTE, Allowed, RateDecision
from mail_proxy.ports import SendLog
from mail_proxy.storage.database import Database
from mail_proxy.storage.tables import send_log

SENDS = send_log.c
PURGE_EVERY_SECONDS = 600.0
#: The lock name of a tenant's whole send log (no account id is empty).
TENANT_WIDE = ""


class SqlSendLog(SendLog):
    def __init__(self, db: Database) -> None:
        self._db = db
        self._next_purge_ts = 0.0

    async def reserve(
        self,
        tenant_id: str,
        account_id: str,
        limits: RateLimits,
        now: float,
        tenant_limits: RateLimits | None = None,
    ) -> RateDecision:
        whole = tenant_limits or RateLimits()
        if limits.unlimited and whole.unlimited:
            return Allowed()

        async def op(conn: AsyncConnection) -> RateDecision:
            decision: RateDecision = Allowed()
            if not whole.unlimited:  # the tenant first: one lock order, no deadlock
                await self._db.dialect.lock_send_log(conn, tenant_id, TENANT_WIDE)
                window = await _window(conn, tenant_id, None, now)
                decision = rate_limit.check(window, whole, now)
            if not limits.unlimited:
                await self._db.dialect.lock_send_log(conn, tenant_id, account_id)
                window = await _window(conn, tenant_id, account_id, now)
                decision = rate_limit.stricter(decision, rate_limit.check(window, limits, now))
            if isinstance(decision, Allowed):
                await conn.execute(
                    sa.insert(send_log).values(tenant_id=tenant_id, account_id=account_id, ts=now)
                )
            if now >= self._next_purge_ts:
                await conn.execute(sa.delete(send_log).where(SENDS.ts <= now - DAY))
            return decision

        decision = await self._db.write(op, "reserve_send")
        if now >= self._next_purge_ts:
            self._next_purge_ts = now + PURGE_EVERY_SECONDS
        return decision


async def _window(
    conn: AsyncConnection, tenant_id: str, account_id: str | None, now: float
) -> SendWindow:
    """Counts and oldest send time of the last minute, hour and day: of one account,
    or (``account_id`` None) of all the tenant's accounts."""

    def within(span: float) -> sa.ColumnElement[bool]:
        return SENDS.ts > now - span

    query = sa.select(
        sa.func.count(sa.case((within(MINUTE), 1))),
        sa.func.min(sa.case((within(MINUTE), SENDS.ts))),
        sa.func.count(sa.case((within(HOUR), 1))),
        sa.func.min(sa.case((within(HOUR), SENDS.ts))),
        sa.func.count(),
        sa.func.min(SENDS.ts),
    ).where(SENDS.tenant_id == tenant_id, within(DAY))
    if account_id is not None:
        query = query.where(SENDS.account_id == account_id)
    minute, oldest_minute, hour, oldest_hour, day, oldest_day = (await conn.execute(query)).one()
    return SendWindow(
        minute=int(minute),
        hour=int(hour),
        day=int(day),
        oldest_minute=oldest_minute,
        oldest_hour=oldest_hour,
        oldest_day=oldest_day,
    )
