"""Tenants on a real Citus cluster: each tenant schema a distributed schema on one
worker, the control plane a plain schema on the coordinator, and every operation of
the library working through the coordinator as it does on one PostgreSQL server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import TextClause, select, text
from typer.testing import CliRunner

from tenancy_fixtures import FixtureManager
from tenancy_fixtures.cli.app import app
from tenancy_fixtures.errors import IntegrityViolationError, StorageError
from tests.cli.cli_runner import structlog_as_it_was

HEAD = "0003_daily_streams"


async def _distributed(coordinator: asyncpg.Connection, schema: str) -> bool:
    found = await coordinator.fetchval(
        "SELECT 1 FROM pg_dist_schema WHERE schemaid = to_regnamespace($1)", schema
    )
    return bool(found)


async def _shard_columns(coordinator: asyncpg.Connection, table: str) -> set[str]:
    """The column names of ``table``'s shard, read on the worker that holds it."""
    rows = await coordinator.fetch(
        "SELECT result FROM run_command_on_placements($1::regclass, $2)",
        table,
        "SELECT string_agg(attname, ',') FROM pg_attribute "
        "WHERE attrelid = '%s'::regclass AND attnum > 0 AND NOT attisdropped",
    )
    [row] = rows
    return set(row["result"].split(","))


async def _one_row(rows: Sequence[tuple[Any, ...]]) -> AsyncIterator[Sequence[tuple[Any, ...]]]:
    yield rows


async def _run_sharded(manager: FixtureManager, tenant: str, statement: TextClause) -> None:
    """Run ``statement`` in a session of ``tenant`` with schema-based sharding on."""
    async with manager.store.session(tenant) as session:
        conn = session.connection
        await conn.execute(text("SET LOCAL citus.enable_schema_based_sharding TO on"))
        await conn.execute(statement)


async def test_a_new_tenant_is_a_distributed_schema_and_the_control_plane_stays_local(
    citus: FixtureManager, coordinator: asyncpg.Connection, tenant_ids: Callable[[str], str]
) -> None:
    tenant = tenant_ids("provision")

    await citus.create_tenant(tenant)

    assert await _distributed(coordinator, tenant)
    assert not await _distributed(coordinator, "tenancy")
    local = await coordinator.fetchval(
        "SELECT count(*) FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid "
        "WHERE c.relnamespace = 'tenancy'::regnamespace"
    )
    assert local == 0, "no control-plane table is a Citus table"
    [placed] = await citus.placements(prefix=tenant)
    assert placed.node is not None
    assert placed.tables == len(citus.store.metadata.tables)
    assert (citus.store.distributed or "").startswith("citus")


async def test_every_connection_starts_with_schema_based_sharding_off(
    citus: FixtureManager,
) -> None:
    """Only provisioning turns it on, in its own transaction: a scratch or control-plane
    schema never becomes distributed, whatever the server's default."""
    async with citus.store.control() as conn:
        setting = await conn.execute(text("SHOW citus.enable_schema_based_sharding"))
        assert setting.scalar_one() == "off"


async def test_a_load_goes_through_the_coordinator_and_validates(
    citus: FixtureManager, tenant_ids: Callable[[str], str], demo_set: Path
) -> None:
    tenant = tenant_ids("load")
    await citus.create_tenant(tenant)

    report = await citus.load_fixtures(tenant, source=demo_set)
    again = await citus.load_fixtures(tenant, source=demo_set)
    integrity = await citus.validate_tenant(tenant)

    assert report.changed
    assert report.rows > 0
    assert not again.changed
    assert integrity.ok, integrity.problems
    status = await citus.tenant_status(tenant)
    assert status.total_rows == report.rows
    assert status.storage_bytes > 0, "sizes are read from the shards on the worker"


async def test_isolation_checks_see_a_colocation_group_of_the_tenants_own(
    citus: FixtureManager, tenant_ids: Callable[[str], str]
) -> None:
    first, second = tenant_ids("iso_a"), tenant_ids("iso_b")
    await citus.create_tenant(first)
    await citus.create_tenant(second)

    async with citus.store.session(first, readonly=True) as session:
        findings = await citus.store.check_isolation(session, other_tenants=[second])

    assert findings.problems == []
    assert any("colocation group of its own" in v for v in findings.verified)


async def test_a_refused_row_names_the_tenants_constraint_not_the_shards(
    citus: FixtureManager, tenant_ids: Callable[[str], str]
) -> None:
    tenant = tenant_ids("errors")
    await citus.create_tenant(tenant)
    users = citus.store.metadata.tables["tenant.users"]
    row = ("u1", "Ann", "ann@example.com", "SE", "free", None)
    columns = [c.name for c in users.columns]
    async with citus.store.session(tenant) as session:
        await session.write_table(users, columns, _one_row([row]), mode="insert")

    with pytest.raises(IntegrityViolationError) as refused:
        async with citus.store.session(tenant) as session:
            await session.write_table(users, columns, _one_row([row]), mode="insert")

    error = refused.value
    assert error.constraint == "pk_users"
    assert error.key == {"user_id": "u1"}
    assert '"pk_users"' in str(error)
    assert "_10" not in str(error), str(error)


async def test_a_foreign_key_to_another_tenant_is_refused_with_the_reason(
    citus: FixtureManager, tenant_ids: Callable[[str], str]
) -> None:
    first, second = tenant_ids("fk_a"), tenant_ids("fk_b")
    await citus.create_tenant(first)
    await citus.create_tenant(second)

    with pytest.raises(StorageError, match="its own tables only") as refused:
        async with citus.store.migrating(first) as session, session.altering():
            await session.connection.execute(
                text(
                    f'ALTER TABLE "{first}".playlists ADD CONSTRAINT fk_elsewhere '
                    f'FOREIGN KEY (owner_id) REFERENCES "{second}".users (user_id)'
                )
            )
    assert refused.value.tenant_id == first


async def test_create_schema_with_its_tables_in_one_statement_is_refused_with_the_way_round(
    citus: FixtureManager, tenant_ids: Callable[[str], str]
) -> None:
    """Provisioning creates the schema, then its tables; the one-statement form, which a
    hand-written script might use, is refused by Citus and the error says what to do."""
    tenant = tenant_ids("schema_elements")
    await citus.create_tenant(tenant)

    statement = text(f'CREATE SCHEMA "{tenant}_x" CREATE TABLE t (id integer PRIMARY KEY)')

    with pytest.raises(StorageError, match="separate statements"):
        await _run_sharded(citus, tenant, statement)


async def test_a_migration_reaches_the_shards_both_ways_and_drift_stays_clean(
    citus: FixtureManager, coordinator: asyncpg.Connection, tenant_ids: Callable[[str], str]
) -> None:
    tenant = tenant_ids("migrate")
    await citus.create_tenant(tenant)
    await citus.load_fixtures(tenant)
    table = f'"{tenant}".track_daily_stats'
    assert "streams" in await _shard_columns(coordinator, table)

    down = await citus.migrate([tenant], to="-1")
    assert "streams" not in await _shard_columns(coordinator, table)
    [behind] = await citus.check_drift([tenant])
    up = await citus.migrate([tenant])
    [at_head] = await citus.check_drift([tenant])

    assert [r.to_revision for r in down.results] == ["0002_retention_indexes"]
    assert [r.to_revision for r in up.results] == [HEAD]
    assert "streams" in await _shard_columns(coordinator, table)
    assert behind.findings == []
    assert at_head.findings == []


async def test_drift_finds_a_shard_left_behind_by_ddl_made_without_propagation(
    citus: FixtureManager, coordinator: asyncpg.Connection, tenant_ids: Callable[[str], str]
) -> None:
    tenant = tenant_ids("drift")
    await citus.create_tenant(tenant)
    await coordinator.execute(
        f'SET citus.enable_ddl_propagation TO off; ALTER TABLE "{tenant}".users '
        "ADD COLUMN nickname text; RESET citus.enable_ddl_propagation"
    )

    [report] = await citus.check_drift([tenant])

    assert "column users.nickname is not in the schema definition" in report.findings
    assert any(
        f.startswith("column users.nickname text is missing from shard") for f in report.findings
    ), report.findings


async def test_a_tenant_moves_online_to_the_other_worker_audited(
    citus: FixtureManager, tenant_ids: Callable[[str], str]
) -> None:
    tenant = tenant_ids("move")
    await citus.create_tenant(tenant)
    await citus.load_fixtures(tenant)
    [before] = await citus.placements(prefix=tenant)
    assert before.node is not None
    async with citus.store.control(readonly=True) as conn:
        workers = await conn.execute(
            text("SELECT nodename || ':' || nodeport FROM pg_dist_node WHERE shouldhaveshards")
        )
        target = next(w for w in workers.scalars() if w != str(before.node))

    source, moved_to = await citus.move_tenant(tenant, target)
    again = await citus.move_tenant(tenant, target)

    [after] = await citus.placements(prefix=tenant)
    assert (str(source), str(moved_to), str(after.node)) == (str(before.node), target, target)
    assert again == (moved_to, moved_to)
    assert (await citus.validate_tenant(tenant)).ok
    trail = [r for r in await citus.audit_log(tenant_id=tenant) if r.action == "tenant.move"]
    assert [r.outcome for r in trail] == ["unchanged", "ok"]
    assert trail[1].detail["to"] == target


async def test_a_move_to_a_node_that_is_not_a_worker_is_refused_naming_the_workers(
    citus: FixtureManager, tenant_ids: Callable[[str], str]
) -> None:
    tenant = tenant_ids("move_nowhere")
    await citus.create_tenant(tenant)

    with pytest.raises(StorageError, match="its workers: "):
        await citus.move_tenant(tenant, "127.0.0.1:1")


async def test_dropping_a_tenant_removes_its_distributed_schema_from_the_cluster(
    citus: FixtureManager, coordinator: asyncpg.Connection, tenant_ids: Callable[[str], str]
) -> None:
    tenant = tenant_ids("drop")
    await citus.create_tenant(tenant)
    await citus.load_fixtures(tenant)

    await citus.drop_tenant(tenant)

    assert not await _distributed(coordinator, tenant)
    on_workers = await coordinator.fetch(
        "SELECT result FROM run_command_on_workers($1)",
        f"SELECT count(*) FROM pg_namespace WHERE nspname = '{tenant}'",
    )
    assert [r["result"] for r in on_workers] == ["0"] * len(on_workers)


async def test_the_warm_pool_hands_out_distributed_spare_schemas(
    citus: FixtureManager, coordinator: asyncpg.Connection, tenant_ids: Callable[[str], str]
) -> None:
    tenant = tenant_ids("warm")
    try:
        created = await citus.warm_up(1)
        spares = await coordinator.fetch("SELECT schema_name FROM tenancy.schema_pool")
        assert created <= 1
        assert spares
        assert all([await _distributed(coordinator, r["schema_name"]) for r in spares])

        await citus.create_tenant(tenant)

        assert await _distributed(coordinator, tenant)
        taken = {r["schema_name"] for r in spares} - {
            r["schema_name"] for r in await coordinator.fetch("SELECT * FROM tenancy.schema_pool")
        }
        assert taken, "the tenant took a spare"
        await citus.load_fixtures(tenant)
        assert (await citus.validate_tenant(tenant)).ok
    finally:
        await citus.warm_up(0)


def test_the_placement_and_rebalance_commands_print_the_tenants_and_the_plan(
    citus_url: str, tenant_ids: Callable[[str], str]
) -> None:
    tenant = tenant_ids("cli")
    env = {"TENANCY_DATABASE_URL": citus_url, "TENANCY_DISTRIBUTED": "citus"}
    runner = CliRunner()
    # The CLI points structlog at the runner's stderr, closed once it returns.
    with structlog_as_it_was():
        _placement_and_plan(runner, tenant, env)


def _placement_and_plan(runner: CliRunner, tenant: str, env: dict[str, str]) -> None:
    try:
        made = runner.invoke(app, ["init-tenant", tenant], env=env)
        assert made.exit_code == 0, made.output

        placed = runner.invoke(app, ["placement", "--prefix", tenant, "--json"], env=env)
        plan = runner.invoke(app, ["rebalance"], env=env)

        assert placed.exit_code == 0, placed.output
        assert f'"tenant_id": "{tenant}"' in placed.output
        assert '"node": "' in placed.output
        assert plan.exit_code == 0, plan.output
        assert "nothing to move" in plan.output or "--yes" in plan.output
    finally:
        runner.invoke(app, ["cleanup", tenant, "--yes"], env=env)


async def test_rows_written_through_the_coordinator_are_read_back_from_the_worker(
    citus: FixtureManager, tenant_ids: Callable[[str], str], demo_set: Path
) -> None:
    tenant = tenant_ids("read")
    await citus.create_tenant(tenant)
    await citus.load_fixtures(tenant, source=demo_set)

    async with citus.store.session(tenant, readonly=True) as session:
        users = session.metadata.tables["tenant.users"]
        found = (await session.connection.execute(select(users.c.user_id))).scalars().all()

    assert found
