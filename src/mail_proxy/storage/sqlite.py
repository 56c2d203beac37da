"""The SQLite backend: one file, WAL mode, one writer at a time.

SQLite allows a single writer per database file. Inside a process, writes queue on
an ``asyncio.Lock`` in front of a single writer connection; across processes,
``BEGIN IMMEDIATE`` takes the write lock at the start of every write transaction and
``busy_timeout`` makes other processes wait for it. Because claims are serialised
this way, a claim is a plain UPDATE ... RETURNING: no two claimers can see the same
free row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.storage.accounts import AccountOps
from mail_proxy.storage.administration import AdministrationOps
from mail_proxy.storage.audit import AuditOps
from mail_proxy.storage.cipher import Cipher
from mail_proxy.storage.claiming import SQLITE_CLAIM
from mail_proxy.storage.engines import SQLITE_BUSY_TIMEOUT_MS, Target, sqlite_engine
from mail_proxy.storage.intake import IntakeOps
from mail_proxy.storage.outbox import EventOps
from mail_proxy.storage.queue import QueueOps
from mail_proxy.storage.tenancy import TenantOps


class SqliteStore(
    IntakeOps, QueueOps, EventOps, TenantOps, AccountOps, AdministrationOps, AuditOps
):
    """The Store on a SQLite file."""

    @classmethod
    def connect(
        cls, target: Target, cipher: Cipher, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS
    ) -> SqliteStore:
        writer = sqlite_engine(target, writer=True, busy_timeout_ms=busy_timeout_ms)
        reader = sqlite_engine(target, writer=False, busy_timeout_ms=busy_timeout_ms)
        return cls(target, cipher, writer, reader)

    async def _claim_rows(self, conn: AsyncConnection, params: dict[str, Any]) -> Sequence[Any]:
        return (await conn.execute(SQLITE_CLAIM, params)).all()

    async def _lock_send_log(self, conn: AsyncConnection, tenant_id: str, account_id: str) -> None:
        """Nothing to do: BEGIN IMMEDIATE already made this transaction the only writer."""
