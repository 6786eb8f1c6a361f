"""Sequences moved past the values a load wrote, as Django's ``loaddata`` resets them.

A load gives every key (a record may not leave a sequence's column out), so a
``serial``, identity or ``Sequence`` column's sequence is not drawn from: left where it
was, the application's next insert would take a value the load already wrote and fail
on the key. After a load, each sequence of a table the load wrote is moved to its
column's highest value (lowest, for a descending one) when that is at or past the value
the sequence would give next; never back, and never outside the sequence's bounds (a
sequence that cannot reach the values written is left as it is).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

from sqlalchemy import Column, Identity, Integer, MetaData, Sequence, Table, text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy_fixtures.store.base import backend_dialect

__all__ = ["advance_sequences"]

_QUOTE = backend_dialect("postgresql").identifier_preparer.quote


def _drawing(table: Table) -> Iterator[tuple[Column[int], Sequence | None]]:
    """The integer columns of ``table`` that may draw from a sequence, with the
    ``Sequence`` they name (``None``: the one ``serial`` or identity made them)."""
    keys = list(table.primary_key.columns)
    for column in table.columns:
        if not isinstance(column.type, Integer):
            continue
        if isinstance(column.default, Sequence):
            yield column, column.default
        elif (
            isinstance(column.server_default, Identity)
            or column.autoincrement is True  # a serial in a composite key too
            or (keys == [column] and column.autoincrement == "auto")
        ):
            yield column, None


async def advance_sequences(
    conn: AsyncConnection, schema: str, metadata: MetaData, tables: Collection[str]
) -> int:
    """Move the sequences of ``tables``' columns in ``schema`` past the values written
    (see the module docstring); returns how many moved. A table with no such column
    costs no statement (the built-in schema has none)."""
    moved = 0
    for table in metadata.sorted_tables:
        if table.name not in tables:
            continue
        qualified = f"{_QUOTE(schema)}.{_QUOTE(table.name)}"
        for column, sequence in _drawing(table):
            if sequence is None:
                named = "pg_get_serial_sequence(:table, :column)::regclass"
            else:
                named = "to_regclass(:sequence)"
            result = await conn.execute(
                text(
                    "SELECT setval(seq, target) FROM ("
                    "SELECT seq, q.seqmin, q.seqmax, q.seqincrement AS step, "
                    "coalesce(pg_sequence_last_value(seq)::numeric + q.seqincrement, "
                    "q.seqstart) AS next, "
                    "CASE WHEN q.seqincrement > 0 THEN top ELSE bottom END AS target "
                    f"FROM (SELECT {named} AS seq) named "
                    "JOIN pg_sequence q ON q.seqrelid = named.seq, "
                    f"(SELECT max({_QUOTE(column.name)}) AS top, "
                    f"min({_QUOTE(column.name)}) AS bottom FROM {qualified}) found"
                    ") moving WHERE target BETWEEN seqmin AND seqmax "
                    "AND CASE WHEN step > 0 THEN target >= next ELSE target <= next END"
                ),
                {
                    "table": qualified,
                    "column": column.name,
                    "sequence": f"{_QUOTE(schema)}.{_QUOTE(sequence.name)}" if sequence else "",
                },
            )
            moved += len(result.all())
    return moved
