"""The catalogue budget: PostgreSQL slows down as schemas-per-tenant multiply relations.

Every tenant adds its tables, their keys and indexes, and TOAST tables to one shared
catalogue; past a few hundred thousand relations planning, autovacuum and backups
slow down for all tenants. ``catalog_budget`` warns before that; ``catalog_limit``
refuses new tenants past a hard line: the store checks it where it creates a tenant's
schema or a spare, whichever way the creation was asked for.
"""

from __future__ import annotations

from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.settings import Settings
from tenancy_fixtures.store.base import TenantStore
from tenancy_fixtures.store.catalog_size import relations_per_tenant

__all__ = ["check_catalog", "relations_per_tenant"]

log = get_logger("tenancy_fixtures.catalog")


async def check_catalog(
    store: TenantStore, settings: Settings, *, adding: str | None = None
) -> int | None:
    """The catalogue's relations (``None`` where it does not matter): warns past the
    budget, counting a new tenant's relations with ``adding`` (its id)."""
    relations = await store.catalog_relations()
    if relations is None:
        return None
    extra = relations_per_tenant(store.metadata) if adding else 0
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
