"""The contract tests' driver: builders and shortcuts over one store.

Test modules are imported with ``--import-mode=importlib``, so shared helpers come
as a fixture (``q``) rather than an importable module.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from mail_proxy.domain.models import ClaimedMessage, NewMessage, Outcome, Sent
from mail_proxy.ports import Store
from mail_proxy.storage.store import SqlStore


class Queue:
    """A store plus a fixed clock: ``q.now`` and leases of ``q.lease`` seconds."""

    now = 1_700_000_000.0
    lease = 60.0

    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def message(
        id_: str,
        *,
        tenant: str = "acme",
        account: str = "smtp1",
        priority: int = 2,
        deferred_ts: int | None = None,
        batch_code: str | None = None,
        subject: str = "hello",
    ) -> NewMessage:
        return NewMessage(
            tenant_id=tenant,
            id=id_,
            account_id=account,
            priority=priority,
            payload={"from": "a@example.com", "to": ["b@example.com"], "subject": subject},
            deferred_ts=deferred_ts,
            batch_code=batch_code,
        )

    async def claim(self, now: float | None = None, **kwargs: Any) -> list[ClaimedMessage]:
        params: dict[str, Any] = {"lease_seconds": self.lease, "limit": 100, "per_account": 100}
        params.update(kwargs)
        return await self.store.queue.claim(now=self.now if now is None else now, **params)

    async def claim_ids(self, now: float | None = None, **kwargs: Any) -> list[str]:
        return [c.record.id for c in await self.claim(now, **kwargs)]

    async def send_all(self, claimed: list[ClaimedMessage], ts: float | None = None) -> list[bool]:
        outcome: Outcome = Sent(ts=self.now if ts is None else ts)
        return await self.store.queue.finish_many(
            [(c.record.pk, c.lease_token, outcome) for c in claimed]
        )

    async def raw_rows(self, sql: str) -> list[Any]:
        """Rows exactly as stored, bypassing the store's decryption."""
        assert isinstance(self.store, SqlStore)
        async with self.store.writer_engine.connect() as conn:
            return list((await conn.execute(sa.text(sql))).all())


@pytest.fixture
def q(store: Store) -> Queue:
    """The parametrised ``store`` (SQLite, then PostgreSQL) behind the test driver."""
    return Queue(store)
