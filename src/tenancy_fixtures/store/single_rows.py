"""Many one-row queries (counts, sums, existence) answered in few statements.

Checking or measuring a tenant asks each table the same kind of one-row question; one
statement per question costs a round trip each (a thread hop through aiosqlite), which
for a small tenant outweighs the work itself. The questions are joined as derived
tables of one statement instead, in chunks that stay inside the backends' limits
(SQLite joins at most 64 tables and returns at most 2,000 columns). Building such a
statement is itself work: callers that ask the same questions of every tenant keep
the :class:`SingleRowQueries` they built.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, Table, exists, func, literal, select, true

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["SingleRowQueries", "counting_rows", "finding_rows"]

#: Derived tables per statement (SQLite's join limit is 64).
_QUERIES_PER_STATEMENT = 48
#: Columns per statement (SQLite returns at most 2,000, PostgreSQL 1,664).
_COLUMNS_PER_STATEMENT = 1200


class SingleRowQueries:
    """One-row queries (aggregates without GROUP BY) joined into few statements."""

    def __init__(self, queries: Sequence[Select[Any]]) -> None:
        self._statements: list[tuple[Select[Any], list[int]]] = []
        for chunk in _chunks(queries):
            subqueries = [query.subquery(f"q{n}") for n, query in enumerate(chunk)]
            statement = select(*(column for sub in subqueries for column in sub.c))
            statement = statement.select_from(subqueries[0])
            for sub in subqueries[1:]:
                statement = statement.join(sub, true())
            self._statements.append((statement, [len(sub.c) for sub in subqueries]))

    async def fetch(self, conn: AsyncConnection) -> list[tuple[Any, ...]]:
        """The one row each query returns, in query order."""
        rows: list[tuple[Any, ...]] = []
        for statement, widths in self._statements:
            values = tuple((await conn.execute(statement)).one())
            start = 0
            for width in widths:
                rows.append(values[start : start + width])
                start += width
        return rows


@lru_cache(maxsize=64)
def counting_rows(tables: tuple[Table, ...]) -> SingleRowQueries:
    """``count(*)`` of each table."""
    return SingleRowQueries([select(func.count()).select_from(table) for table in tables])


@lru_cache(maxsize=64)
def finding_rows(tables: tuple[Table, ...]) -> SingleRowQueries:
    """Whether each table holds a row."""
    return SingleRowQueries(
        [select(exists(select(literal(1)).select_from(table))) for table in tables]
    )


def _chunks(queries: Sequence[Select[Any]]) -> list[list[Select[Any]]]:
    chunks: list[list[Select[Any]]] = []
    columns = 0
    for query in queries:
        width = len(query.selected_columns)
        full = len(chunks[-1]) >= _QUERIES_PER_STATEMENT if chunks else True
        if full or columns + width > _COLUMNS_PER_STATEMENT:
            chunks.append([])
            columns = 0
        chunks[-1].append(query)
        columns += width
    return chunks
