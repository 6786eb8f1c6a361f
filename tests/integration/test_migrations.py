"""Fleet migrations on both backends: every tenant moved through the revision history
with its data kept, failures rolled back alone, runs that resume and never collide."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Index,
    MetaData,
    String,
    Table,
    Text,
    delete,
    false,
    func,
    select,
    text,
)

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.errors import (
    InvalidTenantIdError,
    MigrationError,
    SchemaOutdatedError,
    TenantNotFoundError,
    UnknownRevisionError,
)
from tenancy_fixtures.migrations.scripts import BUILTIN_MIGRATIONS, MigrationScripts
from tenancy_fixtures.store import control_plane, migration_ledger, schema_checksum
from tenancy_fixtures.validation.integrity import IntegrityReport
from tests.cleanup import drop_every_tenant

HEAD = "0003_daily_streams"
BASE = "0001_baseline"
BUILTIN_VERSIONS = MigrationScripts(BUILTIN_MIGRATIONS).directory / "versions"

FAILING_REVISION = '''"""Refuse users without a name (fails where one is called 'unknown').

Revision ID: 0004_named_users
Revises: 0003_daily_streams
"""

from alembic import op

revision = "0004_named_users"
down_revision = "0003_daily_streams"


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.create_check_constraint("ck_users_named", "display_name <> 'unknown'")


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("ck_users_named", type_="check")
'''


@pytest.fixture
def fleet(manager: FixtureManager) -> FixtureManager:
    """The test's manager, whose tenants the ``manager`` fixture drops afterwards on
    PostgreSQL, where the database outlives the test (a SQLite data directory is the
    test's own and left as it is)."""
    return manager


async def _make_tenants(manager: FixtureManager, count: int, *, load: bool) -> list[str]:
    ids = [f"fleet_{i:03d}" for i in range(1, count + 1)]
    for tenant_id in ids:
        await manager.create_tenant(tenant_id)
        if load:
            await manager.load_fixtures(tenant_id)
    return ids


async def _columns(manager: FixtureManager, tenant_id: str, table: str) -> set[str]:
    async with manager.store.session(tenant_id, readonly=True) as session:

        def read(conn: object) -> set[str]:
            from sqlalchemy import inspect

            schema = None if session.schema_name == "main" else session.schema_name
            return {c["name"] for c in inspect(conn).get_columns(table, schema)}

        return await session.connection.run_sync(read)


async def _counts(manager: FixtureManager, tenant_id: str) -> dict[str, int]:
    async with manager.store.session(tenant_id, readonly=True) as session:
        return await control_plane.count_rows(session.connection, session.metadata.sorted_tables)


async def _streams(manager: FixtureManager, tenant_id: str) -> tuple[int, int]:
    """Streams in the daily aggregates, and plays of at least 30 s in the events."""
    async with manager.store.session(tenant_id, readonly=True) as session:
        conn = session.connection
        stats = session.metadata.tables["tenant.daily_stats"]
        events = session.metadata.tables["tenant.listening_events"]
        recorded = (
            await conn.execute(select(func.coalesce(func.sum(stats.c.streams), 0)))
        ).scalar()
        expected = (
            await conn.execute(
                select(func.count()).select_from(events).where(events.c.ms_played >= 30_000)
            )
        ).scalar()
        return int(recorded or 0), int(expected or 0)


async def test_a_fleet_moves_through_two_revisions_keeping_their_data(
    fleet: FixtureManager,
) -> None:
    """Tenants taken down to the first revision (and some with no ledger row, as 0.1.0
    left them) come back to the head with every row kept and streams backfilled. Twelve
    tenants on four workers: each worker migrates several in turn, interleaved."""
    ids = await _make_tenants(fleet, 12, load=False)
    for tenant_id in ids[:4]:
        await fleet.load_fixtures(tenant_id)
    before = {t: await _counts(fleet, t) for t in ids[:4]}

    down = await fleet.migrate(to="base", concurrency=4)
    assert down.counts() == {"migrated": 12}
    assert "streams" not in await _columns(fleet, ids[0], "daily_stats")
    async with fleet.store.control() as conn:
        await conn.execute(
            delete(control_plane.ledger_table).where(
                control_plane.ledger_table.c.tenant_id.in_(ids[::2])
            )
        )
    status = await fleet.migration_status()
    assert {e.revision for e in status} == {BASE}

    up = await fleet.migrate(concurrency=4)

    assert up.ok
    assert up.counts() == {"migrated": 12}
    assert all(r.steps == ["0002_retention_indexes", HEAD] for r in up.results)
    assert {e.revision for e in await fleet.migration_status()} == {HEAD}
    for tenant_id in ids[:4]:
        assert await _counts(fleet, tenant_id) == before[tenant_id]
        recorded, expected = await _streams(fleet, tenant_id)
        assert recorded == expected > 0
    assert all(r.ok for r in await fleet.check_drift())
    again = await fleet.migrate()
    assert again.counts() == {"skipped": 12}


async def test_a_downgrade_of_one_revision_removes_exactly_that_revision(
    fleet: FixtureManager,
) -> None:
    """``to="-1"`` undoes the head alone: the streams go, the retention index stays."""
    [tenant_id] = await _make_tenants(fleet, 1, load=True)

    report = await fleet.migrate(to="-1")

    assert [(r.from_revision, r.to_revision) for r in report.results] == [
        (HEAD, "0002_retention_indexes")
    ]
    assert "streams" not in await _columns(fleet, tenant_id, "track_daily_stats")
    [drift] = await fleet.check_drift()
    assert (drift.revision, drift.findings) == ("0002_retention_indexes", [])


async def test_drift_of_a_tenant_behind_the_head_is_judged_at_its_own_revision(
    fleet: FixtureManager,
) -> None:
    """The expected schema of an older revision is what its scripts build: a tenant at
    the first revision lacks the streams and is fine; a column planted there is not."""
    await fleet.create_tenant("older")
    await fleet.migrate(to=BASE)
    assert (await fleet.check_drift(["older"]))[0].ok

    await _plant(fleet, "older", ["ALTER TABLE {s}.tracks ADD COLUMN mood VARCHAR(20)"])
    [drift] = await fleet.check_drift(["older"])
    report = await fleet.validate_tenant("older")

    assert drift.findings == ["column tracks.mood is not in the schema definition"]
    assert any("behind the head" in p for p in report.problems)


async def test_a_new_tenant_starts_at_the_head(fleet: FixtureManager) -> None:
    await fleet.create_tenant("fresh")

    [entry] = await fleet.migration_status(["fresh"])
    status = await fleet.tenant_status("fresh")

    assert entry.revision == HEAD == status.revision
    assert (await fleet.check_drift(["fresh"]))[0].ok


async def test_a_load_into_a_tenant_behind_the_head_is_refused_naming_the_fix(
    fleet: FixtureManager,
) -> None:
    await fleet.create_tenant("behind")
    await fleet.migrate(to=BASE)

    with pytest.raises(SchemaOutdatedError, match="migrate -t behind"):
        await fleet.load_fixtures("behind")

    assert sum((await _counts(fleet, "behind")).values()) == 0


async def test_the_schema_check_of_a_tenant_dropped_on_the_way_says_not_found_not_outdated(
    fleet: FixtureManager,
) -> None:
    """A load (export, erasure) racing a drop got "schema behind the head: migrate it"."""
    await fleet.create_tenant("going")
    await fleet.drop_tenant("going")

    async with fleet.store.control() as conn:
        with pytest.raises(TenantNotFoundError):
            await migration_ledger.refuse_outdated(conn, "going", fleet.store.history)


async def test_a_tenant_recorded_at_a_revision_this_release_lacks_is_named_not_the_target(
    fleet: FixtureManager,
) -> None:
    """It read as the caller's bad ``--to`` (exit 2) naming no tenant."""
    await fleet.create_tenant("newer")
    async with fleet.store.control() as conn:
        await migration_ledger.set_revision(conn, "newer", "0009_from_a_newer_release")

    with pytest.raises(MigrationError) as raised:
        await fleet.migrate()

    assert not isinstance(raised.value, UnknownRevisionError)
    assert (9, "newer") == (raised.value.exit_code, raised.value.tenant_id)
    assert "recorded revision '0009_from_a_newer_release' is not in the history" in str(
        raised.value
    )


async def test_a_load_into_a_tenant_ahead_of_the_code_says_a_newer_release_migrated_it(
    fleet: FixtureManager,
) -> None:
    """It said "run `tenancy-fixtures migrate -t newer` first", which refuses the
    revision; one behind the head still gets that advice."""
    await fleet.create_tenant("newer")
    await fleet.create_tenant("older")
    await fleet.migrate(["older"], to=BASE)
    async with fleet.store.control() as conn:
        await migration_ledger.set_revision(conn, "newer", "0009_from_a_newer_release")

    with pytest.raises(SchemaOutdatedError) as ahead:
        await fleet.load_fixtures("newer")
    with pytest.raises(SchemaOutdatedError) as behind:
        await fleet.load_fixtures("older")

    assert (8, True, False) == (ahead.value.exit_code, ahead.value.unknown, behind.value.unknown)
    assert "0009_from_a_newer_release" in str(ahead.value)
    assert "not in this code's history: was it migrated by a newer release?" in str(ahead.value)
    assert f"`tenancy-fixtures migrate -t newer --to {HEAD}`" in str(ahead.value)
    assert "newer release" not in str(behind.value)
    assert str(behind.value).endswith("run `tenancy-fixtures migrate -t older` first")


def _failing_history(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    shutil.copytree(
        BUILTIN_VERSIONS, directory / "versions", ignore=shutil.ignore_patterns("__pycache__")
    )
    (directory / "versions" / "0004_named_users.py").write_text(FAILING_REVISION)
    return directory


async def _plant_unknown_user(manager: FixtureManager, tenant_id: str, tmp_path: Path) -> None:
    source = tmp_path / f"set_{tenant_id}"
    source.mkdir()
    (source / "users.jsonl").write_text('{"user_id": "u_unknown", "display_name": "unknown"}\n')
    await manager.load_fixtures(tenant_id, source)


FAILING = 5


@pytest.fixture
async def failing_fleet(
    settings: Settings, fleet: FixtureManager, tmp_path: Path
) -> AsyncIterator[tuple[FixtureManager, list[str]]]:
    """Twelve tenants at the built-in head; the sixth (``ids[FAILING]``) holds a user the
    next revision's CHECK refuses, so tenants run before it and after it. Yields a
    manager whose history has that revision."""
    ids = await _make_tenants(fleet, 12, load=False)
    await _plant_unknown_user(fleet, ids[FAILING], tmp_path)
    async with FixtureManager(settings, migrations=_failing_history(tmp_path)) as newer:
        yield newer, ids


async def test_a_tenant_whose_revision_fails_stops_the_run_and_rolls_back_alone(
    failing_fleet: tuple[FixtureManager, list[str]],
) -> None:
    manager, ids = failing_fleet

    report = await manager.migrate(concurrency=1)

    assert not report.ok
    assert report.stopped
    failed = report.with_outcome("failed")
    assert [r.tenant_id for r in failed] == [ids[FAILING]]
    assert "ck_users_named" in (failed[0].error or "") or "CHECK" in (failed[0].error or "")
    assert [r.tenant_id for r in report.with_outcome("migrated")] == ids[:FAILING]
    assert [r.tenant_id for r in report.with_outcome("not_attempted")] == ids[FAILING + 1 :]
    [entry] = await manager.migration_status([ids[FAILING]])
    assert (entry.revision, entry.status) == (HEAD, "failed")
    assert entry.error


async def test_keep_going_migrates_every_other_tenant_past_a_failure(
    failing_fleet: tuple[FixtureManager, list[str]],
) -> None:
    manager, ids = failing_fleet

    report = await manager.migrate(keep_going=True, concurrency=4)

    assert report.counts() == {"migrated": 11, "failed": 1}
    revisions = {e.tenant_id: e.revision for e in await manager.migration_status()}
    assert revisions.pop(ids[FAILING]) == HEAD
    assert set(revisions.values()) == {"0004_named_users"}


async def test_a_failed_canary_stops_the_run_before_the_rest(
    failing_fleet: tuple[FixtureManager, list[str]],
) -> None:
    manager, ids = failing_fleet

    canaries = ids[FAILING - 4 : FAILING + 1]  # the failing tenant is the last canary
    rest = [t for t in ids if t not in canaries]
    first = await manager.migrate(canaries + rest, canary=5, concurrency=1)

    assert first.stopped
    assert "canary" in first.stopped
    assert first.counts() == {"migrated": 4, "failed": 1, "not_attempted": 7}
    assert {r.tenant_id for r in first.with_outcome("not_attempted")} == set(rest)


async def test_sql_leaves_no_trace_when_its_revision_fails_nor_when_it_succeeds(
    failing_fleet: tuple[FixtureManager, list[str]],
) -> None:
    """A failing ``--sql`` preview wrote a 'failed' ledger row and audit record."""
    manager, ids = failing_fleet
    failing, passing = ids[FAILING], ids[0]
    ledger_before = await manager.migration_status([failing, passing])
    audit_before = await manager.audit_log(limit=1000)

    failed = await manager.migrate([failing], sql=True)
    shown = await manager.migrate([passing], sql=True)

    [result] = failed.results
    assert (result.outcome, result.sql) == ("failed", [])
    assert "ck_users_named" in (result.error or "") or "CHECK" in (result.error or "")
    assert not failed.ok
    assert shown.ok
    assert shown.results[0].sql
    assert await manager.migration_status([failing, passing]) == ledger_before
    assert await manager.audit_log(limit=1000) == audit_before


async def _remove_storage(manager: FixtureManager, tenant_id: str) -> None:
    """Behind the manager's back: drop the tenant's schema or delete its file, keeping
    its registration."""
    name = manager.store.storage_name(tenant_id)
    if manager.store.backend == "postgresql":
        async with manager.store.control() as conn:
            await conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
    else:
        Path(name).unlink()  # noqa: ASYNC240 (one file, gone in an instant)


async def test_a_tenant_whose_storage_is_missing_is_ledgered_and_audited_as_failed(
    fleet: FixtureManager,
) -> None:
    """It was reported failed (with the ``cleanup`` hint) but its ledger row still said
    ``ok`` and no ``tenant.migrate`` record said it failed, unlike any other failure."""
    kept, gone = await _make_tenants(fleet, 2, load=False)
    await fleet.migrate(to=BASE)
    await _remove_storage(fleet, gone)

    report = await fleet.migrate(keep_going=True)

    [failed] = report.with_outcome("failed")
    [failed_run] = [a.run_id for a in await fleet.audit_log(limit=1) if a.action == "fleet.migrate"]
    assert failed.tenant_id == gone
    assert f"cleanup {gone} removes the registration" in (failed.error or "")
    assert [r.tenant_id for r in report.with_outcome("migrated")] == [kept]
    [entry] = await fleet.migration_status([gone])
    assert (entry.revision, entry.status, entry.error) == (BASE, "failed", failed.error)
    [record] = [
        a for a in await fleet.audit_log(gone) if a.action == "tenant.migrate" and a.outcome != "ok"
    ]
    assert (record.outcome, record.run_id) == ("failed", failed_run)
    assert record.detail == {"from": BASE, "to": HEAD, "error": failed.error}
    sql = await fleet.migrate([gone], sql=True)  # a preview records nothing, as ever
    assert [r.outcome for r in sql.results] == ["failed"]
    assert await fleet.migration_status([gone]) == [entry]


async def test_dry_run_plans_and_sql_shows_one_tenant_changing_nothing(
    fleet: FixtureManager,
) -> None:
    ids = await _make_tenants(fleet, 3, load=False)
    await fleet.migrate(to=BASE)

    plan = await fleet.migrate(dry_run=True)
    sql = await fleet.migrate(sql=True)

    assert plan.counts() == {"planned": 3}
    assert [r.steps for r in plan.results] == [["0002_retention_indexes", HEAD]] * 3
    [shown] = sql.results
    statements = "\n".join(shown.sql)
    assert "ix_listening_events_played_at" in statements
    assert "streams" in statements
    assert "tenant." not in statements
    assert "__[SCHEMA" not in statements
    assert {e.revision for e in await fleet.migration_status()} == {BASE}
    assert "streams" not in await _columns(fleet, ids[0], "daily_stats")


async def _plant(manager: FixtureManager, tenant_id: str, statements: list[str]) -> None:
    async with manager.store.session(tenant_id) as session:
        schema = session.schema_name
        for statement in statements:
            await session.connection.execute(text(statement.format(s=schema)))


@pytest.mark.parametrize(
    ("planted", "found"),
    [
        (["ALTER TABLE {s}.tracks ADD COLUMN mood VARCHAR(20)"], "column tracks.mood is not in"),
        (["DROP INDEX {s}.ix_listening_events_played_at"], "index ix_listening_events_played_at"),
        (["ALTER TABLE {s}.tracks DROP COLUMN isrc"], "column tracks.isrc is missing"),
    ],
    ids=["added column", "dropped index", "dropped column"],
)
async def test_planted_drift_is_found_by_validation(
    fleet: FixtureManager, planted: list[str], found: str
) -> None:
    await fleet.create_tenant("drifted")
    await _plant(fleet, "drifted", planted)

    report = await fleet.validate_tenant("drifted")
    [drift] = await fleet.check_drift(["drifted"])

    assert not report.ok
    assert any(found in p for p in report.problems)
    assert any(found in f for f in drift.findings)


@pytest.mark.parametrize(
    ("planted", "found"),
    [
        (
            ["ALTER TABLE {s}.tracks ALTER COLUMN popularity TYPE BIGINT"],
            "column tracks.popularity has type BIGINT",
        ),
        (
            ["ALTER TABLE {s}.tracks DROP CONSTRAINT ck_tracks_duration_ms"],
            "CHECK constraint ck_tracks_duration_ms on tracks is missing",
        ),
        (
            ["ALTER TABLE {s}.users ALTER COLUMN country SET NOT NULL"],
            "column users.country is NOT NULL, the schema says nullable",
        ),
        (
            ["ALTER TABLE {s}.albums DROP CONSTRAINT fk_albums_artist_id_artists"],
            "foreign key fk_albums_artist_id_artists on albums (artist_id) is missing",
        ),
    ],
    ids=["changed type", "dropped check", "nullability", "dropped foreign key"],
)
async def test_planted_postgresql_drift_is_found(
    pg_manager: FixtureManager, planted: list[str], found: str
) -> None:
    await pg_manager.create_tenant("drifted")
    await _plant(pg_manager, "drifted", planted)

    [drift] = await pg_manager.check_drift(["drifted"])

    assert any(found in f for f in drift.findings), drift.findings


def _cli(database_url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "TENANCY_DATABASE_URL": database_url,
        "TENANCY_ACTOR": "pytest",
        **(env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-c", "from tenancy_fixtures.cli.app import main; main()", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def _schema_matches_ledger(manager: FixtureManager, tenant_id: str, revision: str) -> None:
    has_index = revision != BASE
    has_streams = revision == HEAD
    assert ("streams" in await _columns(manager, tenant_id, "daily_stats")) == has_streams
    async with manager.store.session(tenant_id, readonly=True) as session:

        def indexes(conn: object) -> set[str]:
            from sqlalchemy import inspect

            schema = None if session.schema_name == "main" else session.schema_name
            return {str(i["name"]) for i in inspect(conn).get_indexes("listening_events", schema)}

        names = await session.connection.run_sync(indexes)
    assert ("ix_listening_events_played_at" in names) == has_index, (tenant_id, revision)


async def _until_its_transactions_ended(manager: FixtureManager) -> None:
    """PostgreSQL finishes (or rolls back) a killed client's transaction on its own time:
    wait until no other session of this database is busy, so the checks that follow read
    a settled state (SQLite's lock dies with the process)."""
    if manager.store.backend != "postgresql":
        return
    busy = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND state <> 'idle'"
    )
    for _ in range(300):
        async with manager.store.control(readonly=True) as conn:
            if not (await conn.execute(busy)).scalar_one():
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the killed run's transaction did not end within 15 s")


async def _at_head(manager: FixtureManager) -> int:
    return sum(1 for e in await manager.migration_status() if e.revision == HEAD)


async def test_a_run_killed_at_random_points_leaves_no_tenant_half_migrated_and_resumes(
    fleet: FixtureManager, database_url: str
) -> None:
    ids = await _make_tenants(fleet, 12, load=False)
    for tenant_id in ids[::5]:
        await fleet.load_fixtures(tenant_id)
    before = {t: await _counts(fleet, t) for t in ids[::5]}
    started = time.perf_counter()
    await fleet.migrate(to=BASE, concurrency=4)
    # How long a tenant's migration takes on this backend and machine (rather less:
    # up to four ran at once), so that the kills below land early in a run.
    pace = (time.perf_counter() - started) / len(ids)
    await fleet.store.dispose()
    chance = random.Random(int(os.environ.get("TF_KILL_SEED", "1705")))
    interrupted = []
    for _ in range(3):
        at_head = await _at_head(fleet)
        process = _cli(database_url, "migrate", "--all", "--concurrency", "1", "--json")
        # Kill once this run has migrated a tenant, a random moment within about four
        # tenants' migrations later (polled: the state is another process's, no event
        # can signal it): inside a migration or between two, before the fleet is done.
        while await _at_head(fleet) == at_head and process.poll() is None:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await asyncio.sleep(chance.uniform(0.0, 4 * pace))
        process.send_signal(signal.SIGKILL)
        process.communicate()
        await _until_its_transactions_ended(fleet)
        for entry in await fleet.migration_status():
            await _schema_matches_ledger(fleet, entry.tenant_id, entry.revision or BASE)
        interrupted.append(await _at_head(fleet))
        await fleet.store.dispose()
    assert any(0 < done < len(ids) for done in interrupted), interrupted
    finish = _cli(database_url, "migrate", "--all", "--json")
    out, err = finish.communicate(timeout=300)
    assert finish.returncode == 0, err
    assert json.loads(out)["ok"]
    assert {e.revision for e in await fleet.migration_status()} == {HEAD}
    for tenant_id, counts in before.items():
        assert await _counts(fleet, tenant_id) == counts
        recorded, expected = await _streams(fleet, tenant_id)
        assert recorded == expected
    assert all(r.ok for r in await fleet.check_drift())


async def test_two_runs_at_once_never_apply_a_revision_twice(
    fleet: FixtureManager, database_url: str
) -> None:
    ids = await _make_tenants(fleet, 20, load=False)
    await fleet.migrate(to=BASE)
    await fleet.store.dispose()
    started = control_plane.utcnow()

    runs = [_cli(database_url, "migrate", "--all", "--json") for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]

    assert [run.returncode for run in runs] == [0, 0], [err for _, err in outputs]
    migrated = [
        r["tenant_id"]
        for out, _ in outputs
        for r in json.loads(out)["tenants"]
        if r["outcome"] == "migrated"
    ]
    assert sorted(migrated) == ids
    audit = await fleet.audit_log(limit=1000)
    applied = [
        str(a.tenant_id)
        for a in audit
        if a.action == "tenant.migrate" and a.outcome == "ok" and a.at >= started
    ]
    assert sorted(applied) == ids
    assert all(r.ok for r in await fleet.check_drift())


BLOCKING_REVISION = '''"""An index, then a data migration that blocks (in Python or in SQL).

Revision ID: 0004_blocking
Revises: 0003_daily_streams
"""

import os
import time
from pathlib import Path

from alembic import op

revision = "0004_blocking"
down_revision = "0003_daily_streams"


def upgrade() -> None:
    op.create_index("ix_users_display_name", "users", ["display_name"])
    if not os.environ.get("TF_STARTED"):
        return
    Path(os.environ["TF_STARTED"]).touch()
    if os.environ["TF_BLOCK_IN"] == "python":  # until a file that never comes, or 30 s
        for _ in range(600):
            if Path(os.environ["TF_STARTED"] + ".never").exists():
                break
            time.sleep(0.05)
    elif op.get_bind().dialect.name == "postgresql":
        op.execute("SELECT pg_sleep(30)")
    else:  # a count of a billion rows: minutes
        op.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
            "WHERE i < 1000000000) SELECT count(*) FROM n"
        )


def downgrade() -> None:
    op.drop_index("ix_users_display_name", table_name="users")
'''


@pytest.mark.parametrize("block_in", ["python", "sql"])
async def test_one_ctrl_c_stops_a_blocking_revision_rolled_back_and_ledgered(
    fleet: FixtureManager, database_url: str, tmp_path: Path, block_in: str
) -> None:
    """The first SIGINT was ignored while a revision ran Python code (only a second one
    stopped the run, after the sleep), and neither left a trace in the ledger; on SQLite
    a long statement held even the second one off until it ended."""
    history = tmp_path / "migrations"
    shutil.copytree(BUILTIN_VERSIONS, history / "versions", ignore=shutil.ignore_patterns("__*"))
    (history / "versions" / "0004_blocking.py").write_text(BLOCKING_REVISION)
    [tenant_id] = await _make_tenants(fleet, 1, load=False)
    await fleet.store.dispose()
    started = tmp_path / "started"
    env = {"TENANCY_MIGRATIONS": str(history), "TF_STARTED": str(started), "TF_BLOCK_IN": block_in}

    begun = control_plane.utcnow()
    process = _cli(database_url, "migrate", "-t", tenant_id, env=env)
    await _until(started, process)
    await asyncio.sleep(0.2)  # into the wait (or the statement)
    interrupted = time.perf_counter()
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    stopped_after = time.perf_counter() - interrupted

    assert process.returncode == 130, err
    assert stopped_after < 10
    assert "interrupted" in err
    await _until_its_transactions_ended(fleet)
    [entry] = await fleet.migration_status([tenant_id])
    assert (entry.revision, entry.status) == (HEAD, "failed")
    assert "interrupted" in (entry.error or "")
    [record] = [
        a
        for a in await fleet.audit_log(tenant_id)
        if a.action == "tenant.migrate" and a.at >= begun  # not a former fleet_001's
    ]
    assert (record.outcome, record.detail["to"]) == ("cancelled", "0004_blocking")
    async with fleet.store.session(tenant_id, readonly=True) as session:

        def indexes(conn: object) -> set[str]:
            from sqlalchemy import inspect

            schema = None if session.schema_name == "main" else session.schema_name
            return {str(i["name"]) for i in inspect(conn).get_indexes("users", schema)}

        assert "ix_users_display_name" not in await session.connection.run_sync(indexes)


CAUGHT_UP_REVISION = '''"""Nothing, but a run can be held between its plan and its steps.

Revision ID: 0004_nothing
Revises: 0003_daily_streams
"""

import os
import time
from pathlib import Path

revision = "0004_nothing"
down_revision = "0003_daily_streams"

# Imported as a run plans, after it read the ledger: $TF_PLANNED says so, and the run
# waits there until another one touches $TF_STEPPING in its step.
if os.environ.get("TF_PLANNED"):
    Path(os.environ["TF_PLANNED"]).touch()
    for _ in range(1200):
        if Path(os.environ["TF_WAIT_FOR"]).exists():
            break
        time.sleep(0.05)


def _step() -> None:
    if os.environ.get("TF_STEPPING"):
        Path(os.environ["TF_STEPPING"]).touch()
        time.sleep(0.5)


def upgrade() -> None:
    _step()


def downgrade() -> None:
    _step()
'''


async def _until(path: Path, process: subprocess.Popen[str]) -> None:
    """Until ``path`` exists (polled: another process makes it), or ``process`` ended."""
    for _ in range(1200):
        if path.exists() or process.poll() is not None:  # noqa: ASYNC240 (a stat)
            return
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("start", "offset", "end"),
    [("0004_nothing", "-1", HEAD), (HEAD, "+1", "0004_nothing")],
    ids=["down", "up"],
)
async def test_two_runs_at_once_of_a_relative_target_move_a_tenant_by_it_once(
    settings: Settings,
    fleet: FixtureManager,
    database_url: str,
    tmp_path: Path,
    start: str,
    offset: str,
    end: str,
) -> None:
    """A run that planned ``-1`` counted it again, once it had the tenant's lock, from
    where another run had moved the tenant meanwhile: 0004 -> 0003 -> 0002 dropped a
    column (``+1`` from the head exited 2)."""
    history = tmp_path / "migrations"
    shutil.copytree(BUILTIN_VERSIONS, history / "versions", ignore=shutil.ignore_patterns("__*"))
    (history / "versions" / "0004_nothing.py").write_text(CAUGHT_UP_REVISION)
    [tenant_id] = await _make_tenants(fleet, 1, load=False)
    async with FixtureManager(settings, migrations=history) as newer:
        await newer.migrate(to=start)
    await fleet.store.dispose()
    planned, stepping = tmp_path / "planned", tmp_path / "stepping"
    args = ("migrate", "-t", tenant_id, "--to", offset, "--json")
    env = {"TENANCY_MIGRATIONS": str(history)}

    late = _cli(
        database_url, *args, env={**env, "TF_PLANNED": str(planned), "TF_WAIT_FOR": str(stepping)}
    )
    await _until(planned, late)
    moving = _cli(database_url, *args, env={**env, "TF_STEPPING": str(stepping)})
    outputs = [run.communicate(timeout=120) for run in (moving, late)]

    assert [run.returncode for run in (moving, late)] == [0, 0], [e for _, e in outputs]
    [moved], [waited] = (json.loads(out)["tenants"] for out, _ in outputs)
    assert (moved["outcome"], moved["from_revision"], moved["to_revision"]) == (
        "migrated",
        start,
        end,
    )
    # The late run had planned the same step; it took the lock, found the tenant moved,
    # and left it (a tenant skipped at planning is never timed).
    assert (waited["outcome"], waited["steps"], waited["seconds"] > 0) == ("skipped", [], True)
    [entry] = await fleet.migration_status([tenant_id])
    assert entry.revision == end
    assert "streams" in await _columns(fleet, tenant_id, "daily_stats")


async def test_concurrent_tenants_each_run_their_own_operations(
    pg_manager: FixtureManager,
) -> None:
    """Alembic's ``op`` is one module-wide proxy; tenants migrated at the same time on
    one event loop still each change only their own schema."""
    ids = await _make_tenants(pg_manager, 12, load=False)
    await pg_manager.migrate(to=BASE, concurrency=12)

    report = await pg_manager.migrate(concurrency=12)

    assert report.counts() == {"migrated": 12}
    assert all(r.ok for r in await pg_manager.check_drift(ids))


NOTES_V1 = '''"""Notes.

Revision ID: n1
"""

import sqlalchemy as sa
from alembic import op

revision = "n1"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "notes",
        sa.Column("note_id", sa.String(32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("note_id", name="pk_notes"),
    )


def downgrade() -> None:
    op.drop_table("notes")
'''

NOTES_V2 = '''"""Pinned notes, found fast.

Revision ID: n2
Revises: n1
"""

import sqlalchemy as sa
from alembic import op

revision = "n2"
down_revision = "n1"


def upgrade() -> None:
    with op.batch_alter_table("notes") as batch:
        batch.add_column(
            sa.Column("pinned", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_index("ix_notes_pinned", "notes", ["pinned"])


def downgrade() -> None:
    op.drop_index("ix_notes_pinned", table_name="notes")
    with op.batch_alter_table("notes") as batch:
        batch.drop_column("pinned")
'''


NOTES_V3 = '''"""Notes lose their body.

Revision ID: n3
Revises: n2
"""

import sqlalchemy as sa
from alembic import op

revision = "n3"
down_revision = "n2"


def upgrade() -> None:
    with op.batch_alter_table("notes") as batch:
        batch.drop_column("body")


def downgrade() -> None:
    with op.batch_alter_table("notes") as batch:
        batch.add_column(sa.Column("body", sa.Text(), server_default="", nullable=False))
'''


def _notes(version: int) -> MetaData:
    md = MetaData()
    columns: list[Column[Any]] = [Column("note_id", String(32), primary_key=True)]
    if version < 3:
        columns.append(Column("body", Text, nullable=False))
    if version >= 2:
        pinned = Column("pinned", Boolean, nullable=False, default=False, server_default=false())
        columns.append(pinned)
    table = Table("notes", md, *columns)
    table.primary_key.name = "pk_notes"
    if version >= 2:
        Index("ix_notes_pinned", table.c.pinned)
    return md


def _history(tmp_path: Path, *revisions: str) -> Path:
    directory = tmp_path / f"notes_history_{len(revisions)}"
    (directory / "versions").mkdir(parents=True)
    for i, source in enumerate(revisions, start=1):
        (directory / "versions" / f"n{i}.py").write_text(source)
    return directory


async def test_your_own_schema_migrates_with_your_own_alembic_directory(
    settings: Settings, tmp_path: Path
) -> None:
    one, two = _history(tmp_path, NOTES_V1), _history(tmp_path, NOTES_V1, NOTES_V2)
    source = tmp_path / "notes_set"
    source.mkdir()
    (source / "notes.jsonl").write_text('{"note_id": "n-1", "body": "hello"}\n')
    async with FixtureManager(settings, metadata=_notes(1), migrations=one) as old:
        await drop_every_tenant(old)
        await old.create_tenant("shop")
        await old.load_fixtures("shop", source)
    newer = FixtureManager(settings.model_copy(update={"migrations": str(two)}), metadata=_notes(2))
    try:
        with pytest.raises(SchemaOutdatedError):
            await newer.load_fixtures("shop", source)

        report = await newer.migrate(["shop"])
        await newer.create_tenant("shop_two")

        assert [(r.from_revision, r.to_revision) for r in report.results] == [("n1", "n2")]
        assert {e.revision for e in await newer.migration_status()} == {"n2"}
        assert all(r.ok for r in await newer.check_drift())
        assert (await newer.validate_tenant("shop")).row_counts == {"notes": 1}
        await newer.load_fixtures("shop_two", source)
    finally:
        await drop_every_tenant(newer)
        await newer.aclose()


async def test_a_spare_schema_built_at_an_older_revision_is_never_handed_out(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=postgres_url, actor="pytest")
    one, two = _history(tmp_path, NOTES_V1), _history(tmp_path, NOTES_V1, NOTES_V2)
    async with FixtureManager(settings, metadata=_notes(1), migrations=one) as old:
        await drop_every_tenant(old)
        assert await old.warm_up(2) == 2
    async with FixtureManager(settings, metadata=_notes(2), migrations=two) as newer:
        try:
            await newer.create_tenant("from_pool")

            assert (await newer.check_drift(["from_pool"]))[0].ok
            assert await newer.warm_up(1) == 1
            async with newer.store.control() as conn:
                pool = control_plane.schema_pool_table
                checksums = (await conn.execute(select(pool.c.checksum))).scalars().all()
            assert checksums == [schema_checksum(newer.store.metadata)]
            await newer.create_tenant("from_pool_two")
            assert (await newer.check_drift(["from_pool_two"]))[0].ok
        finally:
            await drop_every_tenant(newer)
            await newer.warm_up(0)


async def test_a_table_rebuilt_by_hand_on_sqlite_shows_its_lost_checks_and_changed_types(
    sqlite_manager: FixtureManager,
) -> None:
    """SQLite cannot drop a CHECK or change a type in place; a table rebuilt by hand
    without them is found all the same."""
    await sqlite_manager.create_tenant("rebuilt")
    await _plant(
        sqlite_manager,
        "rebuilt",
        [
            "CREATE TABLE audio_features_copy AS SELECT * FROM audio_features",
            "DROP TABLE audio_features",
            "ALTER TABLE audio_features_copy RENAME TO audio_features",
        ],
    )

    [drift] = await sqlite_manager.check_drift(["rebuilt"])

    assert "CHECK constraint ck_audio_features_tempo on audio_features is missing" in drift.findings
    assert any(f.startswith("column audio_features.tempo has type") for f in drift.findings)


async def test_migrations_with_tenant_roles_keep_least_privilege(
    roles_manager: FixtureManager, tenant_ids: Any
) -> None:
    """DDL runs as the tenant's owner role: what a revision creates is the owner's, the
    tenant role gets its default privileges, and the privileges check still passes."""
    tenant = tenant_ids("mig")
    await roles_manager.create_tenant(tenant)
    await roles_manager.load_fixtures(tenant)

    down = await roles_manager.migrate([tenant], to=BASE)
    up = await roles_manager.migrate([tenant])
    report = await roles_manager.validate_tenant(tenant)

    assert (down.counts(), up.counts()) == ({"migrated": 1}, {"migrated": 1})
    assert report.ok, report.problems


async def _loaded_then_migrated(
    settings: Settings, tmp_path: Path, *revisions: str
) -> FixtureManager:
    """A manager at the last of ``revisions`` whose tenant ``shop`` was loaded with one
    note at n1, then migrated (n2 adds ``pinned`` to the table its fixture wrote)."""
    one, later = _history(tmp_path, NOTES_V1), _history(tmp_path, NOTES_V1, *revisions)
    source = tmp_path / "notes_set"
    source.mkdir()
    (source / "notes.jsonl").write_text('{"note_id": "n-1", "body": "hello"}\n')
    async with FixtureManager(settings, metadata=_notes(1), migrations=one) as old:
        await drop_every_tenant(old)
        await old.create_tenant("shop")
        await old.load_fixtures("shop", source)
    newer = FixtureManager(
        settings.model_copy(update={"migrations": str(later)}),
        metadata=_notes(1 + len(revisions)),
    )
    await newer.migrate(["shop"])
    return newer


def _checksum_notes(report: IntegrityReport) -> list[str]:
    return [c.detail for c in report.checks if c.check == "checksums" and c.status == "info"]


async def test_a_table_that_gained_a_column_still_matches_what_its_fixtures_loaded(
    settings: Settings, tmp_path: Path
) -> None:
    newer = await _loaded_then_migrated(settings, tmp_path, NOTES_V2)
    try:
        report = await newer.validate_tenant("shop", recompute_checksums=True)
        await _plant(newer, "shop", ["UPDATE {s}.notes SET body = 'changed'"])
        tampered = await newer.validate_tenant("shop")
    finally:
        await drop_every_tenant(newer)
        await newer.aclose()

    assert report.ok, report.problems
    assert report.checksums["notes"].status == "match"
    assert _checksum_notes(report) == [
        "notes: compared over the 2 columns its loads covered (added since: pinned)"
    ]
    assert tampered.checksums["notes"].status == "mismatch"


async def test_a_load_after_a_migration_that_changed_its_table_leaves_it_not_comparable(
    settings: Settings, tmp_path: Path
) -> None:
    """The checksums of the rows loaded before and after cover different columns, and
    do not add up: validation says so rather than reporting a mismatch."""
    newer = await _loaded_then_migrated(settings, tmp_path, NOTES_V2)
    more = tmp_path / "more_notes"
    more.mkdir()
    (more / "notes.jsonl").write_text('{"note_id": "n-2", "body": "again", "pinned": true}\n')
    try:
        await newer.load_fixtures("shop", more)
        report = await newer.validate_tenant("shop")
    finally:
        await drop_every_tenant(newer)
        await newer.aclose()

    assert report.ok, report.problems
    assert report.checksums["notes"].status == "not_comparable"
    assert _checksum_notes(report) == [
        "notes: not comparable (its loads covered different columns: the table changed "
        "between them)"
    ]


async def test_a_table_that_lost_a_column_its_fixtures_loaded_is_not_comparable(
    settings: Settings, tmp_path: Path
) -> None:
    newer = await _loaded_then_migrated(settings, tmp_path, NOTES_V2, NOTES_V3)
    try:
        report = await newer.validate_tenant("shop")
    finally:
        await drop_every_tenant(newer)
        await newer.aclose()

    assert report.ok, report.problems
    assert report.checksums["notes"].status == "not_comparable"
    assert _checksum_notes(report) == [
        "notes: not comparable (column(s) body its loads covered are gone)"
    ]


async def test_the_status_of_a_tenant_that_does_not_exist_is_refused_by_name(
    fleet: FixtureManager,
) -> None:
    """As ``migrate`` refuses it (once an empty list: "0 tenants behind", exit 0)."""
    [tenant_id] = await _make_tenants(fleet, 1, load=False)

    with pytest.raises(TenantNotFoundError) as caught:
        await fleet.migration_status([tenant_id, "ghost"])
    with pytest.raises(InvalidTenantIdError):
        await fleet.migration_status(["../x"])

    assert "ghost" == caught.value.tenant_id
    assert [tenant_id] == [e.tenant_id for e in await fleet.migration_status([tenant_id])]
