"""A merge (upsert) that gives one primary key twice, refused as PostgreSQL refuses it.

On PostgreSQL the merge is one ``INSERT ... ON CONFLICT DO UPDATE`` from a staging table,
which fails when two staged rows share a key ("cannot affect row a second time"), as
the first load's ``COPY`` into the empty table fails on the key. SQLite's ``executemany``
upsert ran row by row, so the second row simply updated the first: a set naming a key
twice merged silently on SQLite only. The keys of one write are kept (as the fixture
validator keeps a set's keys) and a repeat is an :class:`IntegrityViolationError`
naming the key's columns, which the loader turns into the repeat's file and line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import Table

from tenancy_fixtures.errors import IntegrityViolationError

__all__ = ["refusing_repeated_keys"]


async def refusing_repeated_keys(
    batches: AsyncIterator[Sequence[tuple[Any, ...]]],
    table: Table,
    columns: Sequence[str],
    tenant_id: str,
) -> AsyncIterator[Sequence[tuple[Any, ...]]]:
    """``batches`` as they are, refusing a row whose primary key an earlier row of the
    same write gave (rows without the whole key, or with a NULL in it, are let through:
    the database says what is wrong with them). A table of key columns only is merged
    with ``DO NOTHING`` on both backends, where a repeat changes nothing: let through."""
    key = [c.name for c in table.primary_key.columns]
    if not key or not set(key) < set(columns):
        async for batch in batches:
            yield batch
        return
    positions = [columns.index(name) for name in key]
    seen: set[tuple[Any, ...]] = set()
    async for batch in batches:
        for row in batch:
            values = tuple(row[i] for i in positions)
            if values in seen:
                violation = IntegrityViolationError(
                    f"UNIQUE constraint failed: the load gives the primary key "
                    f"({', '.join(key)}) of {table.name} twice",
                    constraint=str(table.primary_key.name or "") or None,
                    tenant_id=tenant_id,
                    table=table.name,
                    key_columns=key,
                )
                violation.column = ", ".join(key)
                raise violation
            if None not in values:
                seen.add(values)
        yield batch
