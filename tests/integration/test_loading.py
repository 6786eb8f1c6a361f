"""Loading fixture sets on both backends: counts, idempotence, upserts, atomicity, tiers."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import gzip
import json
import shutil
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, text
from sqlalchemy.exc import DBAPIError

from tenancy_fixtures import (
    DataLoader,
    FixtureError,
    FixtureFormatError,
    FixtureManager,
    IntegrityViolationError,
    LoadContext,
    RecordError,
    Settings,
    TenantFixture,
    TenantSession,
)
from tenancy_fixtures.fixtures.schema import render_schema_sql
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.store.control_plane import AppliedFixture, count_rows

TENANT = "loader_tenant"
_NOW = datetime(2026, 1, 1, tzinfo=UTC)
LAST_FILE = "playlist_tracks.jsonl"
MISSING_TRACK_ID = "zzzzzzzzzzzzzzzzzzzzzz"

FREE_TABLES = {
    "users",
    "artists",
    "albums",
    "tracks",
    "playlists",
    "playlist_tracks",
    "listening_events",
    "product_events",
}
PREMIUM_TABLES = FREE_TABLES | {"audio_features", "ai_models"}
ENTERPRISE_TABLES = PREMIUM_TABLES | {
    "workspaces",
    "workspace_members",
    "workspace_playlists",
    "comments",
}
#: Computed by the analytics loader from the listening events, not loaded from files.
AGGREGATES = {"track_daily_stats", "daily_stats"}


def _record_count(path: Path) -> int:
    """Records in one fixture file, counted without the library's readers."""
    name = path.name.removesuffix(".gz")
    raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    content = raw.decode("utf-8")
    if name.endswith(".json"):
        document = json.loads(content)
        assert isinstance(document, list)
        return len(document)
    if name.endswith(".jsonl"):
        return sum(1 for line in content.splitlines() if line.strip())
    if name.endswith(".csv"):
        rows = [row for row in csv.reader(content.splitlines()) if any(row)]
        return len(rows) - 1
    raise AssertionError(f"unexpected fixture file {path}")


def _file_counts(fixture_set: Path) -> dict[str, int]:
    """Records per table of a fixture set, from its manifest and files."""
    manifest = json.loads((fixture_set / "fixtures.json").read_text(encoding="utf-8"))
    counts: dict[str, int] = {}
    for entry in manifest["files"]:
        table = entry["table"]
        counts[table] = counts.get(table, 0) + _record_count(fixture_set / entry["path"])
    return counts


def _copy_set(demo_set: Path, tmp_path: Path) -> Path:
    """A writable copy of the demo set under ``tmp_path``."""
    target = tmp_path / "fixture_set"
    shutil.copytree(demo_set, target)
    return target


def _first_jsonl_record(path: Path) -> dict[str, Any]:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    record = json.loads(first)
    assert isinstance(record, dict)
    return record


def _rename_first_track(fixture_set: Path, new_name: str) -> str:
    """Rename the first track of ``tracks.jsonl`` in place; returns its track_id."""
    path = fixture_set / "tracks.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    first["name"] = new_name
    lines[0] = json.dumps(first)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(first["track_id"])


def _append_line(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def _bad_last_record(fixture_set: Path, **changes: Any) -> None:
    """Append one playlist_tracks record (a valid one, with ``changes``) to the last file."""
    path = fixture_set / LAST_FILE
    record = _first_jsonl_record(path) | {"position": 9999} | changes
    _append_line(path, json.dumps(record))


def _set_popularity_of_last_track(fixture_set: Path, popularity: int) -> None:
    path = fixture_set / "tracks.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    last = json.loads(lines[-1])
    last["popularity"] = popularity
    lines[-1] = json.dumps(last)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


async def _table_counts(manager: FixtureManager, tenant_id: str) -> dict[str, int]:
    """Rows per table of a tenant, for the tables that hold any."""
    async with manager.store.session(tenant_id) as session:
        counts = await count_rows(session.connection, session.metadata.sorted_tables)
    return {table: rows for table, rows in counts.items() if rows}


async def _applied(manager: FixtureManager, tenant_id: str) -> dict[str, AppliedFixture]:
    async with manager.store.control() as conn:
        return await control_plane.applied_fixtures(conn, tenant_id)


async def _track_name(manager: FixtureManager, tenant_id: str, track_id: str) -> str:
    async with manager.store.session(tenant_id) as session:
        tracks = session.metadata.tables["tenant.tracks"]
        found = await session.connection.execute(
            select(tracks.c.name).where(tracks.c.track_id == track_id)
        )
        return str(found.scalar_one())


@pytest.fixture(scope="module")
def demo_counts() -> dict[str, int]:
    """Records per table in the built-in demo set."""
    from tenancy_fixtures.fixtures.templates import BUILTIN_TEMPLATE_DIR

    return _file_counts(BUILTIN_TEMPLATE_DIR / "fixtures" / "demo")


async def test_loading_the_demo_set_writes_one_row_per_file_record(
    manager: FixtureManager, demo_set: Path, demo_counts: dict[str, int]
) -> None:
    """Each table holds exactly as many rows as its file has records."""
    await manager.create_tenant(TENANT)

    report = await manager.load_fixtures(TENANT, source=demo_set)

    assert report.changed
    assert report.row_counts == demo_counts
    assert report.rows == sum(demo_counts.values())
    assert await _table_counts(manager, TENANT) == demo_counts


async def test_loading_the_same_set_twice_changes_nothing(
    manager: FixtureManager, demo_set: Path, demo_counts: dict[str, int]
) -> None:
    """A second load of an unchanged set reports changed False and leaves the counts alone."""
    await manager.create_tenant(TENANT)
    first = await manager.load_fixtures(TENANT, source=demo_set)
    applied_before = await _applied(manager, TENANT)

    second = await manager.load_fixtures(TENANT, source=demo_set)

    assert first.changed
    assert second.changed is False
    assert second.rows == 0
    # The set's ai_models and collaboration tables go through their loaders' checks:
    # a fixture of their own each.
    assert {(r.fixture, r.status) for r in second.results} == {
        ("tables:spotify-demo", "unchanged"),
        ("ai_models:spotify-demo", "unchanged"),
        ("collaboration:spotify-demo", "unchanged"),
    }
    assert await _table_counts(manager, TENANT) == demo_counts
    assert await _applied(manager, TENANT) == applied_before


async def test_a_changed_file_is_reapplied_as_an_upsert(
    manager: FixtureManager, demo_set: Path, tmp_path: Path, demo_counts: dict[str, int]
) -> None:
    """Editing one track's name re-applies the set: same row counts, the new name stored."""
    await manager.create_tenant(TENANT)
    await manager.load_fixtures(TENANT, source=demo_set)
    checksum_before = {f.checksum for f in (await _applied(manager, TENANT)).values()}
    edited = _copy_set(demo_set, tmp_path)
    track_id = _rename_first_track(edited, "Renamed By The Test")

    report = await manager.load_fixtures(TENANT, source=edited)

    assert report.changed
    assert await _table_counts(manager, TENANT) == demo_counts
    assert await _track_name(manager, TENANT, track_id) == "Renamed By The Test"
    applied = await _applied(manager, TENANT)
    # tables, ai_models, collaboration
    assert len([f for f in applied.values() if f.kind == "data"]) == 3
    assert {f.checksum for f in applied.values()} != checksum_before
    assert (await manager.validate_tenant(TENANT)).ok
    again = await manager.load_fixtures(TENANT, source=edited)
    assert again.changed is False


BAD_RECORDS = [
    pytest.param({"track_id": None}, RecordError, id="not-null-column-is-null"),
    pytest.param({"track_id": MISSING_TRACK_ID}, IntegrityViolationError, id="missing-fk-parent"),
    pytest.param({"position": -1}, RecordError, id="check-violation"),
    # The first record's key: playlist_tracks.jsonl starts at position 0.
    pytest.param({"position": 0}, IntegrityViolationError, id="duplicate-primary-key"),
    pytest.param({"no_such_column": 1}, RecordError, id="unknown-column"),
]


@pytest.mark.parametrize(("changes", "error"), BAD_RECORDS)
@pytest.mark.usefixtures("load_path")
async def test_load_is_atomic_when_a_record_of_the_last_file_is_invalid(
    manager: FixtureManager,
    demo_set: Path,
    tmp_path: Path,
    changes: dict[str, Any],
    error: type[FixtureError],
) -> None:
    """One bad record in the last file loaded leaves every table empty and records no fixture."""
    await manager.create_tenant(TENANT)
    broken = _copy_set(demo_set, tmp_path)
    _bad_last_record(broken, **changes)

    with pytest.raises(error) as caught:
        await manager.load_fixtures(TENANT, source=broken)

    assert isinstance(caught.value, FixtureError)
    assert LAST_FILE in str(caught.value)
    assert caught.value.table == "playlist_tracks"
    counts = await _table_counts(manager, TENANT)
    assert all(rows == 0 for rows in counts.values()), counts
    applied = await _applied(manager, TENANT)
    assert [name for name, f in applied.items() if f.kind == "data"] == []
    assert applied.keys() == {"schema", "config"}
    audit = await manager.audit_log(TENANT, limit=1)
    assert (audit[0].action, audit[0].outcome) == ("fixtures.load", "refused")
    assert audit[0].detail["error"] == type(caught.value).__name__


async def test_load_is_atomic_when_the_last_file_is_malformed(
    manager: FixtureManager, demo_set: Path, tmp_path: Path
) -> None:
    """A malformed line at the end of the last file leaves the tenant empty."""
    await manager.create_tenant(TENANT)
    broken = _copy_set(demo_set, tmp_path)
    _append_line(broken / LAST_FILE, '{"playlist_id": ')

    with pytest.raises(FixtureFormatError) as caught:
        await manager.load_fixtures(TENANT, source=broken)

    assert LAST_FILE in str(caught.value)
    assert all(rows == 0 for rows in (await _table_counts(manager, TENANT)).values())
    assert (await _applied(manager, TENANT)).keys() == {"schema", "config"}


async def test_load_is_atomic_when_a_middle_file_breaks_a_check_constraint(
    manager: FixtureManager, demo_set: Path, tmp_path: Path
) -> None:
    """A track with popularity 500 fails the load with the file named and nothing written."""
    await manager.create_tenant(TENANT)
    broken = _copy_set(demo_set, tmp_path)
    _set_popularity_of_last_track(broken, 500)

    with pytest.raises(RecordError) as caught:
        await manager.load_fixtures(TENANT, source=broken)

    assert "tracks.jsonl" in str(caught.value)
    assert caught.value.table == "tracks"
    assert all(rows == 0 for rows in (await _table_counts(manager, TENANT)).values())
    assert (await _applied(manager, TENANT)).keys() == {"schema", "config"}


def _tracks_with_a_lone_surrogate(fixture_set: Path, name: str) -> None:
    """Give the third track a name holding a lone surrogate escape ("\\ud800"), in
    ``tracks.jsonl`` or (``name`` ``tracks.json``) in a JSON array replacing it."""
    source = fixture_set / "tracks.jsonl"
    records = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines()]
    records[2]["name"] = "B\ud800b"  # json.dumps escapes it as \ud800
    source.unlink()
    lines = [json.dumps(record) for record in records]
    text = "[\n" + ",\n".join(lines) + "\n]" if name == "tracks.json" else "\n".join(lines)
    (fixture_set / name).write_text(text + "\n", encoding="utf-8")
    manifest_path = fixture_set / "fixtures.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    for entry in manifest["files"]:
        if entry["path"] == "tracks.jsonl":
            entry["path"] = name
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "line", "record"), [("tracks.jsonl", 3, None), ("tracks.json", None, 3)]
)
async def test_a_lone_surrogate_in_a_json_table_file_is_refused_naming_its_line_and_column(
    manager: FixtureManager,
    demo_set: Path,
    tmp_path: Path,
    name: str,
    line: int | None,
    record: int | None,
) -> None:
    """A lone surrogate escape is text no database takes: refused (rule encoding) at its
    line or record and column, nothing written. A JSON array's was stored as '?'."""
    await manager.create_tenant(TENANT)
    broken = _copy_set(demo_set, tmp_path)
    _tracks_with_a_lone_surrogate(broken, name)

    with pytest.raises(RecordError) as caught:
        await manager.load_fixtures(TENANT, source=broken)

    error = caught.value
    assert (name, line, record, "name", "encoding") == (
        error.path,
        error.line,
        error.record,
        error.column,
        error.rule,
    )
    assert "not valid Unicode" in str(error)
    assert {} == await _table_counts(manager, TENANT)
    assert {"schema", "config"} == (await _applied(manager, TENANT)).keys()


async def test_an_impossible_date_in_a_yaml_table_file_is_refused_and_nothing_written(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """``2024-02-30`` reads as a YAML date PyYAML cannot build: a RecordError (rule
    type) naming the file and column, not a bare ValueError; no row is written."""
    await manager.create_tenant(TENANT)
    fixture_set = tmp_path / "yaml_set"
    fixture_set.mkdir()
    (fixture_set / "artists.yaml").write_text(
        "- {artist_id: a1, name: One}\n- {artist_id: a2, name: 2024-02-30}\n", encoding="utf-8"
    )

    with pytest.raises(RecordError) as caught:
        await manager.load_fixtures(TENANT, source=fixture_set)

    error = caught.value
    assert ("artists.yaml", 2, "name", "type") == (
        error.path,
        error.record,
        error.column,
        error.rule,
    )
    assert all(rows == 0 for rows in (await _table_counts(manager, TENANT)).values())
    assert {"schema", "config"} == (await _applied(manager, TENANT)).keys()


def _ai_model_yaml(tmp_path: Path, enabled: str) -> Path:
    """A set of one file, ``ai_models.yaml``: one model whose plain scalars YAML 1.1
    would read as other than the text they show, and ``enabled`` written ``enabled``."""
    fixture_set = tmp_path / "yaml_set"
    fixture_set.mkdir()
    (fixture_set / "ai_models.yaml").write_text(
        "- model_id: m1\n"
        "  provider: on\n"
        "  model_name: 0b101\n"
        "  version: 1:30\n"
        "  task: chat\n"
        "  parameters: {stop: [1:30, off, 1_000], max_tokens: 017, top_k: 0x1F}\n"
        f"  enabled: {enabled}\n"
        "  is_default: true\n",
        encoding="utf-8",
    )
    return fixture_set


async def test_a_yaml_scalar_that_yaml_1_1_would_coerce_loads_as_the_text_it_shows(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """``on``, ``0b101``, ``1:30`` are text in text columns (they were refused, read as
    true, 5 and 90) and in JSON (where 90, false and 1000 were stored without a word);
    numbers are the core schema's: ``017`` is 17 (was octal 15), ``0x1F`` 31."""
    await manager.create_tenant(TENANT, tier="premium")

    await manager.load_fixtures(TENANT, source=_ai_model_yaml(tmp_path, "true"))

    async with manager.store.session(TENANT, readonly=True) as session:
        table = session.metadata.tables["tenant.ai_models"]
        columns = ("provider", "model_name", "version", "parameters", "enabled")
        query = select(*(table.c[name] for name in columns))
        row = tuple((await session.connection.execute(query)).one())
    parameters = {"stop": ["1:30", "off", "1_000"], "max_tokens": 17, "top_k": 31}
    assert ("on", "0b101", "1:30", parameters, True) == row


async def test_on_in_a_yaml_boolean_column_is_refused_naming_file_record_and_column(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """``enabled: on`` was loaded as true; it is the text 'on', which a boolean column
    refuses (rule type) as it refuses 'on' in CSV; nothing is written."""
    await manager.create_tenant(TENANT, tier="premium")

    with pytest.raises(RecordError) as caught:
        await manager.load_fixtures(TENANT, source=_ai_model_yaml(tmp_path, "on"))

    error = caught.value
    assert ("ai_models.yaml", 1, "enabled", "type") == (
        error.path,
        error.record,
        error.column,
        error.rule,
    )
    assert "expected true or false, found 'on'" in str(error)
    assert {} == await _table_counts(manager, TENANT)


async def test_yes_in_a_yaml_boolean_column_loads_as_the_text_yes_does_from_csv(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """``yes`` is text by the core schema; a boolean column takes the text 'yes' (from
    CSV too) as true, so the value loads as it did under YAML 1.1."""
    await manager.create_tenant(TENANT, tier="premium")

    await manager.load_fixtures(TENANT, source=_ai_model_yaml(tmp_path, "yes"))

    async with manager.store.session(TENANT, readonly=True) as session:
        table = session.metadata.tables["tenant.ai_models"]
        enabled = (await session.connection.execute(select(table.c.enabled))).scalar_one()
    assert enabled is True


async def test_a_csv_row_of_empty_fields_is_refused_naming_its_line_not_skipped(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """``,`` is a record whose key is NULL: refused at its file and line, and nothing is
    written (it was skipped without a word, and the rest loaded)."""
    source = tmp_path / "empty_row"
    source.mkdir()
    (source / "artists.csv").write_text(f"artist_id,name\n{'a' * 22},One\n,\n\n{'b' * 22},Two\n")
    await manager.create_tenant(TENANT)

    with pytest.raises(RecordError) as caught:
        await manager.load_fixtures(TENANT, source=source)

    assert ("artists.csv", 3, "artist_id") == (
        caught.value.path,
        caught.value.line,
        caught.value.column,
    )
    assert {} == await _table_counts(manager, TENANT)


async def test_a_null_json_value_is_stored_as_sql_null_on_both_backends(
    manager: FixtureManager, demo_set: Path
) -> None:
    """An AI model given ``"credentials": null`` (or none) has SQL NULL there, not the
    JSON text 'null' (SQLite stored that, PostgreSQL NULL); validate-data still agrees."""
    models = json.loads((demo_set / "ai_models.json").read_text(encoding="utf-8"))
    without = sorted(m["model_id"] for m in models if m.get("credentials") is None)
    assert without
    await manager.create_tenant(TENANT, tier="enterprise")
    await manager.load_fixtures(TENANT, source=demo_set)

    async with manager.store.session(TENANT, readonly=True) as session:
        table = session.metadata.tables["tenant.ai_models"]
        query = select(table.c.model_id).where(table.c.credentials.is_(None))
        stored_null = sorted((await session.connection.execute(query)).scalars())

    assert without == stored_null
    report = await manager.validate_tenant(TENANT)
    assert [] == report.problems
    assert "match" == report.checksums["ai_models"].status


async def test_failed_reload_of_a_loaded_tenant_keeps_the_previous_rows(
    manager: FixtureManager, demo_set: Path, tmp_path: Path, demo_counts: dict[str, int]
) -> None:
    """A changed set whose last file is bad rolls back the upserts made before it."""
    await manager.create_tenant(TENANT)
    await manager.load_fixtures(TENANT, source=demo_set)
    applied_before = await _applied(manager, TENANT)
    broken = _copy_set(demo_set, tmp_path)
    track_id = _rename_first_track(broken, "Must Not Stick")
    original_name = _first_jsonl_record(demo_set / "tracks.jsonl")["name"]
    _bad_last_record(broken, track_id=MISSING_TRACK_ID)

    with pytest.raises(IntegrityViolationError):
        await manager.load_fixtures(TENANT, source=broken)

    assert await _table_counts(manager, TENANT) == demo_counts
    assert await _track_name(manager, TENANT, track_id) == original_name
    assert await _applied(manager, TENANT) == applied_before


async def test_tenant_is_usable_after_a_failed_load(
    manager: FixtureManager, demo_set: Path, tmp_path: Path, demo_counts: dict[str, int]
) -> None:
    """After a refused load the clean set loads in full."""
    await manager.create_tenant(TENANT)
    broken = _copy_set(demo_set, tmp_path)
    _bad_last_record(broken, track_id=MISSING_TRACK_ID)
    with pytest.raises(IntegrityViolationError):
        await manager.load_fixtures(TENANT, source=broken)

    report = await manager.load_fixtures(TENANT, source=demo_set)

    assert report.row_counts == demo_counts
    assert await _table_counts(manager, TENANT) == demo_counts


@pytest.mark.usefixtures("load_path")
async def test_foreign_key_violation_found_by_the_database_is_an_integrity_violation(
    manager: FixtureManager, demo_set: Path, tmp_path: Path, backend: str
) -> None:
    """A playlist_tracks row naming a missing track is refused by the database, typed."""
    await manager.create_tenant(TENANT)
    broken = _copy_set(demo_set, tmp_path)
    _bad_last_record(broken, track_id=MISSING_TRACK_ID)

    with pytest.raises(IntegrityViolationError) as caught:
        await manager.load_fixtures(TENANT, source=broken)

    violation = caught.value
    assert violation.table == "playlist_tracks"
    assert violation.path == LAST_FILE
    assert violation.tenant_id == TENANT
    assert "foreign key" in violation.message.lower()
    if backend == "postgresql":
        assert violation.constraint == "fk_playlist_tracks_track_id_tracks"


@pytest.mark.parametrize(
    ("tier", "tables"),
    [
        pytest.param("free", FREE_TABLES, id="free"),
        pytest.param("premium", PREMIUM_TABLES, id="premium"),
        pytest.param("enterprise", ENTERPRISE_TABLES, id="enterprise"),
    ],
)
async def test_tier_template_decides_which_tables_a_tenant_gets(
    manager: FixtureManager, demo_counts: dict[str, int], tier: str, tables: set[str]
) -> None:
    """Loading without a source fills exactly the tables of the tenant's tier (the free
    tier from the starter set, which fits its limits; the others from the demo set)."""
    from tenancy_fixtures.fixtures.templates import BUILTIN_TEMPLATE_DIR

    tenant = f"{tier}_tenant"
    await manager.create_tenant(TenantFixture(tenant_id=tenant, tier=tier))
    if tier == "free":
        demo_counts = _file_counts(BUILTIN_TEMPLATE_DIR / "fixtures" / "starter")

    report = await manager.load_fixtures(tenant)

    counts = await _table_counts(manager, tenant)
    assert {table for table, rows in counts.items() if rows} == tables | AGGREGATES
    assert {table: counts[table] for table in tables} == {t: demo_counts[t] for t in tables}
    assert report.row_counts == {t: demo_counts[t] for t in tables}
    assert (await manager.validate_tenant(tenant)).ok


async def test_free_tenant_gets_fewer_tables_than_enterprise(manager: FixtureManager) -> None:
    """A free tenant's load fills fewer tables than an enterprise tenant's."""
    await manager.create_tenant(TenantFixture(tenant_id="small_tenant", tier="free"))
    await manager.create_tenant(TenantFixture(tenant_id="large_tenant", tier="enterprise"))

    free = await manager.load_fixtures("small_tenant")
    enterprise = await manager.load_fixtures("large_tenant")

    assert set(free.row_counts) < set(enterprise.row_counts)
    assert len(free.row_counts) < len(enterprise.row_counts)


async def test_validate_tenant_is_ok_after_a_clean_load(
    manager: FixtureManager, demo_set: Path, demo_counts: dict[str, int]
) -> None:
    """A freshly loaded tenant passes every integrity check."""
    await manager.create_tenant(TENANT)
    await manager.load_fixtures(TENANT, source=demo_set)

    report = await manager.validate_tenant(TENANT)

    assert report.ok, report.problems
    assert report.orphans == {}
    assert {t: n for t, n in report.row_counts.items() if n} == demo_counts


async def _plant_orphan_playlist_track(manager: FixtureManager, tenant_id: str) -> None:
    """Insert a playlist_tracks row whose track does not exist, bypassing FK checks."""
    async with manager.store.session(tenant_id) as session:
        table = session.metadata.tables["tenant.playlist_tracks"]
        parent = (await session.connection.execute(select(table).limit(1))).one()
    row = dict(parent._mapping) | {"position": 9999, "track_id": MISSING_TRACK_ID}
    if manager.store.backend == "postgresql":
        async with manager.store.session(tenant_id) as session:
            await session.connection.execute(text("SET LOCAL session_replication_role = replica"))
            await session.connection.execute(insert(table).values(**row))
        return

    # SQLite: PRAGMA foreign_keys is a no-op inside the store's transaction, so plant the
    # row through a plain sqlite3 connection, which has foreign keys off by default.
    def plant() -> None:
        connection = sqlite3.connect(manager.store.storage_name(tenant_id))
        try:
            with connection:
                connection.execute(
                    "INSERT INTO playlist_tracks (playlist_id, position, track_id, added_by, "
                    "added_at) VALUES (?, ?, ?, ?, ?)",
                    (
                        row["playlist_id"],
                        row["position"],
                        row["track_id"],
                        row["added_by"],
                        row["added_at"].isoformat(sep=" "),
                    ),
                )
        finally:
            connection.close()

    await asyncio.to_thread(plant)


async def test_validate_tenant_reports_an_orphan_row(
    manager: FixtureManager, demo_set: Path
) -> None:
    """A playlist_tracks row whose track is missing is reported as an orphan."""
    await manager.create_tenant(TENANT)
    await manager.load_fixtures(TENANT, source=demo_set)

    await _plant_orphan_playlist_track(manager, TENANT)
    report = await manager.validate_tenant(TENANT)

    assert not report.ok
    assert report.orphans == {"playlist_tracks.track_id": 1}
    assert any("playlist_tracks.track_id" in problem for problem in report.problems)


async def test_validate_tenant_reports_rows_missing_since_the_load(
    manager: FixtureManager, demo_set: Path, demo_counts: dict[str, int]
) -> None:
    """Deleting loaded rows makes validation report the table as short."""
    await manager.create_tenant(TENANT)
    await manager.load_fixtures(TENANT, source=demo_set)
    async with manager.store.session(TENANT) as session:
        events = session.metadata.tables["tenant.listening_events"]
        await session.connection.execute(delete(events))

    report = await manager.validate_tenant(TENANT)

    assert not report.ok
    assert report.orphans == {}
    assert report.problems == [
        f"listening_events: 0 rows, but {demo_counts['listening_events']} were loaded "
        "by its fixtures"
    ]


class _Rendezvous:
    """Lets two loads wait (briefly) for each other inside their transactions."""

    def __init__(self) -> None:
        self.arrived = 0
        self.both = asyncio.Event()

    async def meet(self) -> None:
        self.arrived += 1
        if self.arrived == 2:
            self.both.set()
        # SQLite serialises the transactions, so the other may never arrive: do not wait long.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.both.wait(), 0.5)


class _MeetingLoader(DataLoader):
    """The demo set's DataLoader that meets the other concurrent load before writing."""

    def __init__(self, source: Path, rendezvous: _Rendezvous, manager: FixtureManager) -> None:
        super().__init__(source, metadata=manager.store.metadata)
        self.rendezvous = rendezvous

    async def apply(self, session: TenantSession, context: LoadContext) -> Mapping[str, int]:
        await self.rendezvous.meet()
        return await super().apply(session, context)


async def test_concurrent_loads_of_the_same_set_apply_it_once(
    manager: FixtureManager,
    settings: Settings,
    demo_set: Path,
    demo_counts: dict[str, int],
    backend: str,
) -> None:
    """Two loads of one set into one tenant at once both succeed and the rows land once."""
    await manager.create_tenant(TENANT)
    rendezvous = _Rendezvous()
    async with FixtureManager(settings) as other:
        reports = await asyncio.gather(
            manager.load_fixtures(TENANT, fixtures=[_MeetingLoader(demo_set, rendezvous, manager)]),
            other.load_fixtures(TENANT, fixtures=[_MeetingLoader(demo_set, rendezvous, other)]),
        )

    assert sorted(report.changed for report in reports) == [False, True]
    assert await _table_counts(manager, TENANT) == demo_counts
    assert (await manager.validate_tenant(TENANT)).ok


@pytest.mark.parametrize("load_path", ["keys-deferred"], indirect=True)
@pytest.mark.usefixtures("load_path")
async def test_a_tenant_created_after_a_bulk_load_has_every_constraint(
    manager: FixtureManager, demo_set: Path
) -> None:
    """Deferring constraints during one tenant's load leaves the next tenant's schema whole."""
    before = render_schema_sql(manager.store.metadata)
    await manager.create_tenant("first_loaded")
    await manager.load_fixtures("first_loaded", source=demo_set)
    await manager.create_tenant("created_after")

    assert render_schema_sql(manager.store.metadata) == before
    await manager.load_fixtures("created_after", source=demo_set)
    async with manager.store.session("created_after") as session:
        with pytest.raises(DBAPIError):
            async with session.connection.begin_nested():
                await session.connection.execute(
                    insert(session.metadata.tables["tenant.playlist_tracks"]).values(
                        playlist_id="nope", position=0, track_id="nope", added_at=_NOW
                    )
                )


async def test_a_data_fixture_verifies_while_its_rows_are_there(
    manager: FixtureManager, demo_set: Path
) -> None:
    """verify() is clean after a load and names the table once rows go missing."""
    await manager.create_tenant(TENANT)
    await manager.load_fixtures(TENANT, source=demo_set)
    loader = DataLoader(demo_set, metadata=manager.store.metadata)

    async with manager.store.session(TENANT) as session:
        assert await loader.verify(session) == []
        await session.connection.execute(delete(session.metadata.tables["tenant.listening_events"]))
        problems = await loader.verify(session)

    assert len(problems) == 1
    assert problems[0].startswith("listening_events: 0 rows")


async def test_a_reload_naming_one_key_twice_is_refused_on_both_backends(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """A set merged into a populated table that gives one primary key twice (two files
    of the table here) is refused naming the repeat, as its first load into the empty
    table would be; SQLite merged it silently, the last row winning."""
    await manager.create_tenant(TENANT)
    first = tmp_path / "first"
    first.mkdir()
    (first / "users.csv").write_text("user_id,display_name\nu1,Zoe\n", encoding="utf-8")
    await manager.load_fixtures(TENANT, source=first)
    twice = tmp_path / "twice"
    twice.mkdir()
    (twice / "a.csv").write_text("user_id,display_name\nu1,Ann\n", encoding="utf-8")
    (twice / "b.jsonl").write_text('{"user_id": "u1", "display_name": "Bob"}\n', "utf-8")
    files = [{"table": "users", "path": "a.csv"}, {"table": "users", "path": "b.jsonl"}]
    (twice / "fixtures.json").write_text(json.dumps({"name": "twice", "files": files}), "utf-8")

    with pytest.raises(IntegrityViolationError) as refused:
        await manager.load_fixtures(TENANT, source=twice)

    assert ("b.jsonl", 1, "user_id") == (
        refused.value.path,
        refused.value.line,
        refused.value.column,
    )
    async with manager.store.session(TENANT, readonly=True) as session:
        users = session.metadata.tables["tenant.users"]
        stored = (await session.connection.execute(select(users.c.display_name))).all()
    assert [("Zoe",)] == [tuple(row) for row in stored]
