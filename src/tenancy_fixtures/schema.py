"""SchemaFixture: a tenant's tables, constraints and indexes, from SQLAlchemy ``MetaData``.

The built-in schema is the Spotify domain (:func:`spotify_metadata`); pass your own
``MetaData`` (declared in schema ``"tenant"``) to provision your own models.
``templates/schema_template.sql`` is this schema rendered for PostgreSQL;
:func:`render_schema_sql` produces it and a test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import MetaData

from tenancy_fixtures.fixtures import BaseFixture
from tenancy_fixtures.schema_ddl import render_schema_sql, schema_checksum
from tenancy_fixtures.spotify_schema import spotify_metadata
from tenancy_fixtures.store.base import TenantSession

__all__ = ["SchemaFixture", "render_schema_sql", "schema_checksum"]


class SchemaFixture(BaseFixture):
    """Creates a tenant's tables; applied again only when the schema changes."""

    kind = "structural"

    def __init__(self, metadata: MetaData | None = None) -> None:
        self.metadata = metadata if metadata is not None else spotify_metadata()

    @property
    def name(self) -> str:
        return "schema"

    def checksum(self) -> str:
        return schema_checksum(self.metadata)

    async def apply(self, session: TenantSession) -> Mapping[str, int]:
        await session.create_tables(self.metadata)
        return {}

    async def verify(self, session: TenantSession) -> list[str]:
        existing = await session.table_names()
        return [
            f"table {table.name} is missing"
            for table in self.metadata.sorted_tables
            if table.name not in existing
        ]
