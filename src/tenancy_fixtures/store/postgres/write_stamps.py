"""Write stamps: telling from a row's ``xmin`` that only a recorded write wrote it.

Every row version carries the id of the (sub)transaction that wrote it (``xmin``). A
stamped write runs in a savepoint of its own, and at its end a row is added to
``tenancy.table_write_stamps`` in that same savepoint, so the stamp row's ``xmin`` is
the id its rows carry, and no other statement of the load shares it (a derived-table
refresh, a custom fixture's SQL). Validation then counts, in the server, each table's
rows whose ``xmin`` is no stamp's: an ``UPDATE`` or ``INSERT`` by anything else leaves
such a row, a ``DELETE`` leaves fewer rows. A stamp counts only while the table has the
shape it had when stamped: the columns of its definition (a digest made by the caller)
and of the catalog (relation, column numbers, names, types and enum labels), so a
column dropped and added again, renamed or a table replaced is seen without a rewrite.

A stamp row keeps its own ``xmin`` as written: a copy of it (a dump restored in one
transaction, which gives stamp and data rows one new id) has another and is not
trusted. It keeps the writing transaction's 64-bit id too: transaction ids are 32 bits
and reused after wraparound, so a stamp older than 2^30 transactions is not trusted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
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
#: A stamp row that is the one written (not a copy) and younger than the horizon.
_NEXT_ID = "txid_snapshot_xmax(txid_current_snapshot())"
_TRUSTED = (
    f"s.own_xmin = s.xmin::text::bigint AND s.written <= {_NEXT_ID} "
    f"AND {_NEXT_ID} - s.written < {_HORIZON}"
)


def _shape(definition: str, relation: str) -> str:
    """SQL for a table's shape: the digest of its definition (SQL ``definition``), then a
    digest of the catalog's columns of the relation named by SQL ``relation``."""
    return (
        f"CAST({definition} AS text) || ':' || coalesce(("
        f"SELECT md5(CAST(to_regclass({relation}) AS oid)::text || '/' || string_agg("
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
    try:
        yield
    except Exception:
        # Undo the write's rows if a caller goes on in this transaction (best effort:
        # the connection may be gone, and the error raised is the write's).
        with suppress(Exception):
            await driver.execute(
                f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}; RELEASE SAVEPOINT {_SAVEPOINT}"
            )
        raise
    tenant, name = literal(tenant_id), literal(table.name)
    script = [
        f"INSERT INTO {_STAMPS} (tenant_id, table_name, shape, written) "
        f"SELECT {tenant}, {name}, "
        + _shape(literal(table_shape(table)), literal(_qualified(schema, table)))
        + ", txid_current()",
        f"UPDATE {_STAMPS} SET own_xmin = xmin::text::bigint "
        f"WHERE tenant_id = {tenant} AND table_name = {name} AND own_xmin IS NULL",
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
    readable = text("SELECT has_table_privilege(CAST(:stamps AS text), 'SELECT')")
    if not (await conn.execute(readable, {"stamps": _STAMPS})).scalar_one():
        return None  # a reader granted SELECT on the older control-plane tables only
    stamped = text(f"SELECT EXISTS (SELECT 1 FROM {_STAMPS} WHERE tenant_id = :tenant)")
    if not (await conn.execute(stamped, {"tenant": tenant_id})).scalar_one():
        return {}  # no bulk load stamped anything: no table to count
    params: dict[str, Any] = {"tenant": tenant_id}
    parts = []
    for i, table in enumerate(tables):
        params |= {f"n{i}": table.name, f"m{i}": table_shape(table)}
        params[f"q{i}"] = _qualified(schema, table)
        shape = _shape(f":m{i}", f"CAST(:q{i} AS text)")
        parts.append(
            f"SELECT {i} AS position, count(*) AS total, count(*) FILTER (WHERE NOT "
            f"(t.xmin = ANY(ARRAY(SELECT s.xmin FROM {_STAMPS} s WHERE s.tenant_id = :tenant "
            f"AND s.table_name = :n{i} AND s.shape = {shape} AND {_TRUSTED})))) AS unstamped "
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
