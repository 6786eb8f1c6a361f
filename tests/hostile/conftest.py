"""Fixtures of the hostile-input tests: a manager per module and backend, and tenants.

The corpus runs hundreds of loads, so the manager lives for a module (per backend)
and refusals share one tenant: a refused load must leave it empty, which each test
checks; a test that could not check makes the fixture drop it, to be created again.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.errors import TenantNotFoundError
from tests.hostile.hostile_checks import SharedTenant


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ],
)
def corpus_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A database for a module's tenants, per backend."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path_factory.mktemp('corpus') / 'data'}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def corpus_manager(corpus_database_url: str) -> AsyncIterator[FixtureManager]:
    """One manager for a module (per backend)."""
    settings = Settings(database_url=corpus_database_url, actor="pytest")
    async with FixtureManager(settings) as manager:
        yield manager


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_tenant(corpus_manager: FixtureManager) -> AsyncIterator[SharedTenant]:
    """The module's shared tenant; dropped after the module."""
    shared = SharedTenant(f"hostile_{uuid.uuid4().hex[:12]}")
    yield shared
    with contextlib.suppress(TenantNotFoundError):
        await corpus_manager.drop_tenant(shared.tenant_id)


@pytest_asyncio.fixture(loop_scope="module")
async def refusing_tenant(
    corpus_manager: FixtureManager, shared_tenant: SharedTenant
) -> AsyncIterator[SharedTenant]:
    """The shared tenant for one refusal: created if missing (tests of other modules drop
    every tenant of the PostgreSQL test database), made again after a test that did not
    see it empty."""
    try:
        await corpus_manager.get_tenant(shared_tenant.tenant_id)
    except TenantNotFoundError:
        await corpus_manager.create_tenant(shared_tenant.tenant_id)
    shared_tenant.seen_empty = False
    yield shared_tenant
    if not shared_tenant.seen_empty:
        await corpus_manager.drop_tenant(shared_tenant.tenant_id)


@pytest_asyncio.fixture(loop_scope="module")
async def fresh_tenant(corpus_manager: FixtureManager) -> AsyncIterator[str]:
    """A new, empty tenant for one test; dropped afterwards."""
    tenant_id = f"hostile_{uuid.uuid4().hex[:12]}"
    await corpus_manager.create_tenant(tenant_id)
    yield tenant_id
    await corpus_manager.drop_tenant(tenant_id)
