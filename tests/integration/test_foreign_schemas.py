"""A drop takes a tenant's schema only (PostgreSQL): a schema of the database's own
that a valid tenant id happens to name is no tenant's storage."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tenancy_fixtures import FixtureManager, InvalidTenantIdError, TenantNotFoundError
from tenancy_fixtures.store import control_plane

pytestmark = pytest.mark.postgres


@pytest.fixture
async def app_schema(admin: asyncpg.Connection) -> AsyncIterator[str]:
    """A schema of the application's own, named like a tenant, holding one row."""
    schema = f"reports_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    await admin.execute(f'CREATE TABLE "{schema}".reports (id integer PRIMARY KEY)')
    await admin.execute(f'INSERT INTO "{schema}".reports VALUES (1)')
    yield schema
    await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def test_dropping_an_id_that_names_a_schema_no_tenant_owns_keeps_that_schema(
    pg_manager: FixtureManager, admin: asyncpg.Connection, app_schema: str
) -> None:
    """``cleanup reports_x`` (or ``DELETE /tenants/reports_x``) where no tenant of that id
    was ever made, but the database holds a schema of that name: the schema was dropped,
    CASCADE, with the application's data, and the drop reported success."""
    assert await pg_manager.store.storage_exists(app_schema)  # what cleanup asks first

    with pytest.raises(TenantNotFoundError):
        await pg_manager.drop_tenant(app_schema)

    assert await admin.fetchval(f'SELECT count(*) FROM "{app_schema}".reports') == 1


async def test_a_tenant_schema_that_lost_its_registry_row_is_still_dropped(
    pg_manager: FixtureManager, admin: asyncpg.Connection
) -> None:
    """What ``validate-data --all`` reports as storage nothing registers (every table of
    the tenant schema) is still the tenant's to drop."""
    await pg_manager.create_tenant("unlisted")
    async with pg_manager.store.control() as conn:
        await control_plane.delete_tenant(conn, "unlisted")

    await pg_manager.drop_tenant("unlisted")

    assert not await admin.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = 'unlisted'")


async def test_creating_a_tenant_over_a_schema_no_tenant_owns_says_so(
    pg_manager: FixtureManager, admin: asyncpg.Connection, app_schema: str
) -> None:
    """It said "tenant 'reports_x' already exists", which ``show``, ``cleanup`` and every
    other command then denied (exit 4)."""
    with pytest.raises(InvalidTenantIdError, match="no tenant's") as refused:
        await pg_manager.create_tenant(app_schema)

    assert refused.value.exit_code == 2
    assert await admin.fetchval(f'SELECT count(*) FROM "{app_schema}".reports') == 1
    assert await pg_manager.list_tenants() == []
