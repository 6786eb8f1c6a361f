"""The catalogue budget: a warning past TENANCY_CATALOG_BUDGET, a refusal past the limit."""

from __future__ import annotations

import pytest

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.errors import CatalogFullError
from tenancy_fixtures.monitoring.catalog import relations_per_tenant
from tests.cleanup import drop_every_tenant
from tests.log_capture import captured_logs


async def test_a_new_tenant_past_the_catalog_limit_is_refused_and_nothing_is_made(
    postgres_url: str,
) -> None:
    settings = Settings(database_url=postgres_url, actor="pytest", catalog_limit=50)
    async with FixtureManager(settings) as manager:
        with pytest.raises(CatalogFullError, match="TENANCY_CATALOG_LIMIT=50"):
            await manager.create_tenant("too_many")

        assert not await manager.store.storage_exists("too_many")
        assert "too_many" not in [t.tenant_id for t in await manager.list_tenants()]


async def test_listing_and_creating_past_the_budget_warn_with_the_figures(
    postgres_url: str,
) -> None:
    settings = Settings(database_url=postgres_url, actor="pytest", catalog_budget=10)
    async with FixtureManager(settings) as manager:
        try:
            with captured_logs() as logs:
                await manager.create_tenant("over_budget")

            [warning] = [e for e in logs if e["event"] == "catalog_over_budget"]
            assert warning["budget"] == 10
            assert warning["relations"] > 10
            assert warning["per_tenant"] > 50
        finally:
            await drop_every_tenant(manager)


async def test_sqlite_has_no_catalog_to_budget(tmp_path: object) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/data", catalog_limit=1)
    async with FixtureManager(settings) as manager:
        await manager.create_tenant("fine")

        assert await manager.store.catalog_relations() is None


def test_a_spotify_tenant_adds_dozens_of_relations() -> None:
    from tenancy_fixtures.spotify import builtin_metadata

    assert 50 < relations_per_tenant(builtin_metadata()) < 200
