"""PostgreSQL going away under a running store: the next call retries on a fresh
connection instead of failing, and a batch is stored whole."""

from __future__ import annotations

import psycopg
import pytest

from mail_proxy.domain.models import NewMessage
from mail_proxy.ports import Store

pytestmark = pytest.mark.postgres

NOW = 1_700_000_000.0


def _drop_other_connections(dsn: str) -> int:
    """What a PostgreSQL restart does to a client: every other session is cut."""
    with psycopg.connect(dsn.split("?")[0], autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"
        ).fetchall()
    return len(rows)


async def test_store_survives_dropped_connections(pg_store: Store, pg_dsn: str) -> None:
    """Connections killed between two calls: the store reconnects and the whole batch
    is enqueued, none of it twice."""
    batch = [NewMessage("acme", f"m{i}", "smtp1", 2, {"subject": "s"}) for i in range(50)]
    await pg_store.intake.enqueue(batch[:1], NOW)
    assert _drop_other_connections(pg_dsn) >= 1
    results = await pg_store.intake.enqueue(batch, NOW)
    assert [r.id for r in results] == [m.id for m in batch]
    assert sum((await pg_store.messages.count_by_status()).values()) == 50
