"""Tenant storage: the ``TenantStore`` interface and one implementation per backend."""

from __future__ import annotations

from sqlalchemy import MetaData

from tenancy_fixtures.settings import Settings
from tenancy_fixtures.spotify_schema import spotify_metadata
from tenancy_fixtures.store.base import TenantSession, TenantStore, WriteMode

__all__ = ["TenantSession", "TenantStore", "WriteMode", "open_store"]


def open_store(settings: Settings, metadata: MetaData | None = None) -> TenantStore:
    """The store for ``settings.database_url``; call ``initialize()`` before use."""
    schema = metadata if metadata is not None else spotify_metadata()
    if settings.backend == "postgresql":
        from tenancy_fixtures.store.postgres import PostgresTenantStore

        return PostgresTenantStore(settings, schema)
    from tenancy_fixtures.store.sqlite import SQLiteTenantStore

    return SQLiteTenantStore(settings, schema)
