"""Objects a tenant's storage holds that its schema does not declare, on both backends:
``validate-data`` fails on each, and a load refuses while one would run during it.

They are planted behind the library's back, as an attacker with the database's
superuser (PostgreSQL) or write access to the tenant's file (SQLite) would.
"""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from tenancy_fixtures import FixtureManager, ValidationFailedError
from tenancy_fixtures.store.postgres import foreign_objects
from tests.integration.reports import failures
from tests.postgres import asyncpg_dsn

TENANT = "planted"


async def _plant(manager: FixtureManager, *statements: str) -> None:
    """Run SQL on the tenant's storage behind the library's back: a superuser connection
    with ``{s}`` for the tenant's schema (PostgreSQL), a plain sqlite3 connection to the
    tenant's file with ``{s}`` for ``main`` (SQLite)."""
    if manager.store.backend == "sqlite":

        def run() -> None:
            connection = sqlite3.connect(manager.store.storage_name(TENANT))
            try:
                with connection:
                    for statement in statements:
                        connection.execute(statement.format(s="main"))
            finally:
                connection.close()

        await asyncio.to_thread(run)
        return
    connection = await asyncpg.connect(asyncpg_dsn(manager.settings.database_url))
    try:
        for statement in statements:
            await connection.execute(statement.format(s=TENANT))
    finally:
        await connection.close()


async def _count(manager: FixtureManager, table: str) -> int:
    async with manager.store.session(TENANT, readonly=True) as session:
        found = await session.connection.exec_driver_sql(
            f"SELECT count(*) FROM {'main' if manager.store.backend == 'sqlite' else TENANT}"
            f".{table}"
        )
        return int(found.scalar_one())


async def test_a_freshly_loaded_tenant_holds_nothing_undeclared(
    manager: FixtureManager, demo_set: Path
) -> None:
    """A tenant made and loaded by the library passes the objects check."""
    await manager.create_tenant(TENANT)
    await manager.load_fixtures(TENANT, source=demo_set)

    report = await manager.validate_tenant(TENANT)

    assert [] == failures(report, "objects")
    async with manager.store.session(TENANT, readonly=True) as session:
        assert [] == await session.undeclared_objects()


async def test_an_undeclared_table_view_and_trigger_each_fail_the_objects_check(
    manager: FixtureManager, demo_set: Path
) -> None:
    """A table, a view and a trigger added to the tenant's storage are three failures."""
    await manager.create_tenant(TENANT)
    await manager.load_fixtures(TENANT, source=demo_set)
    trigger_body = (
        "BEGIN INSERT INTO stolen SELECT email FROM users; END"
        if manager.store.backend == "sqlite"
        else "EXECUTE FUNCTION {s}.grab()"
    )
    if manager.store.backend == "postgresql":
        await _plant(
            manager,
            "CREATE FUNCTION {s}.grab() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RETURN NULL; END $$",
        )
    await _plant(
        manager,
        "CREATE TABLE {s}.stolen (what text)",
        "CREATE VIEW {s}.emails AS SELECT email FROM {s}.users",
        "CREATE TRIGGER grab AFTER INSERT ON {s}.users "
        + ("FOR EACH ROW " if manager.store.backend == "sqlite" else "FOR EACH STATEMENT ")
        + trigger_body,
    )

    report = await manager.validate_tenant(TENANT)

    if manager.store.backend == "sqlite":
        expected = [
            "table stolen is not declared by the tenant schema",
            "view emails is not declared by the tenant schema",
            "trigger grab on users is not declared by the tenant schema",
        ]
    else:
        owner = await _superuser(manager)
        expected = [
            f"function grab() (owned by {owner}) is not declared by the tenant schema",
            f"table stolen (owned by {owner}) is not declared by the tenant schema",
            f"view emails (owned by {owner}) is not declared by the tenant schema",
            f"trigger grab on users (runs {TENANT}.grab()) is not declared by the tenant schema",
        ]
    assert expected == failures(report, "objects")
    assert not report.ok


async def _superuser(manager: FixtureManager) -> str:
    connection = await asyncpg.connect(asyncpg_dsn(manager.settings.database_url))
    try:
        return str(await connection.fetchval("SELECT current_user"))
    finally:
        await connection.close()


async def test_a_load_refuses_while_an_undeclared_trigger_would_fire_and_loads_once_it_is_gone(
    manager: FixtureManager, demo_set: Path
) -> None:
    """A trigger on users copying rows elsewhere: the forced load refuses and the trigger
    never fires; dropped again, the same load goes through."""
    await manager.create_tenant(TENANT)
    await manager.load_fixtures(TENANT, source=demo_set)
    if manager.store.backend == "sqlite":
        await _plant(
            manager,
            "CREATE TABLE {s}.stolen (what text)",
            "CREATE TRIGGER grab AFTER UPDATE ON {s}.users FOR EACH ROW "
            "BEGIN INSERT INTO stolen VALUES (NEW.email); END",
        )
    else:
        await _plant(
            manager,
            "CREATE TABLE {s}.stolen (what text)",
            "CREATE FUNCTION {s}.grab() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN INSERT INTO {s}.stolen SELECT email FROM {s}.users; RETURN NULL; END $$",
            "CREATE TRIGGER grab AFTER INSERT OR UPDATE ON {s}.users "
            "FOR EACH STATEMENT EXECUTE FUNCTION {s}.grab()",
        )

    with pytest.raises(ValidationFailedError) as refused:
        await manager.load_fixtures(TENANT, source=demo_set, force=True)
    stolen = await _count(manager, "stolen")
    await _plant(
        manager,
        "DROP TRIGGER grab" + ("" if manager.store.backend == "sqlite" else " ON {s}.users"),
    )
    reloaded = await manager.load_fixtures(TENANT, source=demo_set, force=True)

    assert 1 == len(refused.value.problems)
    assert refused.value.problems[0].startswith("trigger grab on users")
    assert 0 == stolen
    assert reloaded.rows > 0


@pytest.mark.postgres
async def test_postgres_a_default_calling_an_undeclared_function_refuses_loads(
    pg_manager: FixtureManager, demo_set: Path
) -> None:
    """A column default calling a function outside pg_catalog (owned by a superuser, so
    it would run as one) fails validation and refuses loads; an extension's is trusted."""
    manager = pg_manager
    await manager.create_tenant(TENANT)
    await manager.load_fixtures(TENANT, source=demo_set)
    await _plant(
        manager,
        "CREATE EXTENSION IF NOT EXISTS pgcrypto",
        "CREATE FUNCTION public.lp_grab() RETURNS text LANGUAGE sql SECURITY DEFINER "
        "AS $$ SELECT 'x' $$",
        "ALTER TABLE {s}.users ALTER COLUMN display_name SET DEFAULT public.lp_grab()",
        "ALTER TABLE {s}.artists ALTER COLUMN name SET DEFAULT public.gen_random_bytes(4)::text",
    )
    superuser = await _superuser(manager)
    try:
        report = await manager.validate_tenant(TENANT)
        with pytest.raises(ValidationFailedError) as refused:
            await manager.load_fixtures(TENANT, source=demo_set, force=True)
    finally:
        await _plant(
            manager,
            "ALTER TABLE {s}.users ALTER COLUMN display_name DROP DEFAULT",
            "ALTER TABLE {s}.artists ALTER COLUMN name DROP DEFAULT",
            "DROP FUNCTION public.lp_grab()",
            "DROP EXTENSION pgcrypto",
        )

    expected = f"function call lp_grab() on users (SECURITY DEFINER, owned by {superuser})"
    assert [f"{expected} is not declared by the tenant schema"] == failures(report, "objects")
    assert [
        f"{expected} is not part of the tenant schema and writing the tenant's tables would "
        "run it; remove it before loading (validate-data lists everything undeclared)"
    ] == refused.value.problems


@pytest.mark.postgres
async def test_postgres_the_objects_check_turns_jit_off_only_for_itself(
    pg_manager: FixtureManager,
) -> None:
    """The catalogue query runs without JIT (compiling it cost ~0.8 s a check once a few
    hundred schemas made its estimates large) and leaves the transaction's setting as it
    found it."""
    manager = pg_manager
    await manager.create_tenant(TENANT)
    declared = {t.name for t in manager.store.metadata.sorted_tables}
    async with manager.store.control() as conn:
        await conn.execute(text("SET LOCAL jit = on"))
        found = await foreign_objects.undeclared_objects(conn, TENANT, declared)
        after = (await conn.execute(text("SELECT current_setting('jit')"))).scalar_one()

    assert ([], "on") == (found, after)
