"""Failure modes found in review, each pinned by the test that would have caught it.

Refusals are audited, config changes are seen at once in the same process, fixture
templates cannot interleave parents and children, storage errors say whether a retry
may help, unknown tenants leave no file behind, SQLite readers are not blocked by a
writer, JSON columns refuse what is not JSON, manifests refuse NUL characters, drops
leave no tombstones, and a duplicate key found after the bulk COPY names its line.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tenancy_fixtures import (
    ConfigError,
    ConfigFixture,
    FixtureError,
    FixtureManager,
    FixtureSetError,
    IntegrityViolationError,
    RecordError,
    Settings,
    SpotifyDataLoader,
    StorageError,
    TemplateError,
    TenantFixture,
    TenantNotFoundError,
    spotify_metadata,
)
from tenancy_fixtures.loading.fixture_sets import open_fixture_set
from tenancy_fixtures.loading.planning import sort_by_dependencies
from tenancy_fixtures.loading.readers import SourceRecord
from tenancy_fixtures.loading.records import RowBuilder
from tenancy_fixtures.store import sqlite as sqlite_store
from tenancy_fixtures.store.control_plane import AuditRecord

UNREACHABLE_POSTGRES = "postgresql+asyncpg://127.0.0.1:1/nowhere"
LAST_FILE = "playlist_tracks.jsonl"
#: A valid ai_models record but for ``parameters``.
AI_MODEL = {
    "model_id": "m1",
    "provider": "internal",
    "model_name": "two-tower",
    "version": "1.0",
    "task": "recommendation",
}
NAN_BUG = (
    "BUG: loaders.records._json only checks containers with allow_nan=False; a bare "
    "NaN/Infinity float, and JSON text parsed with json.loads (which accepts NaN), pass "
    "into a JSON column"
)
READER_BLOCKED_BUG = (
    "BUG: SQLiteTenantStore opens every control-plane transaction with BEGIN IMMEDIATE, "
    "and a tenant write session holds the RESERVED lock on the attached tenancy.db, so "
    "tenant_status/validate_tenant of another tenant wait for the writer (busy_timeout, "
    "30 s) and then fail with 'database is locked'"
)


def _unique(stem: str) -> str:
    """A tenant id no earlier test of this run used (the audit log outlives tenants)."""
    return f"{stem}_{uuid.uuid4().hex[:8]}"


def _refusals(records: list[AuditRecord], action: str) -> list[AuditRecord]:
    """The audit records of ``action`` whose outcome is ``refused``."""
    return [r for r in records if r.action == action and r.outcome == "refused"]


def _sqlite_settings(tmp_path: Path) -> Settings:
    """Settings for a fresh SQLite data directory under ``tmp_path``."""
    return Settings(database_url=f"sqlite:///{tmp_path / 'data'}", actor="pytest")


def _ai_model_row(parameters: Any) -> tuple[Any, ...]:
    """The ai_models row RowBuilder makes of a record with ``parameters``."""
    builder = RowBuilder(spotify_metadata().tables["tenant.ai_models"])
    record = SourceRecord({**AI_MODEL, "parameters": parameters}, line=1, record=1)
    return builder.build(record, path="ai_models.jsonl")


# --- refusals are audited ------------------------------------------------------------


async def test_a_create_refused_for_an_unknown_tier_is_audited(manager: FixtureManager) -> None:
    """``create_tenant`` with tier "gold" raises ConfigError and audits a refused create."""
    tenant = _unique("gold")
    with pytest.raises(ConfigError):
        await manager.create_tenant(TenantFixture(tenant_id=tenant, tier="gold"))

    refused = _refusals(await manager.audit_log(tenant), "tenant.create")
    assert [r.tenant_id for r in refused] == [tenant]
    assert await manager.list_tenants(prefix=tenant) == []


async def test_a_create_refused_for_an_unknown_feature_is_audited(
    manager: FixtureManager,
) -> None:
    """``create_tenant`` with an unknown feature flag raises ConfigError and is audited."""
    tenant = _unique("feature")
    with pytest.raises(ConfigError):
        await manager.create_tenant(TenantFixture(tenant_id=tenant, features=["warp_drive"]))

    refused = _refusals(await manager.audit_log(tenant), "tenant.create")
    assert [r.tenant_id for r in refused] == [tenant]


async def test_an_unknown_setting_is_refused_naming_it_and_the_known_settings(
    manager: FixtureManager,
) -> None:
    """``settings={"nope": 1}`` was kept and never read, on create and on a change;
    now a ConfigError naming ``settings.nope`` and the config template's settings, as
    an unknown flag or limit is, and nothing is made or changed."""
    tenant = _unique("setting")
    with pytest.raises(ConfigError) as created:
        await manager.create_tenant(TenantFixture(tenant_id=tenant, settings={"nope": 1}))
    assert await manager.list_tenants(prefix=tenant) == []
    await manager.create_tenant(tenant)
    with pytest.raises(ConfigError) as changed:
        await manager.update_tenant_config(tenant, settings={"nope": 1, "locale": "fr"})

    for refused in (created.value, changed.value):
        assert ("settings.nope", tenant) == (refused.key, refused.tenant_id)
        assert "unknown setting; the settings are default_market, locale, region" in str(refused)
    config = await manager.get_tenant_config(tenant)
    assert ("nope" not in config.settings, "en") == (True, config.settings["locale"])


async def test_a_config_change_refused_for_a_bad_limit_is_audited(
    manager: FixtureManager, settings: Settings
) -> None:
    """A bad limit applied through a ConfigFixture to an existing tenant audits a refusal."""
    tenant = _unique("limit")
    await manager.create_tenant(tenant)
    config = ConfigFixture(settings)
    try:
        with pytest.raises(ConfigError):
            await config.apply_tenant_config(
                TenantFixture(tenant_id=tenant, limits={"api_calls": -1})
            )
    finally:
        await config.aclose()

    refused = _refusals(await manager.audit_log(tenant), "config.apply")
    assert [r.tenant_id for r in refused] == [tenant]
    assert (await manager.get_tenant_config(tenant)).limits.api_calls >= 0


# --- the in-process config cache is shared -------------------------------------------


async def test_a_config_change_through_a_config_fixture_is_seen_at_once_by_a_manager(
    manager: FixtureManager, settings: Settings
) -> None:
    """A tier change applied by a separate ConfigFixture is what the manager reads next."""
    tenant = _unique("shared_cache")
    await manager.create_tenant(tenant)
    assert (await manager.get_tenant_config(tenant)).tier == "free"  # now cached

    config = ConfigFixture(settings)
    try:
        await config.apply_tenant_config(TenantFixture(tenant_id=tenant, tier="enterprise"))
    finally:
        await config.aclose()

    assert (await manager.get_tenant_config(tenant)).tier == "enterprise"


# --- tenant templates ----------------------------------------------------------------


def test_fixtures_that_interleave_parents_and_children_are_refused(demo_set: Path) -> None:
    """Parents and children split across two fixtures both ways raise TemplateError."""
    metadata = spotify_metadata()
    first = SpotifyDataLoader(
        demo_set, name="fixture_a", tables=["artists", "playlist_tracks"], metadata=metadata
    )
    second = SpotifyDataLoader(
        demo_set,
        name="fixture_b",
        tables=["users", "albums", "tracks", "playlists"],
        metadata=metadata,
    )

    with pytest.raises(TemplateError) as caught:
        sort_by_dependencies([first, second], metadata)
    assert "fixture_a" in str(caught.value)
    assert "fixture_b" in str(caught.value)


def test_fixtures_split_consistently_are_ordered_parents_first(demo_set: Path) -> None:
    """A split where every parent is in an earlier fixture is accepted, parents first."""
    metadata = spotify_metadata()
    parents = SpotifyDataLoader(
        demo_set, name="parents", tables=["users", "artists", "albums"], metadata=metadata
    )
    children = SpotifyDataLoader(
        demo_set,
        name="children",
        tables=["tracks", "playlists", "playlist_tracks"],
        metadata=metadata,
    )

    ordered = sort_by_dependencies([children, parents], metadata)
    assert [loader.name for loader in ordered] == ["parents", "children"]


# --- storage errors say whether a retry may help -------------------------------------


async def test_an_unreachable_postgresql_is_a_transient_storage_error() -> None:
    """``list_tenants`` on a refused connection raises StorageError with transient True."""
    manager = FixtureManager(Settings(database_url=UNREACHABLE_POSTGRES, actor="pytest"))
    try:
        with pytest.raises(StorageError) as caught:
            await manager.list_tenants()
    finally:
        await manager.aclose()
    assert caught.value.transient is True


@pytest.mark.postgres
async def test_a_missing_postgresql_database_is_a_permanent_storage_error(
    postgres_url: str,
) -> None:
    """``list_tenants`` on a database the server lacks raises StorageError, not transient."""
    missing = f"tf_no_such_db_{uuid.uuid4().hex[:10]}"
    url = make_url(postgres_url).set(database=missing).render_as_string(hide_password=False)
    manager = FixtureManager(Settings(database_url=url, actor="pytest"))
    try:
        with pytest.raises(StorageError) as caught:
            await manager.list_tenants()
    finally:
        await manager.aclose()
    assert caught.value.transient is False
    assert missing in str(caught.value)


# --- unknown tenants -----------------------------------------------------------------


async def test_a_session_of_an_unknown_tenant_raises_not_found_and_creates_no_file(
    manager: FixtureManager, backend: str, settings: Settings
) -> None:
    """``store.session`` of an unknown tenant raises TenantNotFoundError and leaves no file."""
    with pytest.raises(TenantNotFoundError):
        async with manager.store.session("ghost_session"):
            pass

    assert not await manager.store.storage_exists("ghost_session")
    if backend == "sqlite":
        assert not (settings.data_dir / "tenants" / "ghost_session.db").exists()


# --- SQLite readers and writers ------------------------------------------------------


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite waits 1 s for a lock instead of 30 s, so a blocked reader fails fast."""
    monkeypatch.setattr(sqlite_store, "_BUSY_TIMEOUT_MS", 1000, raising=False)


@pytest.mark.usefixtures("short_busy_timeout")
async def test_sqlite_tenant_status_is_not_blocked_by_another_tenants_writer(
    sqlite_manager: FixtureManager,
) -> None:
    """``tenant_status("b")`` completes while a write session on "a" is open."""
    await sqlite_manager.create_tenant("a")
    await sqlite_manager.create_tenant("b")

    async with sqlite_manager.store.session("a"):
        status = await asyncio.wait_for(sqlite_manager.tenant_status("b"), 5)
    assert status.tenant.tenant_id == "b"


@pytest.mark.usefixtures("short_busy_timeout")
async def test_sqlite_validate_tenant_is_not_blocked_by_another_tenants_writer(
    sqlite_manager: FixtureManager,
) -> None:
    """``validate_tenant("b")`` completes while a write session on "a" is open."""
    await sqlite_manager.create_tenant("a")
    await sqlite_manager.create_tenant("b")

    async with sqlite_manager.store.session("a"):
        report = await asyncio.wait_for(sqlite_manager.validate_tenant("b"), 5)
    assert report.ok


@pytest.mark.usefixtures("short_busy_timeout")
async def test_sqlite_readonly_session_is_not_blocked_by_another_tenants_writer(
    sqlite_manager: FixtureManager,
) -> None:
    """A read-only session on "b" opens and reads while a write session on "a" is open."""
    await sqlite_manager.create_tenant("a")
    await sqlite_manager.create_tenant("b")

    async def read_b() -> bool:
        async with sqlite_manager.store.session("b", readonly=True) as session:
            return await session.all_empty()

    async with sqlite_manager.store.session("a"):
        assert await asyncio.wait_for(read_b(), 5)


# --- JSON columns --------------------------------------------------------------------


@pytest.mark.parametrize(
    "parameters",
    [
        pytest.param(date(2024, 1, 1), id="date"),
        pytest.param({"released": date(2024, 1, 1)}, id="date-in-dict"),
        pytest.param({"x": math.nan}, id="nan-in-dict"),
        pytest.param([math.inf], id="inf-in-list"),
        pytest.param(math.nan, id="bare-nan"),
        pytest.param(math.inf, id="bare-inf"),
        pytest.param("NaN", id="nan-text"),
        pytest.param('{"x": NaN}', id="nan-in-json-text"),
    ],
)
def test_a_json_column_refuses_values_that_are_not_json(parameters: Any) -> None:
    """A date, or NaN or Infinity (inside a container, bare, or in JSON text), in
    ``parameters`` raises RecordError there."""
    with pytest.raises(RecordError) as caught:
        _ai_model_row(parameters)
    assert caught.value.column == "parameters"


# --- manifests -----------------------------------------------------------------------


def test_a_manifest_path_with_a_nul_character_is_refused(tmp_path: Path) -> None:
    """A ``fixtures.json`` entry whose path holds NUL raises FixtureSetError."""
    source = tmp_path / "nul_set"
    source.mkdir()
    (source / "artists.json").write_text("[]", encoding="utf-8")
    manifest = {"files": [{"table": "artists", "path": "artists\x00.json"}]}
    (source / "fixtures.json").write_text(json.dumps(manifest), encoding="utf-8")

    with pytest.raises(FixtureSetError) as caught:
        open_fixture_set(source, metadata=spotify_metadata())
    assert "NUL" in str(caught.value)


# --- drop tombstones -----------------------------------------------------------------


async def test_sqlite_drop_leaves_no_dropping_file(
    sqlite_manager: FixtureManager, tmp_path: Path
) -> None:
    """After ``drop_tenant`` the tenants directory holds no ``*.dropping`` file."""
    await sqlite_manager.create_tenant("doomed")
    await sqlite_manager.drop_tenant("doomed")

    tenants_dir = tmp_path / "data" / "tenants"
    assert list(tenants_dir.glob("*.dropping")) == []
    assert not (tenants_dir / "doomed.db").exists()


async def test_sqlite_leftover_dropping_file_of_an_unregistered_tenant_is_deleted(
    sqlite_manager: FixtureManager, tmp_path: Path
) -> None:
    """A stray ``<id>.db.dropping`` is deleted when the next store initializes."""
    await sqlite_manager.list_tenants()  # creates the data directory
    tomb = tmp_path / "data" / "tenants" / "interrupted.db.dropping"
    tomb.touch()

    async with FixtureManager(_sqlite_settings(tmp_path)) as fresh:
        assert await fresh.list_tenants() == []
    assert not tomb.exists()


# --- duplicate keys in the last file -------------------------------------------------


@pytest.mark.usefixtures("load_path")
async def test_a_duplicate_key_in_the_last_file_names_the_file_and_line(
    manager: FixtureManager, demo_set: Path, tmp_path: Path
) -> None:
    """A repeated ``playlist_tracks`` line fails the load naming that file (and its line)."""
    source = tmp_path / "duplicate_set"
    shutil.copytree(demo_set, source)
    last = source / LAST_FILE
    lines = last.read_text(encoding="utf-8").splitlines()
    duplicated = 5
    last.write_text("\n".join([*lines, lines[duplicated - 1]]) + "\n", encoding="utf-8")
    tenant = _unique("duplicate")
    await manager.create_tenant(tenant)

    with pytest.raises(FixtureError) as caught:
        await manager.load_fixtures(tenant, source)

    error = caught.value
    assert error.path == LAST_FILE
    assert error.table == "playlist_tracks"
    # The repeat, on both backends, whether the key was in place or rebuilt after COPY.
    assert error.line == len(lines) + 1
    assert error.column == "playlist_id, position"
    assert (await manager.tenant_status(tenant)).total_rows == 0


def _users(*ids: str) -> list[dict[str, Any]]:
    """``users`` records with the keys ``ids``, each with an e-mail address of its own."""
    return [
        {"user_id": user, "display_name": f"User {user}", "email": f"{user}.{n}@example.com"}
        for n, user in enumerate(ids)
    ]


def _write_table(directory: Path, table: str, records: list[dict[str, Any]], fmt: str) -> str:
    """Write ``records`` as ``<table>.<fmt>`` (jsonl, json array or csv) in
    ``directory``; returns the file's name."""
    directory.mkdir(exist_ok=True)
    name = f"{table}.{fmt}"
    if fmt == "jsonl":
        text = "".join(json.dumps(record) + "\n" for record in records)
    elif fmt == "json":
        text = json.dumps(records, indent=1)
    else:
        header = list(records[0])
        rows = [",".join(str(record[c]) for c in header) for record in records]
        text = "\n".join([",".join(header), *rows]) + "\n"
    (directory / name).write_text(text, encoding="utf-8")
    return name


async def _refused_load(manager: FixtureManager, source: Path) -> IntegrityViolationError:
    """Load ``source`` strictly into a new tenant; the refusal, once nothing stayed."""
    tenant = _unique("dupkey")
    await manager.create_tenant(tenant)
    with pytest.raises(IntegrityViolationError) as caught:
        await manager.load_fixtures(tenant, source)
    assert (await manager.tenant_status(tenant)).total_rows == 0
    return caught.value


@pytest.mark.parametrize(
    ("fmt", "place"),
    [
        pytest.param("jsonl", {"line": 4, "record": None}, id="jsonl"),
        pytest.param("json", {"line": None, "record": 4}, id="json-array"),
        pytest.param("csv", {"line": 5, "record": None}, id="csv"),
    ],
)
@pytest.mark.usefixtures("load_path")
async def test_a_duplicate_key_in_a_set_is_refused_naming_its_file_line_and_column(
    manager: FixtureManager, tmp_path: Path, fmt: str, place: dict[str, int | None]
) -> None:
    """A 4th users record repeating the 1st one's user_id is refused on both backends as
    an IntegrityViolationError (exit 5) naming the file, the repeat's line (its record
    in a JSON array) and the key's column; SQLite's named the file alone."""
    name = _write_table(tmp_path / "set", "users", _users("u1", "u2", "u3", "u1", "u5"), fmt)

    error = await _refused_load(manager, tmp_path / "set")

    assert (error.path, error.table, error.column) == (name, "users", "user_id")
    assert {"line": error.line, "record": error.record} == place
    assert error.key_columns == ("user_id",)
    assert error.exit_code == 5
    shown = f"{name}:{place['line']}" if place["line"] else f"{name}, record {place['record']}"
    assert f"{shown}, column user_id: " in str(error)


@pytest.mark.parametrize("key", ["composite-primary-key", "unique-email"])
@pytest.mark.usefixtures("load_path")
async def test_a_repeated_composite_or_unique_key_is_refused_naming_its_line_and_columns(
    manager: FixtureManager, tmp_path: Path, key: str
) -> None:
    """A repeated (workspace_id, user_id) of workspace_members, or a repeated e-mail
    address of users (a unique constraint, not the primary key), names the repeat's line
    and every column of the key on both backends."""
    source = tmp_path / "set"
    users = _users("u1", "u2", "u3", "u4")
    if key == "unique-email":
        users[3]["email"] = users[1]["email"]
    _write_table(source, "users", users, "jsonl")
    if key == "composite-primary-key":
        workspace = {"workspace_id": "w1", "name": "W", "owner_id": "u1"}
        _write_table(
            source, "workspaces", [{**workspace, "created_at": "2026-01-02T03:04:05Z"}], "jsonl"
        )
        members = [
            {
                "workspace_id": "w1",
                "user_id": u,
                # Its owner a member with role owner: the workspace rules hold for
                # plain table files too.
                "role": "owner" if u == "u1" else "viewer",
                "joined_at": "2026-01-02T03:04:05Z",
            }
            for u in ("u1", "u2", "u3", "u2")
        ]
        _write_table(source, "workspace_members", members, "jsonl")

    error = await _refused_load(manager, source)

    expected = {
        "composite-primary-key": ("workspace_members.jsonl", 4, "workspace_id, user_id"),
        "unique-email": ("users.jsonl", 4, "email"),
    }[key]
    assert (error.path, error.line, error.column) == expected


async def test_a_strict_load_updates_a_key_the_tenant_holds_from_an_earlier_load(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """A key the tenant already holds is no duplicate for a strict load: it updates the
    row, on both backends."""
    tenant = _unique("held")
    await manager.create_tenant(tenant)
    _write_table(tmp_path / "first", "users", _users("u1", "u2"), "jsonl")
    await manager.load_fixtures(tenant, tmp_path / "first")
    again = _users("u3", "u1")
    again[1]["display_name"] = "Renamed"
    _write_table(tmp_path / "second", "users", again, "jsonl")

    report = await manager.load_fixtures(tenant, tmp_path / "second")

    assert report.changed
    assert (await manager.tenant_status(tenant)).total_rows == 3


@pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
async def test_a_key_repeated_in_a_set_loaded_into_a_tenant_with_rows_names_its_line(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """Into a table with rows a load upserts, and PostgreSQL refuses an upsert that meets
    one key twice (ON CONFLICT ... a second time): the refusal names the repeat's line
    and the key's column, as an insert's does. (SQLite's upsert keeps the later record.)"""
    tenant = _unique("upsert")
    await manager.create_tenant(tenant)
    _write_table(tmp_path / "first", "users", _users("u1"), "jsonl")
    await manager.load_fixtures(tenant, tmp_path / "first")
    _write_table(tmp_path / "second", "users", _users("u2", "u3", "u2"), "jsonl")

    with pytest.raises(IntegrityViolationError) as caught:
        await manager.load_fixtures(tenant, tmp_path / "second")

    assert (caught.value.path, caught.value.line) == ("users.jsonl", 3)
    assert caught.value.column == "user_id"
    assert (await manager.tenant_status(tenant)).total_rows == 1
