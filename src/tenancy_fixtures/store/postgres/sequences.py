"""Sequences moved past the values a load wrote, as Django's ``loaddata`` resets them.

A load gives every key (a record may not leave a sequence's column out), so a
``serial``, identity or ``Sequence`` column's sequence is not drawn from: left where it
was, the application's next insert would take a value the load already wrote and fail
on the key. After a load, each sequence of a written table's column is moved to the
column's highest value when that is at or past the value the sequence would give next;
never back.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Integer, MetaData, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy_fixtures.store.tenant_tables import column_sequences

__all__ = ["advance_sequences"]

#: The sequences owned by (``serial``, ``OWNED BY``) or backing (identity) a column of
#: the schema's named tables, with each column, for increasing sequences.
_OWNED = text(
    """
    SELECT t.relname, a.attname, s.relname
    FROM pg_depend d
    JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
    JOIN pg_sequence q ON q.seqrelid = s.oid AND q.seqincrement > 0
    JOIN pg_class t ON t.oid = d.refobjid
    JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
      AND d.deptype IN ('a', 'i')
      AND t.relnamespace = to_regnamespace(:schema) AND t.relname = ANY(:tables)
    """
)


async def advance_sequences(
    conn: AsyncConnection, schema: str, metadata: MetaData, tables: Collection[str]
) -> int:
    """Move the sequences of ``tables``' columns in ``schema`` past the values written
    (see the module docstring); returns how many moved."""
    if not tables:
        return 0
    found = await conn.execute(_OWNED, {"schema": schema, "tables": sorted(tables)})
    drawn = {(str(t), str(c), str(s)) for t, c, s in found}
    for name, (_, users) in column_sequences(metadata).items():
        drawn |= {
            (table.name, column.name, name)
            for table, column in users
            if table.name in tables and isinstance(column.type, Integer)
        }
    quote = postgresql.dialect().identifier_preparer.quote  # type: ignore[no-untyped-call]
    moved = 0
    for table, column, sequence in sorted(drawn):
        qualified = f"{quote(schema)}.{quote(sequence)}"
        result = await conn.execute(
            text(
                f"SELECT setval(CAST(:sequence AS regclass), found.top) "
                f"FROM (SELECT max({quote(column)}) AS top "
                f"FROM {quote(schema)}.{quote(table)}) found, {qualified} s "
                "WHERE found.top >= CASE WHEN s.is_called "
                "THEN s.last_value + 1 ELSE s.last_value END"
            ),
            {"sequence": qualified},
        )
        moved += len(result.all())
    return moved
