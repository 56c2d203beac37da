"""Shared send log for rate limits and instance-wide settings.

The send log lives in the database so that every proxy process sharing it shares
the limits: ``reserve_send`` reads the sliding windows of the account (and of the
whole tenant, when the tenant has limits) and records the send in one transaction
serialised per account (and per tenant). Rows older than the longest window
(a day) are purged now and then from inside that same call.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.domain import rate_limit
from mail_proxy.domain.models import RateLimits, SendWindow
from mail_proxy.domain.rate_limit import DAY, HOUR, MINUTE, Allowed, RateDecision
from mail_proxy.storage.sql_base import SqlStore
from mail_proxy.storage.tables import instance_settings, instance_state, send_log

L = send_log.c
I = instance_settings.c  # noqa: E741 - the table's column namespace, as for the others
S = instance_state.c
PURGE_EVERY_SECONDS = 600.0
#: The lock name of a tenant's whole send log (no account id is empty).
TENANT_WIDE = ""
_INSTANCE_ROW = 1


class AdministrationOps(SqlStore):
    """Store methods over ``send_log`` and ``instance_settings``."""

    _next_purge_ts: float = 0.0

    async def reserve_send(
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
                await self._lock_send_log(conn, tenant_id, TENANT_WIDE)
                window = await _window(conn, tenant_id, None, now)
                decision = rate_limit.check(window, whole, now)
            if not limits.unlimited:
                await self._lock_send_log(conn, tenant_id, account_id)
                window = await _window(conn, tenant_id, account_id, now)
                decision = rate_limit.stricter(decision, rate_limit.check(window, limits, now))
            if isinstance(decision, Allowed):
                await conn.execute(
                    sa.insert(send_log).values(tenant_id=tenant_id, account_id=account_id, ts=now)
                )
            if now >= self._next_purge_ts:
                await conn.execute(sa.delete(send_log).where(L.ts <= now - DAY))
            return decision

        decision = await self._write(op, "reserve_send")
        if now >= self._next_purge_ts:
            self._next_purge_ts = now + PURGE_EVERY_SECONDS
        return decision

    async def get_instance_settings(self) -> dict[str, Any]:
        return await self._read(self._settings, "get_instance_settings")

    async def _settings(self, conn: AsyncConnection) -> dict[str, Any]:
        rows = await conn.execute(sa.select(I.key, I.value).order_by(I.key))
        return {key: json.loads(self._cipher.open(value) or "null") for key, value in rows}

    async def update_instance_settings(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Keys given are set; a key given as ``None`` is removed.

        Values are stored encrypted whole: they hold the bounce mailbox password, and
        sealing every value spares a list of which keys are secret.
        """
        kept = [
            {"key": k, "value": self._cipher.seal(json.dumps(v))}
            for k, v in changes.items()
            if v is not None
        ]
        dropped = [k for k, v in changes.items() if v is None]
        upsert = self._insert(instance_settings)
        upsert = upsert.on_conflict_do_update(
            index_elements=[I.key], set_={"value": upsert.excluded.value}
        )

        async def op(conn: AsyncConnection) -> dict[str, Any]:
            if kept:
                await conn.execute(upsert, kept)
            if dropped:
                await conn.execute(sa.delete(instance_settings).where(I.key.in_(dropped)))
            return await self._settings(conn)

        return await self._write(op, "update_instance_settings")

    async def set_instance_active(self, active: bool, *, if_unset: bool = False) -> None:
        upsert = self._insert(instance_state).values(id=_INSTANCE_ROW, active=active)
        if if_unset:
            upsert = upsert.on_conflict_do_nothing(index_elements=[S.id])
        else:
            upsert = upsert.on_conflict_do_update(index_elements=[S.id], set_={"active": active})

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(upsert)

        await self._write(op, "set_instance_active")

    async def instance_active(self) -> bool:
        async def op(conn: AsyncConnection) -> bool:
            stored = await conn.scalar(sa.select(S.active).where(S.id == _INSTANCE_ROW))
            return True if stored is None else bool(stored)

        return await self._read(op, "instance_active")


async def _window(
    conn: AsyncConnection, tenant_id: str, account_id: str | None, now: float
) -> SendWindow:
    """Counts and oldest send time of the last minute, hour and day: of one account,
    or (``account_id`` None) of all the tenant's accounts."""

    def within(span: float) -> sa.ColumnElement[bool]:
        return L.ts > now - span

    query = sa.select(
        sa.func.count(sa.case((within(MINUTE), 1))),
        sa.func.min(sa.case((within(MINUTE), L.ts))),
        sa.func.count(sa.case((within(HOUR), 1))),
        sa.func.min(sa.case((within(HOUR), L.ts))),
        sa.func.count(),
        sa.func.min(L.ts),
    ).where(L.tenant_id == tenant_id, within(DAY))
    if account_id is not None:
        query = query.where(L.account_id == account_id)
    minute, oldest_minute, hour, oldest_hour, day, oldest_day = (await conn.execute(query)).one()
    return SendWindow(
        minute=int(minute),
        hour=int(hour),
        day=int(day),
        oldest_minute=oldest_minute,
        oldest_hour=oldest_hour,
        oldest_day=oldest_day,
    )
