"""Write stamps: telling from a row's ``xmin`` that only a recorded write wrote it.

Every row version carries the id of the (sub)transaction that wrote it (``xmin``). A
recorded write runs in a savepoint of its own, and at its end a row is added to
``tenancy.table_write_stamps`` in that same savepoint, so the stamp row's ``xmin`` is
the id its rows carry, and no other statement of the load shares it (a derived-table
refresh, a custom fixture's SQL). Validation then counts, in the server, each table's
rows whose ``xmin`` is no stamp's: an ``UPDATE`` or ``INSERT`` by anything else leaves
such a row, a ``DELETE`` leaves fewer rows. A stamp counts only while the table has the
shape it had when stamped: the columns of its definition (a digest made by the caller)
and of the catalog (relation, column numbers, names, types and enum labels), so a
column dropped and added again, renamed or a table replaced is seen without a rewrite.

Transaction ids are 32 bits and reused after wraparound: a stamp older than 2^30
transactions is not trusted. A restored dump gives stamp rows and data rows new ids (and
the relation a new oid), so its tables are read again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy_fixtures.store.control_plane import (
    CONTROL_SCHEMA,
    table_checksums_table,
    write_stamps_table,
)
from tenancy_fixtures.store.postgres.privileges import literal, quote
from tenancy_fixtures.store.table_shapes import table_shape

__all__ = ["count_unstamped", "stamped"]

#: How many transactions back a stamp is still trusted.
_HORIZON = 2**30
_STAMPS = f"{quote(CONTROL_SCHEMA)}.{quote(write_stamps_table.name)}"
_WRITES = f"{quote(CONTROL_SCHEMA)}.{quote(table_checksums_table.name)}"
_SAVEPOINT = "tf_stamped_write"


def _shape(definition: str, relation: str) -> str:
    """SQL for a table's shape: the digest of its definition (SQL ``definition``), then a
    digest of the catalog's columns of the relation named by SQL ``relation``."""
    return (
        f"CAST({definition} AS text) || ':' || coalesce(("
        f"SELECT md5(CAST(to_regclass({relation}) AS oid)::text || string_agg("
        "a.attnum || ':' || a.attname || ':' || a.atttypid || ':' || a.atttypmod || ':' || "
        "coalesce((SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) "
        "FROM pg_catalog.pg_enum e WHERE e.enumtypid = a.atttypid), ''), "
        "',' ORDER BY a.attnum)) FROM pg_catalog.pg_attribute a "
        f"WHERE a.attrelid = to_regclass({relation}) AND a.attnum > 0 "
        "AND NOT a.attisdropped), '')"
    )


def _qualified(schema: str, table: Table) -> str:
    return f"{quote(schema)}.{quote(table.name)}"


@asynccontextmanager
async def stamped(
    conn: AsyncConnection, *, tenant_id: str, schema: str, table: Table, replace: bool
) -> AsyncIterator[None]:
    """A savepoint around one recorded write to ``table``, stamped at its end; a
    ``replace`` drops the table's earlier stamps (their rows are gone).

    Sent as plain SQL through the driver, the stamp and the release in one round trip: a
    write that fails leaves the savepoint open, and its transaction is rolled back whole.
    """
    driver: Any = (await conn.get_raw_connection()).driver_connection
    await driver.execute(f"SAVEPOINT {_SAVEPOINT}")
    yield
    tenant, name = literal(tenant_id), literal(table.name)
    script = [
        f"INSERT INTO {_STAMPS} (tenant_id, table_name, shape) SELECT {tenant}, {name}, "
        + _shape(literal(table_shape(table)), literal(_qualified(schema, table))),
        f"RELEASE SAVEPOINT {_SAVEPOINT}",
    ]
    if replace:
        script.insert(
            0, f"DELETE FROM {_STAMPS} WHERE tenant_id = {tenant} AND table_name = {name}"
        )
    await driver.execute("; ".join(script))


async def count_unstamped(
    conn: AsyncConnection, *, tenant_id: str, schema: str, tables: Sequence[Table], writes: int
) -> dict[str, tuple[int, int]] | None:
    """For each of ``tables``: its rows, and how many of them no stamp of its present
    shape wrote (one statement). ``None`` if the tenant's recorded writes are no longer
    the ``writes`` the caller read (a load committed in between)."""
    if not tables:
        return {}
    params: dict[str, Any] = {"tenant": tenant_id}
    parts = []
    for i, table in enumerate(tables):
        params |= {f"n{i}": table.name, f"m{i}": table_shape(table)}
        params[f"q{i}"] = _qualified(schema, table)
        shape = _shape(f":m{i}", f"CAST(:q{i} AS text)")
        parts.append(
            f"SELECT {i} AS position, count(*) AS total, count(*) FILTER (WHERE NOT "
            f"(t.xmin = ANY(ARRAY(SELECT s.xmin FROM {_STAMPS} s WHERE s.tenant_id = :tenant "
            f"AND s.table_name = :n{i} AND s.shape = {shape} "
            f"AND age(s.xmin) < {_HORIZON})))) AS unstamped "
            f"FROM {_qualified(schema, table)} t"
        )
    rows = (
        await conn.execute(
            text(
                f"SELECT p.position, p.total, p.unstamped, (SELECT count(*) FROM {_WRITES} w "
                f"WHERE w.tenant_id = :tenant) FROM ({' UNION ALL '.join(parts)}) p"
            ),
            params,
        )
    ).all()
    if any(int(r[3]) != writes for r in rows):
        return None
    return {tables[int(r[0])].name: (int(r[1]), int(r[2])) for r in rows}
