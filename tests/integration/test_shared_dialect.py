"""Managers of one process on one PostgreSQL database share what SQLAlchemy compiled:
the second manager repeats the first one's work without compiling a statement again,
and its connections are set up as the first one's (JSON documents read as documents,
``do_connect`` listeners heard); engines whose arguments cannot be compared share
nothing."""

from __future__ import annotations

import ssl
from typing import Any

import pytest
from sqlalchemy import event, select, text

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.store.postgres import engines
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


async def test_a_do_connect_listener_on_a_shared_dialect_engine_sets_up_its_connections(
    postgres_url: str,
) -> None:
    settings = Settings(database_url=postgres_url, actor="pytest")
    async with FixtureManager(settings) as first, FixtureManager(settings) as second:
        await first.list_tenants()
        assert isinstance(second.store, PostgresTenantStore)
        engine = second.store.engine

        def name_it(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
            params.setdefault("server_settings", {})["application_name"] = "named_by_listener"

        await engine.dispose()  # the connections the manager opened are set up already
        event.listen(engine.sync_engine, "do_connect", name_it)
        try:
            async with engine.connect() as conn:
                name = (await conn.execute(text("SHOW application_name"))).scalar_one()
        finally:
            event.remove(engine.sync_engine, "do_connect", name_it)
        assert name == "named_by_listener"


def test_engines_with_a_tls_context_in_their_arguments_share_nothing(postgres_url: str) -> None:
    url = Settings(database_url=postgres_url).url
    context = ssl.create_default_context()
    first = engines.engine_for(url, {"ssl": context}, pool_size=1, max_overflow=0)
    engines.share_dialect(first, {"ssl": context})
    second = engines.engine_for(url, {"ssl": context}, pool_size=1, max_overflow=0)
    assert second.sync_engine.dialect is not first.sync_engine.dialect
