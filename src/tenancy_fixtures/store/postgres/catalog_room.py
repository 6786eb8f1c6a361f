"""The hard catalogue limit, checked where every tenant schema and spare is created.

The count is exact (``count(*)`` of pg_class: 0.4 ms at 5,000 relations, 3 ms at
20,000; ``reltuples`` lags autovacuum by hundreds or thousands) and taken under a
transaction-level advisory lock held until the creating transaction commits: two
processes creating near the limit take turns, and the second counts the first's
relations. The lock is taken only while a limit is set.
"""

from __future__ import annotations

from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy_fixtures.errors import CatalogFullError
from tenancy_fixtures.store.catalog_size import relations_per_tenant

__all__ = ["CATALOG_COUNT", "hold_catalog_room"]

#: Serialises creations while TENANCY_CATALOG_LIMIT is set; any constant that is ours.
_CATALOG_LOCK_KEY = 0x7E4A_4341
#: Every relation of the database (tables, indexes, sequences, views, TOAST).
CATALOG_COUNT = text("SELECT count(*) FROM pg_catalog.pg_class")


async def hold_catalog_room(
    conn: AsyncConnection, metadata: MetaData, limit: int | None, *, tenant_id: str | None
) -> None:
    """Refuse (:class:`CatalogFullError`) to add one tenant's relations past ``limit``;
    else keep other creations waiting until ``conn``'s transaction ends. ``tenant_id``:
    ``None`` for a spare schema."""
    if limit is None:
        return
    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CATALOG_LOCK_KEY})
    relations = int((await conn.execute(CATALOG_COUNT)).scalar_one())
    adding = relations_per_tenant(metadata)
    if relations + adding > limit:
        raise CatalogFullError(relations=relations, adding=adding, limit=limit, tenant_id=tenant_id)
