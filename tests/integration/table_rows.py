"""Reading a tenant's tables whole, for tests that compare rows before and after."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tenancy_fixtures import FixtureManager

__all__ = ["rows_by_key"]


async def rows_by_key(
    manager: FixtureManager, tenant: str
) -> dict[str, dict[str, tuple[Any, ...]]]:
    """Each table's rows by their first column (the key), the rest as a tuple."""
    found = {}
    async with manager.store.session(tenant, readonly=True) as session:
        for table in manager.store.metadata.sorted_tables:
            rows = await session.connection.execute(select(table))
            found[table.name] = {str(r[0]): tuple(r[1:]) for r in rows}
    return found
