"""Statements whose text stays put: what psycopg prepares on PostgreSQL.

PostgreSQL connections prepare every statement on its first run (engines.py), so
a statement spelling a list inline would be prepared anew for each length of the
list. ``Database.in_`` and ``Database.pairs_in`` bind arrays there instead; these
tests hold both to the meaning of ``IN`` on both backends and to one text on
PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from mail_proxy.storage.database import Database
from mail_proxy.storage.engines import parse_target
from mail_proxy.storage.store import SqlStore
from mail_proxy.storage.tables import messages

MSG = messages.c


def _db(store: Any) -> Database:
    assert isinstance(store, SqlStore)
    return store._db


async def _ids(q: Any, condition: sa.ColumnElement[bool]) -> list[str]:
    query = sa.select(MSG.tenant_id, MSG.id).where(condition).order_by(MSG.pk)
    async with q.store.writer_engine.connect() as conn:
        return [f"{tenant}/{id_}" for tenant, id_ in await conn.execute(query)]


async def test_pairs_match_as_pairs_not_as_every_combination(q: Any) -> None:
    await q.store.intake.enqueue(
        [q.message("x", tenant="a"), q.message("y", tenant="b"), q.message("y", tenant="a")],
        q.now,
    )
    db = _db(q.store)
    # (a, x) and (b, y) asked: (a, y) shares a tenant with one and an id with the
    # other, and is not among them.
    assert await _ids(q, db.pairs_in(MSG.tenant_id, MSG.id, [("a", "x"), ("b", "y")])) == [
        "a/x",
        "b/y",
    ]
    assert await _ids(q, db.pairs_in(MSG.tenant_id, MSG.id, [("c", "x")])) == []
    assert await _ids(q, db.pairs_in(MSG.tenant_id, MSG.id, [])) == []
    assert await _ids(q, db.in_(MSG.id, ["y"])) == ["b/y", "a/y"]
    assert await _ids(q, db.in_(MSG.id, [])) == []


def test_postgres_spells_lists_of_any_length_with_the_same_text() -> None:
    db = Database.__new__(Database)
    db.target = parse_target("postgresql://postgres@127.0.0.1:5432/test")
    dialect = postgresql.psycopg.dialect()  # type: ignore[attr-defined]

    def text(condition: sa.ColumnElement[bool]) -> str:
        compiled = sa.select(MSG.pk).where(condition).compile(dialect=dialect)
        return str(compiled)

    one, three = [("t", "1")], [("t", "1"), ("t", "2"), ("u", "3")]
    assert text(db.pairs_in(MSG.tenant_id, MSG.id, one)) == text(
        db.pairs_in(MSG.tenant_id, MSG.id, three)
    )
    assert text(db.in_(MSG.id, ["1"])) == text(db.in_(MSG.id, ["1", "2", "3"]))


@pytest.mark.postgres
async def test_a_statement_is_prepared_on_its_first_run(pg_store: Any) -> None:
    """A fresh process's pool would otherwise plan each hot statement five times on
    every connection before preparing it (psycopg's default)."""
    marker = "SELECT count(*) AS prepared_once FROM messages"
    async with pg_store.writer_engine.connect() as conn:
        await conn.exec_driver_sql(marker)
        prepared = await conn.exec_driver_sql("SELECT statement FROM pg_prepared_statements")
        assert marker in [row.statement for row in prepared]
