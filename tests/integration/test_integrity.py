"""DataIntegrityValidator on both backends: a clean tenant passes, each planted defect is found.

Defects are planted behind the library's back, as a tampered file, a careless DBA or a
backend that did not enforce a constraint would leave them: through a plain sqlite3
connection (foreign keys and CHECKs off, a table rebuilt without its key) or through
PostgreSQL DDL that drops the constraint first.
"""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import asyncio
import gzip
import json
import shutil
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.schema import DropTable

from tenancy_fixtures import (
    DataLoader,
    FixtureManager,
    SettingsError,
    TenantFixture,
    load_settings,
)
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.store.postgres.isolation import role_can_read
from tenancy_fixtures.store.postgres.store import PostgresTenantStore
from tenancy_fixtures.validation.integrity import CHECKS
from tests.integration.reports import failures, notes
from tests.integration.search_path import forced_search_path
from tests.postgres import asyncpg_dsn, role_exists

TENANT = "integrity_tenant"
OTHER = "integrity_other"
MISSING_TRACK_ID = "zzzzzzzzzzzzzzzzzzzzzz"


# --- helpers -------------------------------------------------------------------------


async def _load(manager: FixtureManager, demo_set: Path, tenant: str = TENANT) -> None:
    await manager.create_tenant(tenant)
    await manager.load_fixtures(tenant, source=demo_set)


async def _on_sqlite_file(manager: FixtureManager, tenant: str, *statements: str) -> None:
    """Run SQL on the tenant's file through a plain sqlite3 connection (no foreign keys)."""

    def run() -> None:
        connection = sqlite3.connect(manager.store.storage_name(tenant))
        try:
            with connection:
                for statement in statements:
                    connection.execute(statement)
        finally:
            connection.close()

    await asyncio.to_thread(run)


async def _on_postgres_schema(manager: FixtureManager, tenant: str, *statements: str) -> None:
    """Run SQL with ``{s}`` standing for the tenant's quoted schema, in one transaction."""
    async with manager.store.session(tenant) as session:
        quoted = session.connection.dialect.identifier_preparer.quote(
            manager.store.storage_name(tenant)
        )
        for statement in statements:
            await session.connection.execute(text(statement.format(s=quoted)))


async def _one_row(manager: FixtureManager, tenant: str, table: str) -> dict[str, Any]:
    async with manager.store.session(tenant, readonly=True) as session:
        found = session.metadata.tables[f"tenant.{table}"]
        row = (await session.connection.execute(select(found).limit(1))).one()
    return dict(row._mapping)


async def _rebuild_listening_events_without_constraints(
    manager: FixtureManager, tenant: str
) -> None:
    """Leave listening_events without its primary key and NOT NULLs (a tampered file, or
    keys dropped and never rebuilt)."""
    if manager.store.backend == "sqlite":
        await _on_sqlite_file(
            manager,
            tenant,
            "ALTER TABLE listening_events RENAME TO listening_events_keyed",
            "CREATE TABLE listening_events AS SELECT * FROM listening_events_keyed",
            "DROP TABLE listening_events_keyed",
        )
        return
    await _on_postgres_schema(
        manager,
        tenant,
        "ALTER TABLE {s}.listening_events DROP CONSTRAINT pk_listening_events",
        "ALTER TABLE {s}.listening_events ALTER COLUMN ms_played DROP NOT NULL",
    )


async def _plant_orphan(manager: FixtureManager, tenant: str) -> None:
    """A playlist_tracks row whose track does not exist."""
    playlist_id = (await _one_row(manager, tenant, "playlist_tracks"))["playlist_id"]
    values = f"VALUES ('{playlist_id}', 9999, '{MISSING_TRACK_ID}')"
    if manager.store.backend == "sqlite":
        await _on_sqlite_file(
            manager,
            tenant,
            f"INSERT INTO playlist_tracks (playlist_id, position, track_id) {values}",
        )
        return
    await _on_postgres_schema(
        manager,
        tenant,
        "SET LOCAL session_replication_role = replica",
        "INSERT INTO {s}.playlist_tracks (playlist_id, position, track_id) " + values,
    )


async def _bump_popularity(
    manager: FixtureManager, tenant: str, by: int, track_id: str | None = None
) -> str:
    """Change a loaded track's popularity (any track's, or ``track_id``'s) through the
    store; returns the track id."""
    if track_id is None:
        track_id = str((await _one_row(manager, tenant, "tracks"))["track_id"])
    async with manager.store.session(tenant) as session:
        tracks = session.metadata.tables["tenant.tracks"]
        await session.connection.execute(
            update(tracks)
            .where(tracks.c.track_id == track_id)
            .values(popularity=tracks.c.popularity + by)
        )
    return track_id


# --- a clean tenant ------------------------------------------------------------------


@pytest.mark.usefixtures("load_path")
async def test_a_cleanly_loaded_tenant_passes_every_check(
    manager: FixtureManager, demo_set: Path
) -> None:
    """After a load every check is ok, once each, and every loaded table's checksum matches."""
    await _load(manager, demo_set)

    report = await manager.validate_tenant(TENANT)

    assert [] == report.problems
    assert list(CHECKS) == [c.check for c in report.checks]
    assert {"ok"} == {c.status for c in report.checks}
    loaded = {name for name, rows in report.row_counts.items() if rows}
    assert loaded == {t for t, c in report.checksums.items() if c.status == "match"}
    assert all(c.expected == c.checksum for t, c in report.checksums.items() if t in loaded)
    assert all(c.rows == 0 for t, c in report.checksums.items() if t not in loaded)


async def test_a_tenant_never_loaded_passes_every_check(manager: FixtureManager) -> None:
    """An empty, freshly created tenant passes: nothing loaded, nothing to miss."""
    await manager.create_tenant(TENANT)

    report = await manager.validate_tenant(TENANT)

    assert [] == report.problems
    assert {"ok"} == {c.status for c in report.checks}


# --- planted defects -----------------------------------------------------------------


async def test_an_orphan_row_fails_the_orphans_check(
    manager: FixtureManager, demo_set: Path
) -> None:
    """A playlist_tracks row pointing at a missing track is an orphan."""
    await _load(manager, demo_set)
    await _plant_orphan(manager, TENANT)

    report = await manager.validate_tenant(TENANT)

    assert ["playlist_tracks.track_id: 1 row(s) reference a missing tracks row"] == failures(
        report, "orphans"
    )
    assert {"playlist_tracks.track_id": 1} == report.orphans


async def test_row_checks_built_for_a_clean_tenant_still_find_an_orphan_in_the_next(
    manager: FixtureManager, demo_set: Path
) -> None:
    """The row checks' statements are kept per schema: a second tenant of the schema is
    asked the same questions and answers for itself."""
    await _load(manager, demo_set, OTHER)
    assert (await manager.validate_tenant(OTHER)).ok
    await _load(manager, demo_set)
    await _plant_orphan(manager, TENANT)

    report = await manager.validate_tenant(TENANT)

    assert {"playlist_tracks.track_id": 1} == report.orphans
    assert (await manager.validate_tenant(OTHER)).ok


async def test_a_dropped_table_is_named_once_and_the_rows_left_unchecked_are_said(
    manager: FixtureManager, demo_set: Path
) -> None:
    """A table dropped behind the library's back is one problem (not one from the
    schema's own check and again from the drift comparison), and the report says that
    the row checks were not run, instead of leaving them out silently."""
    await _load(manager, demo_set)
    async with manager.store.session(TENANT) as session:
        await session.connection.execute(
            DropTable(session.metadata.tables["tenant.playlist_tracks"])
        )

    report = await manager.validate_tenant(TENANT)

    assert 1 == report.problems.count("table playlist_tracks is missing")
    assert len(set(report.problems)) == len(report.problems)
    assert not {"row_counts", "orphans", "checksums"} & {c.check for c in report.checks}
    [unchecked] = [n for n in notes(report, "schema") if "rows not checked" in n]
    assert "row_counts" in unchecked
    assert "checksums" in unchecked


@pytest.mark.parametrize(
    ("on_sqlite", "on_postgres", "check", "failure"),
    [
        pytest.param(
            "INSERT INTO listening_events SELECT * FROM listening_events LIMIT 1",
            "INSERT INTO {s}.listening_events SELECT * FROM {s}.listening_events LIMIT 1",
            "duplicates",
            "listening_events: primary key pk_listening_events (user_id, played_at): "
            "1 value(s) held by more than one row (2 rows)",
            id="duplicate-primary-key",
        ),
        pytest.param(
            "UPDATE listening_events SET ms_played = NULL "
            "WHERE rowid = (SELECT min(rowid) FROM listening_events)",
            "UPDATE {s}.listening_events SET ms_played = NULL "
            "WHERE ctid = (SELECT min(ctid) FROM {s}.listening_events)",
            "not_null",
            "listening_events.ms_played: 1 row(s) hold NULL in a NOT NULL column",
            id="null-in-a-not-null-column",
        ),
    ],
)
async def test_a_row_that_a_lost_constraint_let_in_fails_its_check(
    manager: FixtureManager,
    demo_set: Path,
    on_sqlite: str,
    on_postgres: str,
    check: str,
    failure: str,
) -> None:
    """With the key and NOT NULLs gone, a second copy of a listening event (a duplicate key
    value) or a NULL ms_played is found by the check of that constraint."""
    await _load(manager, demo_set)
    await _rebuild_listening_events_without_constraints(manager, TENANT)
    if manager.store.backend == "sqlite":
        await _on_sqlite_file(manager, TENANT, on_sqlite)
    else:
        await _on_postgres_schema(manager, TENANT, on_postgres)

    report = await manager.validate_tenant(TENANT)

    assert [failure] == failures(report, check)


async def test_a_duplicate_in_a_partial_unique_index_fails_the_duplicates_check(
    manager: FixtureManager, demo_set: Path
) -> None:
    """Two default models for one task, once the unique index is dropped, are found."""
    await _load(manager, demo_set)
    async with manager.store.session(TENANT, readonly=True) as session:
        models = session.metadata.tables["tenant.ai_models"]
        model_id = (
            await session.connection.execute(
                select(models.c.model_id).where(models.c.is_default.is_(False)).limit(1)
            )
        ).scalar_one()
    if manager.store.backend == "sqlite":
        await _on_sqlite_file(
            manager,
            TENANT,
            "DROP INDEX uq_ai_models_default_per_task",
            f"UPDATE ai_models SET is_default = 1 WHERE model_id = '{model_id}'",
        )
    else:
        await _on_postgres_schema(
            manager,
            TENANT,
            "DROP INDEX {s}.uq_ai_models_default_per_task",
            "UPDATE {s}.ai_models SET is_default = true WHERE model_id = " + f"'{model_id}'",
        )

    report = await manager.validate_tenant(TENANT)

    assert [
        "ai_models: unique index uq_ai_models_default_per_task (task): "
        "1 value(s) held by more than one row (2 rows)"
    ] == failures(report, "duplicates")


async def test_one_updated_value_fails_the_checksums_check_naming_both_checksums(
    manager: FixtureManager, demo_set: Path
) -> None:
    """Changing one track's popularity after loading fails tracks' checksum, and only it."""
    await _load(manager, demo_set)
    await _bump_popularity(manager, TENANT, 1)

    report = await manager.validate_tenant(TENANT)

    tracks = report.checksums["tracks"]
    assert "mismatch" == tracks.status
    assert tracks.expected is not None
    assert tracks.expected != tracks.checksum
    assert [
        f"tracks: content checksum {tracks.checksum} differs from {tracks.expected}, "
        "the checksum of the rows its fixtures loaded (100 rows now, 100 loaded)"
    ] == failures(report, "checksums")
    assert ["checksums"] == report.failed_checks


async def test_putting_the_value_back_makes_the_checksum_match_again(
    manager: FixtureManager, demo_set: Path
) -> None:
    """The checksum is of the content: undoing the change undoes the failure."""
    await _load(manager, demo_set)
    track_id = await _bump_popularity(manager, TENANT, 1)
    await _bump_popularity(manager, TENANT, -1, track_id)

    assert [] == (await manager.validate_tenant(TENANT)).problems


async def test_a_row_breaking_a_check_constraint_fails_the_check_constraints_check(
    manager: FixtureManager, demo_set: Path
) -> None:
    """A popularity of 500, which the backend was told not to check, is found."""
    await _load(manager, demo_set)
    row = await _one_row(manager, TENANT, "tracks")
    where = f"track_id = '{row['track_id']}'"
    if manager.store.backend == "sqlite":
        await _on_sqlite_file(
            manager,
            TENANT,
            "PRAGMA ignore_check_constraints = ON",
            f"UPDATE tracks SET popularity = 500 WHERE {where}",
        )
    else:
        await _on_postgres_schema(
            manager,
            TENANT,
            "ALTER TABLE {s}.tracks DROP CONSTRAINT ck_tracks_popularity",
            "UPDATE {s}.tracks SET popularity = 500 WHERE " + where,
            "ALTER TABLE {s}.tracks ADD CONSTRAINT ck_tracks_popularity "
            "CHECK (popularity >= 0 AND popularity <= 100) NOT VALID",
        )

    report = await manager.validate_tenant(TENANT)

    assert [
        "tracks: 1 row(s) break CHECK ck_tracks_popularity (popularity >= 0 AND popularity <= 100)"
    ] == failures(report, "check_constraints")


async def test_a_tenant_over_its_storage_limit_fails_the_storage_check(
    manager: FixtureManager,
) -> None:
    """A tenant whose config allows 1KB uses more than that and is reported."""
    await manager.create_tenant(TenantFixture(tenant_id=TENANT, limits={"storage": "1KB"}))

    report = await manager.validate_tenant(TENANT)

    assert 1024 == report.storage_limit
    assert report.storage_bytes is not None
    assert report.storage_bytes > 1024
    [problem] = failures(report, "storage")
    assert problem.startswith("storage: ")
    assert problem.endswith(f"({report.storage_bytes:,} bytes) used, over the 1KB limit")
    assert ["storage"] == report.failed_checks


# --- what the fixtures recorded ------------------------------------------------------


async def test_a_table_upserted_by_a_changed_set_is_reported_as_not_comparable(
    manager: FixtureManager, demo_set: Path, tmp_path: Path
) -> None:
    """After one track is renamed by a reload, tracks cannot be compared; nothing fails."""
    await _load(manager, demo_set)
    edited = tmp_path / "edited_set"
    shutil.copytree(demo_set, edited)
    lines = (edited / "tracks.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    first["name"] = "Renamed By The Test"
    lines[0] = json.dumps(first)
    (edited / "tracks.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    await manager.load_fixtures(TENANT, source=edited)

    report = await manager.validate_tenant(TENANT)

    assert [] == report.problems
    assert ["tracks: not comparable (rows were upserted)"] == notes(report, "checksums")
    assert "not_comparable" == report.checksums["tracks"].status
    assert "match" == report.checksums["albums"].status


async def test_a_table_replaced_by_a_smaller_set_passes_the_row_counts_check(
    manager: FixtureManager, demo_set: Path, tmp_path: Path
) -> None:
    """A ``replace`` starts the table afresh: after the demo's 40 product events are
    replaced by 2 (one kept, one new), 2 rows are what the loads leave, not 40."""
    await _load(manager, demo_set)
    with gzip.open(demo_set / "product_events.jsonl.gz", "rt", encoding="utf-8") as events:
        first = json.loads(events.readline())
    added = {**first, "event_id": "00000000-0000-4000-8000-000000000001"}
    smaller = tmp_path / "smaller_set"
    smaller.mkdir()
    lines = [json.dumps(first), json.dumps(added)]
    (smaller / "product_events.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    loader = DataLoader(
        smaller, metadata=manager.store.metadata, modes={"product_events": "replace"}
    )
    await manager.load_fixtures(TENANT, fixtures=[loader])

    report = await manager.validate_tenant(TENANT)

    assert [] == report.problems
    assert 2 == report.row_counts["product_events"]
    assert "match" == report.checksums["product_events"].status


async def test_a_forced_reload_of_the_same_set_keeps_every_checksum_comparable(
    manager: FixtureManager, demo_set: Path
) -> None:
    """Rows given again unchanged change nothing: every loaded table still matches."""
    await _load(manager, demo_set)
    await manager.load_fixtures(TENANT, source=demo_set, force=True)

    report = await manager.validate_tenant(TENANT)

    assert [] == report.problems
    assert [] == notes(report, "checksums")
    loaded = {name for name, rows in report.row_counts.items() if rows}
    assert loaded == {t for t, c in report.checksums.items() if c.status == "match"}


async def test_a_load_records_each_tables_rows_and_checksum_in_the_control_plane(
    manager: FixtureManager, demo_set: Path
) -> None:
    """The control plane holds one insert per loaded table, matching the load's results
    (the set's tables, and its ai_models by the loader that guards them)."""
    await manager.create_tenant(TENANT)
    load = await manager.load_fixtures(TENANT, source=demo_set)

    async with manager.store.control(readonly=True) as conn:
        writes = await control_plane.table_checksums(conn, TENANT)

    checksums = {t: c for result in load.results for t, c in result.content_checksums.items()}
    assert checksums == {w.table: w.checksum for w in writes}
    assert load.row_counts == {w.table: w.rows for w in writes}
    assert {"insert"} == {w.mode for w in writes}
    assert all(w.inserted == w.rows and w.run_id == load.run_id for w in writes)


# --- validate_all and recording ------------------------------------------------------


async def test_validate_all_reports_every_tenant_and_fails_only_the_tampered_one(
    manager: FixtureManager, demo_set: Path
) -> None:
    """Of two loaded tenants, only the one changed after loading fails."""
    await _load(manager, demo_set, TENANT)
    await _load(manager, demo_set, OTHER)
    await _bump_popularity(manager, OTHER, 1)

    reports = {r.tenant_id: r for r in await manager.validate_all()}

    assert {OTHER: ["checksums"], TENANT: []} == {
        tenant: report.failed_checks for tenant, report in reports.items()
    }


async def test_a_recorded_validation_is_a_validate_run_with_the_report_and_is_audited(
    manager: FixtureManager, demo_set: Path
) -> None:
    """record=True stores the report as the detail of a 'validate' run and audits it."""
    await _load(manager, demo_set)
    await _bump_popularity(manager, TENANT, 1)

    report = await manager.validate_tenant(TENANT, record=True)

    async with manager.store.control(readonly=True) as conn:
        run = await control_plane.last_run(conn, TENANT, "validate")
        audit = await control_plane.read_audit(conn, tenant_id=TENANT, limit=1)
    assert run is not None
    assert (report.run_id, "failed") == (run["run_id"], run["status"])
    assert json.loads(json.dumps(report.as_dict())) == run["detail"]
    assert [("data.validate", "failed", report.run_id)] == [
        (a.action, a.outcome, a.run_id) for a in audit
    ]
    assert ["checksums"] == audit[0].detail["failed_checks"]


async def test_an_unrecorded_validation_writes_nothing(
    manager: FixtureManager, demo_set: Path
) -> None:
    """By default validate_tenant only reads: no run, no audit record."""
    # Runs and audit records outlive a dropped tenant: use an id no other test used.
    tenant = f"integrity_{uuid.uuid4().hex[:8]}"
    await _load(manager, demo_set, tenant)
    async with manager.store.control(readonly=True) as conn:
        audited_before = await control_plane.read_audit(conn, tenant_id=tenant)

    report = await manager.validate_tenant(tenant)

    async with manager.store.control(readonly=True) as conn:
        assert await control_plane.last_run(conn, tenant, "validate") is None
        assert audited_before == await control_plane.read_audit(conn, tenant_id=tenant)
    assert report.run_id is None


# --- isolation -----------------------------------------------------------------------


def _replace_with_link(path: Path, target: Path) -> None:
    path.unlink()
    path.symlink_to(target)


async def test_sqlite_a_tenant_file_that_is_another_tenants_file_fails_isolation(
    sqlite_manager: FixtureManager, demo_set: Path
) -> None:
    """B's file replaced by a link to A's: B's session reads A's rows, and that is found."""
    manager = sqlite_manager
    await _load(manager, demo_set, OTHER)
    await manager.create_tenant(TENANT)
    own = Path(manager.store.storage_name(TENANT))
    await asyncio.to_thread(_replace_with_link, own, Path(manager.store.storage_name(OTHER)))

    report = await manager.validate_tenant(TENANT)

    assert [
        f"the tenant's file {own} is tenant '{OTHER}''s file: its rows are read here"
    ] == failures(report, "isolation")


@pytest.mark.postgres
async def test_postgres_a_view_reading_another_tenants_schema_fails_isolation(
    pg_manager: FixtureManager, demo_set: Path
) -> None:
    """A view in B's schema selecting A's users makes A's rows reachable from B: found."""
    await _load(pg_manager, demo_set, OTHER)
    await pg_manager.create_tenant(TENANT)
    await _on_postgres_schema(
        pg_manager, TENANT, f"CREATE VIEW {{s}}.leak AS SELECT * FROM {OTHER}.users"
    )

    report = await pg_manager.validate_tenant(TENANT)

    assert [f"view {TENANT}.leak reaches {OTHER}.users (tenant '{OTHER}''s schema)"] == failures(
        report, "isolation"
    )
    assert any("leak" in failure for failure in failures(report, "objects"))


@pytest.mark.postgres
async def test_postgres_a_search_path_naming_another_tenant_fails_isolation(
    pg_manager: FixtureManager, demo_set: Path
) -> None:
    """Connections whose search_path names A's schema let B's raw SQL read A: found."""
    await _load(pg_manager, demo_set, OTHER)
    await pg_manager.create_tenant(TENANT)
    store = pg_manager.store
    assert isinstance(store, PostgresTenantStore)
    async with forced_search_path(store, OTHER):
        report = await pg_manager.validate_tenant(TENANT)

    assert [
        f"the connection's search_path includes tenant '{OTHER}''s schema: "
        "unqualified SQL on this tenant's connection reads its rows"
    ] == failures(report, "isolation")


# --- PostgreSQL per-tenant roles -----------------------------------------------------


@pytest.mark.postgres
async def test_postgres_a_tenant_role_reads_its_own_schema_and_is_denied_anothers(
    roles_manager: FixtureManager,
    tenant_ids: Callable[[str], str],
    demo_set: Path,
    postgres_url: str,
) -> None:
    """SET ROLE to B's role: B's users are readable, A's raise InsufficientPrivilegeError."""
    tenant_a, tenant_b = tenant_ids("a"), tenant_ids("b")
    await _load(roles_manager, demo_set, tenant_a)
    await _load(roles_manager, demo_set, tenant_b)
    role_b = roles_manager.store.tenant_role(tenant_b)
    assert f"tf_role_{tenant_b}" == role_b

    connection = await asyncpg.connect(asyncpg_dsn(postgres_url))
    try:
        await connection.execute(f'SET ROLE "{role_b}"')
        assert 20 == await connection.fetchval(f'SELECT count(*) FROM "{tenant_b}".users')
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.fetchval(f'SELECT count(*) FROM "{tenant_a}".users')
    finally:
        await connection.close()

    report = await roles_manager.validate_tenant(tenant_b)
    assert [] == report.problems
    async with roles_manager.store.session(tenant_b, readonly=True) as session:
        assert await role_can_read(session.connection, role_b, tenant_b, "users")
        assert not await role_can_read(session.connection, role_b, tenant_a, "users")


@pytest.mark.postgres
async def test_postgres_a_grant_on_another_tenants_schema_fails_isolation(
    roles_manager: FixtureManager, tenant_ids: Callable[[str], str], demo_set: Path
) -> None:
    """Granting B's role USAGE and SELECT on A's schema makes A readable as B: found."""
    tenant_a, tenant_b = tenant_ids("a"), tenant_ids("b")
    await _load(roles_manager, demo_set, tenant_a)
    await roles_manager.create_tenant(tenant_b)
    role_b = roles_manager.store.tenant_role(tenant_b)
    assert role_b is not None
    await _on_postgres_schema(
        roles_manager,
        tenant_a,
        f'GRANT USAGE ON SCHEMA {{s}} TO "{role_b}"',
        f'GRANT SELECT ON ALL TABLES IN SCHEMA {{s}} TO "{role_b}"',
    )

    report = await roles_manager.validate_tenant(tenant_b)

    assert [f"role '{role_b}' has USAGE on tenant '{tenant_a}''s schema"] == failures(
        report, "isolation"
    )
    async with roles_manager.store.session(tenant_b, readonly=True) as session:
        assert await role_can_read(session.connection, role_b, tenant_a, "users")


@pytest.mark.postgres
async def test_postgres_dropping_a_tenant_drops_its_role(
    roles_manager: FixtureManager, tenant_ids: Callable[[str], str], admin: asyncpg.Connection
) -> None:
    """The role exists while the tenant does, and not after it is dropped."""
    tenant = tenant_ids("gone")
    await roles_manager.create_tenant(tenant)
    role = roles_manager.store.tenant_role(tenant)
    assert role is not None
    assert await role_exists(admin, role)

    await roles_manager.drop_tenant(tenant)

    assert not await role_exists(admin, role)


@pytest.mark.postgres
async def test_postgres_a_tenant_made_from_a_spare_schema_gets_its_role_and_grants(
    roles_manager: FixtureManager, tenant_ids: Callable[[str], str], demo_set: Path
) -> None:
    """Claiming a pre-built spare schema (a rename) grants the new role its tables too."""
    await roles_manager.warm_up(1)
    tenant = tenant_ids("spare")
    await _load(roles_manager, demo_set, tenant)
    async with roles_manager.store.control(readonly=True) as conn:
        pool = control_plane.schema_pool_table
        spares = (await conn.execute(select(func.count()).select_from(pool))).scalar_one()
    assert 0 == spares, "the tenant was not made from the spare"
    role = roles_manager.store.tenant_role(tenant)
    assert role is not None

    report = await roles_manager.validate_tenant(tenant)

    assert [] == report.problems
    async with roles_manager.store.session(tenant, readonly=True) as session:
        for table in ("users", "listening_events", "ai_models"):
            assert await role_can_read(session.connection, role, tenant, table), table


@pytest.mark.postgres
async def test_postgres_a_missing_tenant_role_fails_isolation(
    roles_manager: FixtureManager, tenant_ids: Callable[[str], str], admin: asyncpg.Connection
) -> None:
    """With tenant roles on, a tenant whose role was dropped behind the library's back fails."""
    tenant = tenant_ids("norole")
    await roles_manager.create_tenant(tenant)
    role = roles_manager.store.tenant_role(tenant)
    await admin.execute(f'DROP OWNED BY "{role}"')
    await admin.execute(f'DROP ROLE "{role}"')

    report = await roles_manager.validate_tenant(tenant)

    assert [f"tenant role '{role}' does not exist"] == failures(report, "isolation")


def test_a_role_prefix_that_is_not_a_short_identifier_is_refused() -> None:
    """TENANCY_TENANT_ROLE_PREFIX must leave room for a 48-character tenant id in 63 bytes."""
    for prefix in ("Role_", "x" * 16, "1abc", 'a"b'):
        with pytest.raises(SettingsError):
            load_settings(tenant_role_prefix=prefix)
    assert "tfprod_" == load_settings(tenant_role_prefix="tfprod_").tenant_role_prefix
