"""Managers of one process on one PostgreSQL database share what SQLAlchemy compiled:
the second manager repeats the first one's work without compiling a statement again,
and its connections are set up as the first one's (JSON documents read as documents)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.store.postgres.store import PostgresTenantStore
from tests.cleanup import drop_every_tenant

pytestmark = pytest.mark.postgres
TENANT = "shared_dialect"


def _compiled(manager: FixtureManager) -> int:
    store = manager.store
    assert isinstance(store, PostgresTenantStore)
    return len(store.engine.sync_engine.get_execution_options()["compiled_cache"])


async def test_a_second_manager_compiles_nothing_the_first_one_compiled(postgres_url: str) -> None:
    settings = Settings(database_url=postgres_url, actor="pytest")
    async with FixtureManager(settings) as first:
        await drop_every_tenant(first)
        await first.create_tenant(TENANT)
        await first.load_fixtures(TENANT)
        await first.validate_tenant(TENANT)
        try:
            async with FixtureManager(settings) as second:
                assert isinstance(second.store, PostgresTenantStore)
                assert isinstance(first.store, PostgresTenantStore)
                shared = first.store.engine.sync_engine.dialect
                assert second.store.engine.sync_engine.dialect is shared
                before = _compiled(second)
                assert (await second.validate_tenant(TENANT)).ok
                assert _compiled(second) == before

                async with second.store.session(TENANT, readonly=True) as session:
                    artists = session.metadata.tables["tenant.artists"]
                    query = select(artists.c.genres).where(artists.c.genres.is_not(None))
                    genres = (await session.connection.execute(query.limit(1))).scalar_one()
                assert isinstance(genres, list)
        finally:
            await drop_every_tenant(first)


async def test_managers_on_other_connection_settings_do_not_share(postgres_url: str) -> None:
    plain = Settings(database_url=postgres_url, actor="pytest")
    async with FixtureManager(plain) as first:
        await first.list_tenants()
        other = Settings(
            database_url=f"{postgres_url}?prepared_statement_cache_size=10", actor="pytest"
        )
        async with FixtureManager(other) as second:
            await second.list_tenants()
            assert isinstance(first.store, PostgresTenantStore)
            assert isinstance(second.store, PostgresTenantStore)
            dialect = second.store.engine.sync_engine.dialect
            assert dialect is not first.store.engine.sync_engine.dialect
