"""Helpers of the export and erasure tests: a loaded enterprise tenant, its rows, a person."""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select

from tenancy_fixtures import FixtureManager, Settings, TenantFixture
from tenancy_fixtures.store.base import TENANT_SCHEMA

#: A demo user with listening events, playlists, product events and comments on them.
SUBJECT = "5790e540-eed8-47e8-a3e2-8bc16d7cce49"
SUBJECT_EMAIL = "nora.okafor.1@example.com"


async def loaded_tenant(manager: FixtureManager, tenant_id: str, tier: str = "enterprise") -> None:
    """An enterprise tenant (data_export on) with every demo table and its aggregates."""
    await manager.create_tenant(TenantFixture(tenant_id=tenant_id, tier=tier))
    await manager.load_fixtures(tenant_id)


async def table_rows(manager: FixtureManager, tenant_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, sorted, as comparable tuples."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    async with manager.store.session(tenant_id, readonly=True) as session:
        for table in manager.store.metadata.sorted_tables:
            rows = (await session.connection.execute(select(table))).all()
            found[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return found


def table(manager: FixtureManager, name: str) -> Any:
    """A tenant table of the manager's schema."""
    return manager.store.metadata.tables[f"{TENANT_SCHEMA}.{name}"]


def with_secret_key(settings: Settings) -> Settings:
    """``settings`` with a master key (so tenants have data keys)."""
    return settings.model_copy(update={"secret_key": SecretStr(Fernet.generate_key().decode())})
