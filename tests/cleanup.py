"""Dropping what a test made, on databases that outlive the test."""

from __future__ import annotations

from tenancy_fixtures import FixtureManager

__all__ = ["drop_every_tenant"]


async def drop_every_tenant(manager: FixtureManager) -> None:
    """Drop every tenant the manager's database holds."""
    for tenant in await manager.list_tenants():
        await manager.drop_tenant(tenant.tenant_id)
