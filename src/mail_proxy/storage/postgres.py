"""The PostgreSQL backend: a connection pool shared by any number of processes.

Claims use ``FOR UPDATE SKIP LOCKED`` so concurrent dispatchers, in one process or
many, lease disjoint sets of messages without waiting on each other. Rate-limit
checks of one account are serialised with a transaction-scoped advisory lock keyed
on (tenant, account), which covers sends that have no row to lock yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.storage.accounts import AccountOps
from mail_proxy.storage.administration import AdministrationOps
from mail_proxy.storage.cipher import Cipher
from mail_proxy.storage.claiming import POSTGRES_CLAIM
from mail_proxy.storage.engines import Target, postgres_engine
from mail_proxy.storage.outbox import EventOps
from mail_proxy.storage.queue import QueueOps
from mail_proxy.storage.tenancy import TenantOps

_ACCOUNT_LOCK = sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))")


class PostgresStore(QueueOps, EventOps, TenantOps, AccountOps, AdministrationOps):
    """The Store on a PostgreSQL database (optionally confined to one schema)."""

    @classmethod
    def connect(cls, target: Target, cipher: Cipher, pool_size: int = 5) -> PostgresStore:
        engine = postgres_engine(target, pool_size=pool_size)
        return cls(target, cipher, engine, engine)

    async def _claim_rows(self, conn: AsyncConnection, params: dict[str, Any]) -> Sequence[Any]:
        return (await conn.execute(POSTGRES_CLAIM, params)).all()

    async def _lock_send_log(self, conn: AsyncConnection, tenant_id: str, account_id: str) -> None:
        await conn.execute(_ACCOUNT_LOCK, {"key": f"send_log/{tenant_id}/{account_id}"})
