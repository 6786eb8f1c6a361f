"""Fleet migrations at their edges: tenants dropped while a run goes on, revision ids
the ledger cannot hold, tenants made beside a manager, targets that leave the history
for one tenant of many, a tenant ahead of the code, raw SQL on PostgreSQL, and a load
racing a migration."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tenancy_fixtures import ConfigFixture, FixtureManager, Settings, TenantFixture
from tenancy_fixtures.errors import (
    ConfigError,
    InvalidTenantIdError,
    MigrationError,
    SchemaOutdatedError,
    UnknownRevisionError,
)
from tenancy_fixtures.migrations import runner
from tenancy_fixtures.migrations.report import TenantMigration
from tenancy_fixtures.store import control_plane, migration_ledger
from tests.integration.test_migrations import BASE, BUILTIN_VERSIONS, HEAD


async def _tenants(manager: FixtureManager, *ids: str) -> list[str]:
    for tenant_id in ids:
        await manager.create_tenant(tenant_id)
    return list(ids)


async def test_a_tenant_dropped_while_a_fleet_run_goes_on_is_skipped_not_a_failure(
    manager: FixtureManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tenant deprovisioned between the run's plan and its turn failed the run ("does
    not exist", exit 9) and, without keep_going, left every tenant after it
    not attempted. One the caller named is still a failure."""
    ids = await _tenants(manager, "edge_a", "edge_b", "edge_c")
    await manager.migrate(to=BASE)
    planned = runner._plan_fleet
    dropping: list[str] = [ids[0]]

    async def plan_then_drop(*args: Any) -> list[TenantMigration]:
        plan = await planned(*args)
        for tenant_id in dropping:
            await manager.drop_tenant(tenant_id)
        return plan

    monkeypatch.setattr(runner, "_plan_fleet", plan_then_drop)
    report = await manager.migrate(concurrency=1)

    assert report.ok, report.results
    assert report.stopped is None
    assert [(r.tenant_id, r.outcome) for r in report.results] == [
        (ids[0], "skipped"),
        (ids[1], "migrated"),
        (ids[2], "migrated"),
    ]
    assert {e.tenant_id: e.revision for e in await manager.migration_status()} == {
        ids[1]: HEAD,
        ids[2]: HEAD,
    }

    dropping.clear()
    await manager.migrate(to=BASE)
    dropping.append(ids[1])
    named = await manager.migrate(ids[1:], concurrency=1)

    assert [(r.tenant_id, r.outcome) for r in named.results] == [
        (ids[1], "failed"),
        (ids[2], "not_attempted"),
    ]
    assert f"tenant '{ids[1]}' does not exist" == named.results[0].error


def _history_plus(tmp_path: Path, name: str, source: str) -> Path:
    """The built-in history and one more revision file, ``name`` holding ``source``."""
    history = tmp_path / "history"
    shutil.copytree(BUILTIN_VERSIONS, history / "versions", ignore=shutil.ignore_patterns("__*"))
    (history / "versions" / name).write_text(source)
    return history


def _history_with(tmp_path: Path, revision: str) -> Path:
    """The built-in history and one more revision after its head, named ``revision``."""
    return _history_plus(
        tmp_path,
        "0004_long.py",
        f'revision = "{revision}"\ndown_revision = "{HEAD}"\n\n\n'
        "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n",
    )


async def test_a_revision_id_longer_than_the_ledger_holds_is_refused_naming_its_file(
    manager: FixtureManager, settings: Settings, tmp_path: Path
) -> None:
    """The ledger keeps ids of up to 64 characters: on PostgreSQL creating any tenant,
    and migrating each, failed on "value too long" after the revision had run; SQLite
    kept the id whole. Refused as the history is read, naming the file, on both."""
    long_id = "0004_" + "x" * 60
    history = _history_with(tmp_path, long_id)
    await manager.create_tenant("edge_kept")

    async with FixtureManager(settings, migrations=history) as newer:
        with pytest.raises(MigrationError) as creating:
            await newer.create_tenant("edge_long")
        with pytest.raises(MigrationError) as migrating:
            await newer.migrate()

    for raised in (creating, migrating):
        assert f"{history / 'versions' / '0004_long.py'} declares revision {long_id!r}" in str(
            raised.value
        )
        assert "at most 64" in str(raised.value)
    assert [t.tenant_id for t in await manager.list_tenants()] == ["edge_kept"]
    [entry] = await manager.migration_status()
    assert (entry.revision, entry.status) == (HEAD, "ok")


async def test_a_tenant_a_config_fixture_creates_on_a_managers_store_starts_at_the_head(
    manager: FixtureManager,
) -> None:
    """``ConfigFixture(settings, store=manager.store)`` created tenants without a ledger
    row: they read as at the first revision, so loads were refused as behind the head,
    and ``migrate`` failed on them creating indexes they had."""
    fixture = ConfigFixture(manager.settings, store=manager.store)
    try:
        await fixture.apply_tenant_config(TenantFixture(tenant_id="edge_fixture"))
    finally:
        await fixture.aclose()

    [entry] = await manager.migration_status(["edge_fixture"])
    report = await manager.migrate(["edge_fixture"])

    assert (entry.revision, entry.status) == (HEAD, "ok")
    assert report.counts() == {"skipped": 1}
    assert (await manager.check_drift(["edge_fixture"]))[0].ok


async def test_a_step_leaving_the_history_for_one_tenant_of_a_fleet_names_it(
    manager: FixtureManager,
) -> None:
    """``--to -1`` refused with "-1 from 0001_baseline leaves the history", naming no
    tenant: which of a thousand was at the first revision?"""
    ids = await _tenants(manager, "edge_down", "edge_first", "edge_up")
    await manager.migrate([ids[1]], to=BASE)

    with pytest.raises(UnknownRevisionError) as raised:
        await manager.migrate(to="-1")

    assert (raised.value.tenant_id, raised.value.exit_code) == (ids[1], 2)
    assert str(raised.value).startswith(f"tenant '{ids[1]}': -1 from {BASE} leaves the history")
    status = {e.tenant_id: e.revision for e in await manager.migration_status()}
    assert status == {ids[0]: HEAD, ids[1]: BASE, ids[2]: HEAD}


async def test_validation_of_a_tenant_ahead_of_the_code_does_not_say_to_migrate_it(
    manager: FixtureManager,
) -> None:
    """``validate-data`` said "behind the head: run `tenancy-fixtures migrate -t newer`",
    which refuses a revision the code's history lacks."""
    await manager.create_tenant("edge_newer")
    async with manager.store.control() as conn:
        await migration_ledger.set_revision(conn, "edge_newer", "0009_from_a_newer_release")

    report = await manager.validate_tenant("edge_newer")

    assert not report.ok
    assert not any("behind the head" in p for p in report.problems), report.problems
    assert any("was it migrated by a newer release?" in p for p in report.problems)


RAW_SQL_REVISION = '''"""Raw SQL text, as Alembic habits write it: a table named with no schema."""

from alembic import op

revision = "0004_raw"
down_revision = "0003_daily_streams"


def upgrade() -> None:
    op.execute("UPDATE users SET display_name = display_name")


def downgrade() -> None:
    pass
'''


async def test_raw_sql_naming_no_schema_fails_on_postgresql_saying_how_to_write_it(
    manager: FixtureManager, settings: Settings, tmp_path: Path
) -> None:
    """On SQLite the bare name reaches the tenant's file and the revision passes; on
    PostgreSQL (``search_path`` pinned to ``pg_catalog``) it failed with 'relation "users"
    does not exist' of a table every tenant has, saying nothing of why."""
    history = _history_plus(tmp_path, "0004_raw.py", RAW_SQL_REVISION)
    await manager.create_tenant("edge_raw")

    async with FixtureManager(settings, migrations=history) as newer:
        report = await newer.migrate(["edge_raw"])

    [result] = report.results
    if manager.store.backend == "sqlite":
        assert result.outcome == "migrated", result.error
        return
    assert result.outcome == "failed"
    assert 'relation "users" does not exist' in (result.error or "")
    assert "names no schema" in (result.error or ""), result.error
    assert "sa.table(" in (result.error or "")


async def _until_one_waits_for_a_lock(manager: FixtureManager) -> None:
    """Until a session of this database waits for a lock (polled: the waiting is the
    server's to see)."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(600):
        async with manager.store.control() as conn:
            if (await conn.execute(waiting)).scalar_one():
                return
        await asyncio.sleep(0.05)
    raise AssertionError("no session came to wait for the tenant's lock within 30 s")


async def test_a_load_racing_a_downgrade_waits_for_it_and_is_refused_as_behind_the_head(
    pg_manager: FixtureManager, tmp_path: Path
) -> None:
    """A load read the ledger before it took the tenant's lock: one started while a
    migration took the tenant down passed the check (the head, as yet), waited for the
    migration, then loaded into the schema it left, behind the head. Loads now lock the
    tenant first, as erasures and key rotations do, and read the ledger the migration
    wrote."""
    history = _history_with(tmp_path, "0004_nothing")
    source = tmp_path / "set"
    source.mkdir()
    (source / "users.jsonl").write_text('{"user_id": "u1", "display_name": "Ann"}\n')
    async with FixtureManager(pg_manager.settings, migrations=history) as newer:
        await newer.create_tenant("edge_race")
        async with newer.store.migrating("edge_race") as session:  # a run taking it down
            assert await control_plane.lock_tenant(session.connection, "edge_race")
            await migration_ledger.set_revision(session.connection, "edge_race", HEAD)
            load = asyncio.create_task(newer.load_fixtures("edge_race", source))
            await _until_one_waits_for_a_lock(newer)

        with pytest.raises(SchemaOutdatedError, match="migrate -t edge_race"):
            await load


AUTOCOMMIT_REVISION = '''"""An index built concurrently, as Alembic's docs show it."""

from alembic import op

revision = "0004_concurrently"
down_revision = "0003_daily_streams"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_users_display_name", "users", ["display_name"], postgresql_concurrently=True
        )


def downgrade() -> None:
    op.drop_index("ix_users_display_name", table_name="users")
'''


async def test_a_revision_asking_for_autocommit_fails_saying_why_it_cannot_have_it(
    manager: FixtureManager, settings: Settings, tmp_path: Path
) -> None:
    """``op.get_context().autocommit_block()`` (``CREATE INDEX CONCURRENTLY``) failed the
    tenant with "AssertionError: " and nothing more: Alembic's block ends a transaction
    of its own, and a tenant's revisions run in the runner's."""
    history = _history_plus(tmp_path, "0004_concurrently.py", AUTOCOMMIT_REVISION)
    await manager.create_tenant("edge_concurrently")

    async with FixtureManager(settings, migrations=history) as newer:
        report = await newer.migrate(["edge_concurrently"])
        [entry] = await newer.migration_status(["edge_concurrently"])

    [result] = report.results
    assert result.outcome == "failed"
    assert (result.error or "").startswith("NotImplementedError: autocommit_block()"), result
    assert "one transaction" in (result.error or "")
    assert (entry.revision, entry.status) == (HEAD, "failed")


async def test_tenants_given_as_one_string_or_a_negative_canary_are_refused(
    manager: FixtureManager,
) -> None:
    """``migrate("edge_str")`` read each character as a tenant ("tenant '_' does not
    exist"; with tenants named so, it migrated those), as did ``check_drift`` and
    ``migration_status``; ``canary=-1`` made every tenant but the last a canary; an
    invalid id was "does not exist" (exit 4), not invalid."""
    await manager.create_tenant("edge_str")
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: manager.migrate("edge_str"),
        lambda: manager.check_drift("edge_str"),
        lambda: manager.migration_status("edge_str"),
    ]

    for call in calls:
        with pytest.raises(ConfigError, match=r"e\.g\. tenants=\['edge_str'\], not the string"):
            await call()
    with pytest.raises(ConfigError, match="canary must be 0 or more, not -1"):
        await manager.migrate(["edge_str"], canary=-1)
    with pytest.raises(InvalidTenantIdError):
        await manager.migrate(["../edge"])
    assert (await manager.migrate(["edge_str"])).counts() == {"skipped": 1}
