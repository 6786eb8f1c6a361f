"""TENANCY_CATALOG_LIMIT is enforced by the store, counted exactly, for every creation."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from tenancy_fixtures import FixtureManager, Settings, TenantFixture
from tenancy_fixtures.errors import CatalogFullError
from tenancy_fixtures.monitoring.catalog import relations_per_tenant
from tenancy_fixtures.tenancy.config import ConfigFixture
from tests.cleanup import drop_every_tenant


async def _room_for(postgres_url: str, tenants: int, *, short_by: int = 0) -> Settings:
    """Settings whose limit leaves room for ``tenants`` more tenants, less ``short_by``."""
    async with FixtureManager(Settings(database_url=postgres_url, actor="pytest")) as m:
        async with m.store.control() as conn:
            counted = await conn.execute(text("SELECT count(*) FROM pg_catalog.pg_class"))
        limit = counted.scalar_one() + tenants * relations_per_tenant(m.store.metadata) - short_by
    return Settings(database_url=postgres_url, actor="pytest", catalog_limit=limit)


async def test_every_way_of_creating_a_tenant_is_refused_past_the_catalog_limit(
    postgres_url: str,
) -> None:
    settings = await _room_for(postgres_url, 1, short_by=1)
    async with FixtureManager(settings) as manager:
        with pytest.raises(CatalogFullError, match="TENANCY_CATALOG_LIMIT"):
            await manager.create_tenant("cat1")
        with pytest.raises(CatalogFullError):
            await manager.apply_tenant_config(
                TenantFixture(tenant_id="cat2", tier="premium"), create=True
            )
        config_fixture = ConfigFixture(settings)
        try:
            with pytest.raises(CatalogFullError):
                await config_fixture.apply_tenant_config(TenantFixture(tenant_id="cat3"))
        finally:
            await config_fixture.aclose()

        for tenant_id in ("cat1", "cat2", "cat3"):
            assert not await manager.store.storage_exists(tenant_id)
        assert await manager.list_tenants() == []


async def test_the_catalog_limit_counts_relations_exactly(postgres_url: str) -> None:
    async with FixtureManager(Settings(database_url=postgres_url, actor="pytest")) as manager:
        async with manager.store.control() as conn:
            # pg_class's estimate is fresh now; 300 relations later it is stale.
            await conn.execute(text("ANALYZE pg_catalog.pg_class"))
        async with manager.store.control() as conn:
            await conn.execute(text("CREATE SCHEMA catalog_filler"))
            for i in range(150):
                await conn.execute(text(f"CREATE TABLE catalog_filler.t{i} (id int PRIMARY KEY)"))
    try:
        settings = await _room_for(postgres_url, 1, short_by=1)
        async with FixtureManager(settings) as manager:
            with pytest.raises(CatalogFullError) as refused:
                await manager.create_tenant("just_over")
            assert refused.value.relations + refused.value.adding == refused.value.limit + 1

        async with FixtureManager(await _room_for(postgres_url, 1)) as manager:
            await manager.create_tenant("just_fits")
            assert await manager.store.storage_exists("just_fits")
            await drop_every_tenant(manager)
    finally:
        async with (
            FixtureManager(Settings(database_url=postgres_url)) as manager,
            manager.store.control() as conn,
        ):
            await conn.execute(text("DROP SCHEMA catalog_filler CASCADE"))


async def test_two_creations_at_the_limit_take_turns_and_only_one_gets_in(
    postgres_url: str,
) -> None:
    settings = await _room_for(postgres_url, 1)
    async with FixtureManager(settings) as one, FixtureManager(settings) as other:
        try:
            outcomes = await asyncio.gather(
                one.create_tenant("first_in"),
                other.create_tenant("second_in"),
                return_exceptions=True,
            )
            refused = [o for o in outcomes if isinstance(o, CatalogFullError)]
            assert len(refused) == 1, outcomes
            assert len(await one.list_tenants()) == 1
        finally:
            await drop_every_tenant(one)


async def test_warm_up_stops_at_the_catalog_limit_saying_how_many_spares_it_made(
    postgres_url: str,
) -> None:
    per_tenant_half = 40  # a spare's relations vary a little from the estimate
    settings = await _room_for(postgres_url, 2, short_by=-per_tenant_half)
    async with FixtureManager(settings) as manager:
        try:
            with pytest.raises(CatalogFullError, match="warm-up made 2 of 4 spare schemas"):
                await manager.warm_up(4)
            assert await manager.warm_up(2) == 0  # the two it made are kept
        finally:
            await manager.warm_up(0)
