"""Many one-row questions in few statements: answers stay per table and in order past the
backends' limits on joins and columns (SQLite joins at most 64 tables)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, event, insert
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from tenancy_fixtures.store.single_rows import counting_rows, finding_rows

TABLES = 150


@pytest.fixture
async def connection(database_url: str, backend: str) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction that is rolled back (a schema of its own on
    PostgreSQL)."""
    url = database_url if backend == "postgresql" else "sqlite+aiosqlite://"
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            if backend == "postgresql":
                schema = f"single_rows_{uuid.uuid4().hex[:8]}"
                await conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
                await conn.exec_driver_sql(f'SET LOCAL search_path TO "{schema}"')
            yield conn
            await conn.rollback()
    finally:
        await engine.dispose()


def _tables() -> tuple[Table, ...]:
    metadata = MetaData()
    return tuple(
        Table(f"t{n}", metadata, Column("id", Integer, primary_key=True)) for n in range(TABLES)
    )


async def _fill(conn: AsyncConnection, tables: tuple[Table, ...]) -> dict[str, int]:
    """Every third table gets n % 7 + 1 rows; returns the counts."""
    await conn.run_sync(tables[0].metadata.create_all)
    counts = {}
    for n, table in enumerate(tables):
        rows = n % 7 + 1 if n % 3 == 0 else 0
        if rows:
            await conn.execute(insert(table), [{"id": i} for i in range(rows)])
        counts[table.name] = rows
    return counts


def _statements(conn: AsyncConnection) -> list[str]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(conn.sync_connection, "before_cursor_execute", record)
    return seen


async def test_row_counts_of_150_tables_come_back_per_table_in_four_statements(
    connection: AsyncConnection,
) -> None:
    tables = _tables()
    expected = await _fill(connection, tables)
    seen = _statements(connection)

    rows = await counting_rows(tables).fetch(connection)

    assert {t.name: count for t, (count,) in zip(tables, rows, strict=True)} == expected
    assert len(seen) == 4  # 150 questions, 48 per statement


async def test_which_of_150_tables_hold_rows_comes_back_per_table(
    connection: AsyncConnection,
) -> None:
    tables = _tables()
    expected = await _fill(connection, tables)

    rows = await finding_rows(tables).fetch(connection)

    held = {t.name for t, (found,) in zip(tables, rows, strict=True) if found}
    assert held == {name for name, count in expected.items() if count}


async def test_no_questions_run_no_statement(connection: AsyncConnection) -> None:
    seen = _statements(connection)

    assert await counting_rows(()).fetch(connection) == []
    assert seen == []
