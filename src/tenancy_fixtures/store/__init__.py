"""Tenant storage: the ``TenantStore`` interface and one implementation per backend."""

from __future__ import annotations

from sqlalchemy import MetaData

from tenancy_fixtures.errors import SettingsError
from tenancy_fixtures.settings import Settings
from tenancy_fixtures.store.base import TENANT_SCHEMA, TenantSession, TenantStore, WriteMode
from tenancy_fixtures.store.postgres.ddl import render_schema_sql, schema_checksum

__all__ = [
    "TenantSession",
    "TenantStore",
    "WriteMode",
    "check_tenant_metadata",
    "open_store",
    "render_schema_sql",
    "schema_checksum",
]


def check_tenant_metadata(metadata: MetaData) -> None:
    """Refuse a schema that would break isolation: every table must be declared in
    schema ``"tenant"`` (anything else would be shared by all tenants)."""
    outside = [t.fullname for t in metadata.sorted_tables if t.schema != TENANT_SCHEMA]
    if outside:
        raise SettingsError(
            f"tenant tables must be declared in schema {TENANT_SCHEMA!r} "
            f"(MetaData(schema={TENANT_SCHEMA!r})); these are not: {', '.join(outside)}"
        )


def open_store(settings: Settings, metadata: MetaData) -> TenantStore:
    """The store for ``settings.database_url``; call ``initialize()`` before use."""
    schema = metadata
    check_tenant_metadata(schema)
    # Each backend's module is imported when chosen: a SQLite process never loads asyncpg.
    if settings.backend == "postgresql":
        from tenancy_fixtures.store.postgres.store import PostgresTenantStore

        return PostgresTenantStore(settings, schema)
    from tenancy_fixtures.store.sqlite.store import SQLiteTenantStore

    return SQLiteTenantStore(settings, schema)
