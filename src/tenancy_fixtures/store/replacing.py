"""A ``replace`` write empties its own table only, the same on every backend.

Deleting rows other tables refer to would cascade into those tables (``ON DELETE
CASCADE``), or, under ``NO ACTION``, fail at once on PostgreSQL yet pass on SQLite, whose
foreign keys a load checks at its end. Either way the referring tables would no longer
hold what their recorded loads wrote, and ``validate-data`` would fail. So a replace is
refused, before anything is deleted, while another table holds rows referring to the
table's rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import ForeignKeyConstraint, Table, and_, select

from tenancy_fixtures.errors import IntegrityViolationError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["refuse_referenced_replace"]


async def refuse_referenced_replace(
    connection: AsyncConnection, table: Table, *, tenant_id: str
) -> None:
    """Raise :class:`IntegrityViolationError` if a row of another table refers to a row
    of ``table`` (its rows referring to each other go with them)."""
    for constraint in _referring(table):
        pairs = [(key.parent, key.column) for key in constraint.elements]
        referring = constraint.table
        found = (
            await connection.execute(
                select(*(parent for parent, _ in pairs))
                .select_from(referring.join(table, and_(*(p == c for p, c in pairs))))
                .order_by(*(parent for parent, _ in pairs))
                .limit(1)
            )
        ).first()
        if found is None:
            continue
        # The key is an existing row's, not one of the load's records: not given as
        # ``key``, which would point the error at the record holding it.
        shown = ", ".join(
            f"{parent.name}={value}" for (parent, _), value in zip(pairs, found, strict=True)
        )
        raise IntegrityViolationError(
            f"cannot replace {table.name}: rows of {referring.name} refer to its rows "
            f"(foreign key {constraint.name}, {shown}); a replace empties its own table "
            "only — delete or replace those rows first, or load the table in upsert mode",
            constraint=None if constraint.name is None else str(constraint.name),
            tenant_id=tenant_id,
            table=table.name,
        )


def _referring(table: Table) -> list[ForeignKeyConstraint]:
    """The foreign keys of other tables that refer to ``table``, in a stable order."""
    assert table.metadata is not None
    return [
        constraint
        for other in table.metadata.sorted_tables
        if other is not table
        for constraint in sorted(other.foreign_key_constraints, key=lambda c: str(c.name))
        if constraint.referred_table is table
    ]
