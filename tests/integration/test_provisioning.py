"""Fast provisioning: spare schemas on PostgreSQL, the template file on SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import func, select, text, update

from tenancy_fixtures import FixtureManager, Settings, TenantAlreadyExistsError
from tenancy_fixtures.fixtures.schema import SchemaFixture
from tenancy_fixtures.store.control_plane import schema_pool_table
from tenancy_fixtures.store.postgres import store as postgres_store
from tests.postgres import asyncpg_dsn


async def _spares(manager: FixtureManager) -> int:
    async with manager.store.control() as conn:
        counted = await conn.execute(select(func.count()).select_from(schema_pool_table))
        return int(counted.scalar_one())


@pytest.fixture(autouse=True)
async def _no_spares_left(manager: FixtureManager) -> AsyncIterator[None]:
    """Each test starts and ends with an empty pool (the database is shared)."""
    await manager.warm_up(0)
    yield
    await manager.warm_up(0)


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_tenant_created_from_a_spare_schema_is_complete(manager: FixtureManager) -> None:
    """A tenant made by renaming a spare has every table and constraint, and the spare is used."""
    await manager.warm_up(2)
    assert 2 == await _spares(manager)

    await manager.create_tenant("from_spare")

    assert 1 == await _spares(manager)
    async with manager.store.session("from_spare") as session:
        assert await SchemaFixture(manager.store.metadata).verify(session) == []
        foreign_keys = await session.connection.execute(
            text(
                "SELECT count(*) FROM pg_constraint c JOIN pg_namespace n "
                "ON n.oid = c.connamespace WHERE n.nspname = 'from_spare' AND c.contype = 'f'"
            )
        )
        assert foreign_keys.scalar_one() == sum(
            len(t.foreign_key_constraints) for t in manager.store.metadata.sorted_tables
        )


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_refused_create_gives_its_spare_back(manager: FixtureManager) -> None:
    """Creating an existing tenant from the pool rolls back: the spare stays spare."""
    await manager.create_tenant("taken")
    await manager.warm_up(1)

    with pytest.raises(TenantAlreadyExistsError):
        await manager.create_tenant("taken")

    assert 1 == await _spares(manager)


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_warm_up_tops_the_pool_up_and_does_not_overfill(manager: FixtureManager) -> None:
    """warm_up creates only the spares missing from the wanted count."""
    assert 3 == await manager.warm_up(3)
    assert 0 == await manager.warm_up(3)
    assert 2 == await manager.warm_up(5)
    assert 5 == await _spares(manager)
    assert 0 == await manager.warm_up(1)
    assert 1 == await _spares(manager)


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_warm_ups_at_once_fill_the_pool_only_to_the_count_wanted(
    manager: FixtureManager, settings: Settings
) -> None:
    """Two processes warming up at once (cron and the service, say) each counted the
    pool empty and each made every spare: ``warm-up --spares 4`` left 8."""
    async with FixtureManager(settings) as other:
        made = await asyncio.gather(manager.warm_up(4), other.warm_up(4))

    assert sum(made) == 4
    assert 4 == await _spares(manager)


async def test_tenants_get_the_whole_schema_however_they_are_provisioned(
    manager: FixtureManager,
) -> None:
    """After warm-up (spares or template file) new tenants pass the schema fixture's check."""
    await manager.warm_up(1)
    for tenant in ("first_new", "second_new"):
        await manager.create_tenant(tenant)
        async with manager.store.session(tenant) as session:
            assert await SchemaFixture(manager.store.metadata).verify(session) == []


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_warm_up_drops_stale_and_surplus_spares_a_few_per_transaction(
    manager: FixtureManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dropping many spares in one transaction ran PostgreSQL's lock table out of
    shared memory (200 spares): they go a batch at a time, all of them."""
    monkeypatch.setattr(postgres_store, "_SPARES_DROPPED_AT_ONCE", 2)
    assert 7 == await manager.warm_up(7)
    async with manager.store.control() as conn:  # three spares of an older schema
        await conn.execute(
            update(schema_pool_table)
            .where(
                schema_pool_table.c.schema_name.in_(
                    select(schema_pool_table.c.schema_name).limit(3).scalar_subquery()
                )
            )
            .values(checksum="an older schema")
        )

    assert 0 == await manager.warm_up(1)

    assert 1 == await _spares(manager)
    async with manager.store.control() as conn:
        left = await conn.execute(
            text("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tf_pool_%'")
        )
        assert 1 == left.scalar_one()
    assert 0 == await manager.warm_up(0)
    assert 0 == await _spares(manager)


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_warm_up_keeps_its_spares_while_another_transaction_holds_stale_ones(
    manager: FixtureManager, postgres_url: str
) -> None:
    """Stale spares another transaction holds are neither taken nor counted: counting
    them once dropped every current spare as surplus."""
    assert 5 == await manager.warm_up(5)
    async with manager.store.control() as conn:
        await conn.execute(
            update(schema_pool_table)
            .where(
                schema_pool_table.c.schema_name.in_(
                    select(schema_pool_table.c.schema_name)
                    .order_by(schema_pool_table.c.created_at)
                    .limit(2)
                    .scalar_subquery()
                )
            )
            .values(checksum="an older schema")
        )
    other = await asyncpg.connect(asyncpg_dsn(postgres_url))
    try:
        holding = other.transaction()
        await holding.start()
        await other.execute("DELETE FROM tenancy.schema_pool WHERE checksum = 'an older schema'")

        assert 0 == await manager.warm_up(3)
        assert 5 == await _spares(manager)  # the three current ones and the two held

        await holding.rollback()
    finally:
        await other.close()
    assert 0 == await manager.warm_up(3)  # now the stale ones go
    assert 3 == await _spares(manager)
