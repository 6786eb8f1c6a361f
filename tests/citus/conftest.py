"""Fixtures of the Citus tests: a manager on a real Citus coordinator.

The cluster's URL comes from ``TENANCY_TEST_CITUS_URL`` (a coordinator with workers,
the ``citus`` extension in its database on every node). Without it every test here
skips saying why — in CI too: Citus is not in this machine's package registries, so
this is the one skip CI allows. The database is shared with whoever else uses the
cluster: the tests make tenants under ids unique to the run and drop only those.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tenancy_fixtures import FixtureManager, Settings
from tests.postgres import asyncpg_dsn

CITUS_URL = os.environ.get("TENANCY_TEST_CITUS_URL")
SKIP_REASON = (
    "TENANCY_TEST_CITUS_URL is not set: the Citus tests need a coordinator with two "
    "workers (see the README, 'Scaling out with Citus'); skipped, in CI too"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip every test of this folder without a cluster, with the reason printed."""
    if CITUS_URL:
        return
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@pytest.fixture(scope="session")
def citus_url() -> str:
    """The coordinator's URL as the library takes it."""
    assert CITUS_URL, SKIP_REASON
    return (
        make_url(CITUS_URL)
        .set(drivername="postgresql+asyncpg")
        .render_as_string(hide_password=False)
    )


@pytest.fixture
def run_prefix() -> str:
    """The prefix of this test's tenant ids (the cluster's database is shared)."""
    return f"ct{uuid.uuid4().hex[:8]}_"


@pytest.fixture
def tenant_ids(run_prefix: str) -> Callable[[str], str]:
    """Tenant ids unique to this test."""
    return lambda name: f"{run_prefix}{name}"


@pytest.fixture
async def citus(citus_url: str, run_prefix: str) -> AsyncIterator[FixtureManager]:
    """A manager that distributes tenants on the cluster; the tenants of this test are
    dropped afterwards, and any spare schema it left in the pool."""
    settings = Settings(database_url=citus_url, actor="pytest", distributed="citus")
    async with FixtureManager(settings) as manager:
        yield manager
        for tenant in await manager.list_tenants(prefix=run_prefix):
            await manager.drop_tenant(tenant.tenant_id)


@pytest.fixture
async def coordinator(citus_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection to the coordinator, behind the library's back."""
    connection = await asyncpg.connect(asyncpg_dsn(citus_url))
    yield connection
    await connection.close()
