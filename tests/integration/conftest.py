"""Fixtures of the integration tests: managers on one backend only, for behaviour only
that backend has (the root ``conftest.py`` gives the manager of each backend).

Every manager here drops the tenants it made; on PostgreSQL the run's database is
shared by the tests of the run, so those managers drop every tenant before the test too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tenancy_fixtures import FixtureManager, Settings


async def _drop_every_tenant(manager: FixtureManager) -> None:
    for tenant in await manager.list_tenants():
        await manager.drop_tenant(tenant.tenant_id)


@pytest.fixture
async def sqlite_manager(tmp_path: Path) -> AsyncIterator[FixtureManager]:
    """A manager on a fresh SQLite data directory of this test's own."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'data'}", actor="pytest")
    async with FixtureManager(settings) as manager:
        yield manager


@pytest.fixture
async def pg_manager(postgres_url: str) -> AsyncIterator[FixtureManager]:
    """A manager on the run's PostgreSQL database; every tenant is dropped around the test."""
    async with FixtureManager(Settings(database_url=postgres_url, actor="pytest")) as manager:
        await _drop_every_tenant(manager)
        yield manager
        await _drop_every_tenant(manager)


@pytest.fixture
async def roles_manager(postgres_url: str) -> AsyncIterator[FixtureManager]:
    """A manager with per-tenant roles on the run's PostgreSQL database; the tenants it
    made (and their roles) and its spare roles are dropped afterwards, since roles outlive
    the run's database."""
    settings = Settings(database_url=postgres_url, actor="pytest", tenant_roles=True)
    async with FixtureManager(settings) as manager:
        try:
            yield manager
        finally:
            await _drop_every_tenant(manager)
            await manager.warm_up(0)
