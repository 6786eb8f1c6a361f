"""Dropping what a test made, on databases that outlive the test."""

from __future__ import annotations

from tenancy_fixtures import FixtureManager

__all__ = ["drop_every_tenant", "drop_shared_tenants"]


async def drop_every_tenant(manager: FixtureManager) -> None:
    """Drop every tenant the manager's database holds."""
    for tenant in await manager.list_tenants():
        await manager.drop_tenant(tenant.tenant_id)


async def drop_shared_tenants(manager: FixtureManager) -> None:
    """Drop every tenant of a manager on PostgreSQL, whose database the run's tests share;
    leave a SQLite data directory, which is the test's own (``tmp_path``), as it is."""
    if manager.store.backend == "postgresql":
        await drop_every_tenant(manager)
