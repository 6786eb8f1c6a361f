"""Tenant storage: the ``TenantStore`` interface and one implementation per backend."""

from __future__ import annotations

from sqlalchemy import MetaData

from tenancy_fixtures.settings import Settings
from tenancy_fixtures.store.base import TenantSession, TenantStore, WriteMode
from tenancy_fixtures.store.postgres.ddl import render_schema_sql, schema_checksum
from tenancy_fixtures.store.tenant_tables import place_in_tenant_schema

__all__ = [
    "TenantSession",
    "TenantStore",
    "WriteMode",
    "check_tenant_metadata",
    "open_store",
    "place_in_tenant_schema",
    "render_schema_sql",
    "schema_checksum",
]


def check_tenant_metadata(metadata: MetaData) -> MetaData:
    """``metadata`` placed in the tenant schema (:func:`place_in_tenant_schema`); a table
    declared in a schema of its own would be shared by all tenants and is refused."""
    return place_in_tenant_schema(metadata)


def open_store(settings: Settings, metadata: MetaData) -> TenantStore:
    """The store for ``settings.database_url``; call ``initialize()`` before use.

    ``metadata`` is declared as users declare it (tables without a schema) or in the
    placeholder schema; the store's ``metadata`` is its copy in the placeholder schema.
    """
    schema = check_tenant_metadata(metadata)
    # Each backend's module is imported when chosen: a SQLite process never loads asyncpg.
    if settings.backend == "postgresql":
        from tenancy_fixtures.store.postgres.store import PostgresTenantStore

        return PostgresTenantStore(settings, schema)
    from tenancy_fixtures.store.sqlite.store import SQLiteTenantStore

    return SQLiteTenantStore(settings, schema)
