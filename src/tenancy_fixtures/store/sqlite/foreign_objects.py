"""What a tenant file holds that the schema definition does not declare (SQLite).

A tenant file holds the declared tables and their indexes. A table, view or trigger
beyond them was added by something else that edited the file: ``validate-data``
reports each as a failure, and a load refuses to start while a trigger on a declared
table (or a view in its place) would run during its writes. SQLite's own tables
(``sqlite_sequence``, ``sqlite_stat1``) are not counted.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from tenancy_fixtures.store.base import SchemaObject

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["is_load_hazard", "undeclared_objects"]

_OBJECTS = (
    "SELECT type, name, tbl_name FROM main.sqlite_master "
    "WHERE type IN ('table', 'view', 'trigger') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
    "ORDER BY type = 'trigger', CASE WHEN type = 'trigger' THEN tbl_name END, type, name"
)


async def undeclared_objects(
    conn: AsyncConnection, declared: Collection[str]
) -> list[SchemaObject]:
    """Every table, view and trigger of the tenant's file that ``declared`` does not name."""
    found: list[SchemaObject] = []
    rows: list[tuple[str, str, str]] = [tuple(r) for r in await conn.exec_driver_sql(_OBJECTS)]
    for kind, name, table in rows:
        if kind == "trigger":
            found.append(SchemaObject("trigger", str(name), str(table)))
        elif not (kind == "table" and name in declared):
            found.append(SchemaObject(str(kind), str(name)))
    return found


def is_load_hazard(found: SchemaObject, declared: Collection[str]) -> bool:
    """Whether writing the ``declared`` tables would run ``found`` or write through it."""
    if found.kind == "trigger":
        return found.table in declared
    return found.name in declared
