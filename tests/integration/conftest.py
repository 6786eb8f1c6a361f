"""Fixtures of the integration tests: managers on one backend only, for behaviour only
that backend has (the root ``conftest.py`` gives the manager of each backend), and one
on each backend that enforces limits.

Every manager here drops the tenants it made; on PostgreSQL the run's database is
shared by the tests of the run, so those managers drop every tenant before the test too.
Tenant roles outlive the database: tests that make them name their tenants with
``tenant_ids``, which drops any role still named for them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest

from tenancy_fixtures import FixtureManager, Settings
from tests.cleanup import drop_every_tenant, drop_shared_tenants
from tests.integration.chain_db import OwnDatabase, own_database
from tests.postgres import asyncpg_dsn, role_exists


@pytest.fixture
async def enforcing(settings: Settings) -> AsyncIterator[FixtureManager]:
    """A manager on this test's backend that enforces limits (the suite turns them off);
    on PostgreSQL its tenants are dropped around the test."""
    async with FixtureManager(settings.model_copy(update={"enforce_limits": True})) as manager:
        await drop_shared_tenants(manager)
        yield manager
        await drop_shared_tenants(manager)


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
        await drop_every_tenant(manager)
        yield manager
        await drop_every_tenant(manager)


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
            await drop_every_tenant(manager)
            await manager.warm_up(0)


@pytest.fixture
async def admin(postgres_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection to the run's database, as an attacker with root would have."""
    connection = await asyncpg.connect(asyncpg_dsn(postgres_url))
    yield connection
    await connection.close()


@pytest.fixture
async def tenant_ids(admin: asyncpg.Connection) -> AsyncIterator[Callable[[str], str]]:
    """Tenant ids unique to this test (roles are shared by the whole cluster); any role
    still named for them afterwards is dropped."""
    run = uuid.uuid4().hex[:8]
    made: list[str] = []

    def make(name: str) -> str:
        made.append(f"rt{run}_{name}")
        return made[-1]

    yield make
    for tenant in made:
        for role in (f"tf_role_{tenant}", f"TF_ROLE_{tenant}"):
            if await role_exists(admin, role):
                await admin.execute(f'DROP OWNED BY "{role}"; DROP ROLE "{role}"')


@pytest.fixture
def admin_url(backend: str, request: pytest.FixtureRequest) -> str:
    """The run's PostgreSQL database, to make databases from (unused on SQLite)."""
    return str(request.getfixturevalue("postgres_url")) if backend == "postgresql" else ""


@pytest.fixture
async def own(backend: str, tmp_path: Path, admin_url: str) -> AsyncIterator[OwnDatabase]:
    """A control plane of this test's own, on this test's backend (the test tampers
    with it or alters its tables behind the library's back)."""
    async with own_database(backend, tmp_path, admin_url) as database:
        yield database
