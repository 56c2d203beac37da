"""Leases held on a row: one holder at a time across the processes sharing a database.

A lease is a (holder, until) pair of columns. Taking it is one conditional UPDATE:
free, expired or already ours becomes ours. The UPDATE's row lock makes two takers
never both succeed (PostgreSQL re-checks the condition on the row it waited for;
SQLite has one writer). Used for the per-tenant reporting lease and the per-mailbox
polling lease.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection


async def take_row_lease(
    conn: AsyncConnection,
    table: sa.Table,
    row: sa.ColumnElement[bool],
    columns: tuple[str, str],
    holder: str,
    now: float,
    until: float,
) -> bool:
    """Hold (or renew) the lease of the row(s) ``row`` selects until ``until``;
    ``columns`` names the holder and expiry columns."""
    holder_column, until_column = (table.c[name] for name in columns)
    takeable = sa.or_(holder_column.is_(None), holder_column == holder, until_column < now)
    values: dict[str, Any] = {columns[0]: holder, columns[1]: until}
    statement = sa.update(table).where(row, takeable).values(values)
    return (await conn.execute(statement)).rowcount > 0


async def release_row_lease(
    conn: AsyncConnection,
    table: sa.Table,
    row: sa.ColumnElement[bool],
    columns: tuple[str, str],
    holder: str,
) -> None:
    """Give the lease up if ``holder`` still has it."""
    values: dict[str, Any] = {columns[0]: None, columns[1]: None}
    await conn.execute(sa.update(table).where(row, table.c[columns[0]] == holder).values(values))
