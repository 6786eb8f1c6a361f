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
    manager: FixtureManager, backend: str, demo_set: Path, tmp_path: Path
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
    if backend == "postgresql":  # found when the keys are rebuilt after the bulk COPY
        assert error.line in {duplicated, len(lines) + 1}
    assert (await manager.tenant_status(tenant)).total_rows == 0
