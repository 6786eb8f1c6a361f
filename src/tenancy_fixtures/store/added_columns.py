"""Columns control-plane tables gained after their first release.

``create_all`` makes missing tables but never alters one that exists, so a deployment
made by an older version gets each later column by ``ALTER TABLE ... ADD COLUMN`` when
a store starts (where control-plane creation is serialised).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, inspect, text
from sqlalchemy.schema import CreateColumn

from tenancy_fixtures.store.control_plane import CONTROL_SCHEMA, LATER_COLUMNS

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["add_later_columns", "add_missing_columns"]


async def add_missing_columns(conn: AsyncConnection, table: Table, names: Sequence[str]) -> None:
    """Add each of ``table``'s columns ``names`` that its stored table lacks."""
    sync = conn.sync_connection
    options = sync.get_execution_options() if sync is not None else {}
    translate = options.get("schema_translate_map") or {}
    schema = translate.get(CONTROL_SCHEMA, CONTROL_SCHEMA)

    def present(sync_conn: Any) -> set[str]:
        return {c["name"] for c in inspect(sync_conn).get_columns(table.name, schema=schema)}

    found = await conn.run_sync(present)
    preparer = conn.dialect.identifier_preparer
    where = f"{preparer.quote_schema(schema)}." if schema else ""
    for name in names:
        if name in found:
            continue
        spec = CreateColumn(table.c[name]).compile(dialect=conn.dialect)
        await conn.execute(
            text(f"ALTER TABLE {where}{preparer.quote(table.name)} ADD COLUMN {spec}")
        )


async def add_later_columns(conn: AsyncConnection) -> None:
    """Add every column of :data:`~.control_plane.LATER_COLUMNS` the stored tables lack."""
    for table, names in LATER_COLUMNS.items():
        await add_missing_columns(conn, table, names)
