"""The catalogue budget: PostgreSQL slows down as schemas-per-tenant multiply relations.

Every tenant adds its tables, their keys and indexes, and TOAST tables to one shared
catalogue; past a few hundred thousand relations planning, autovacuum and backups
slow down for all tenants. ``catalog_budget`` warns before that; ``catalog_limit``
refuses new tenants past a hard line.
"""

from __future__ import annotations

from sqlalchemy import JSON, LargeBinary, MetaData, String, Text

from tenancy_fixtures.errors import CatalogFullError
from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.settings import Settings
from tenancy_fixtures.store.base import TenantStore

__all__ = ["check_catalog", "relations_per_tenant"]

log = get_logger("tenancy_fixtures.catalog")

_TOASTABLE = (String, Text, JSON, LargeBinary)


def relations_per_tenant(metadata: MetaData) -> int:
    """Relations one tenant of ``metadata`` adds: each table, its primary key, unique
    constraints and indexes, and a TOAST table with its index where a column can be
    stored out of line."""
    count = 0
    for table in metadata.sorted_tables:
        count += 1 + len(table.indexes)
        count += sum(1 for c in table.constraints if c.__visit_name__ == "unique_constraint")
        count += 1 if table.primary_key.columns else 0
        if any(isinstance(c.type, _TOASTABLE) for c in table.columns):
            count += 2
    return count


async def check_catalog(
    store: TenantStore, settings: Settings, *, adding: str | None = None
) -> int | None:
    """The catalogue's relations (``None`` where it does not matter): warns past the
    budget; with ``adding`` (a new tenant's id), refuses to pass the limit."""
    relations = await store.catalog_relations()
    if relations is None:
        return None
    extra = relations_per_tenant(store.metadata) if adding else 0
    limit = settings.catalog_limit
    if adding and limit is not None and relations + extra > limit:
        raise CatalogFullError(relations=relations, adding=extra, limit=limit, tenant_id=adding)
    budget = settings.catalog_budget
    if budget is not None and relations + extra > budget:
        log.warning(
            "catalog_over_budget",
            relations=relations,
            budget=budget,
            per_tenant=relations_per_tenant(store.metadata),
            hint="drop unused tenants, spread them over databases, or raise TENANCY_CATALOG_BUDGET",
        )
    return relations
