"""``replace`` mode of a table other tables refer to: the same on both backends."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from tenancy_fixtures import DataLoader, FixtureManager, IntegrityViolationError
from tenancy_fixtures.store.control_plane import count_rows

TENANT = "replacing_tenant"
#: The first artist of the demo set, renamed in the load a replace then refuses.
ARTIST_ID = "HF7yIqjyd0ToeEU4MwbgOR"


async def _counts(manager: FixtureManager) -> dict[str, int]:
    async with manager.store.session(TENANT) as session:
        return await count_rows(session.connection, session.metadata.sorted_tables)


async def _artist_name(manager: FixtureManager) -> str:
    async with manager.store.session(TENANT) as session:
        artists = session.metadata.tables["tenant.artists"]
        found = await session.connection.execute(
            select(artists.c.name).where(artists.c.artist_id == ARTIST_ID)
        )
        return str(found.scalar_one())


def _renamed_artist_set(demo_set: Path, tmp_path: Path) -> Path:
    """The demo set with its first artist renamed (loaded before the tracks and
    playlists, so a refused replace shows whether rows written before it are kept)."""
    edited = tmp_path / "edited"
    shutil.copytree(demo_set, edited)
    artists = json.loads((edited / "artists.json").read_text(encoding="utf-8"))
    assert artists[0]["artist_id"] == ARTIST_ID
    artists[0]["name"] = "Renamed By The Test"
    (edited / "artists.json").write_text(json.dumps(artists), encoding="utf-8")
    return edited


@pytest.mark.parametrize(
    ("table", "constraint", "referring"),
    [
        # audio_features (ON DELETE CASCADE) and listening_events (NO ACTION) refer to it.
        ("tracks", "fk_audio_features_track_id_tracks", "audio_features"),
        # Only ON DELETE CASCADE references: PostgreSQL used to delete the children too.
        ("playlists", "fk_comments_playlist_id_playlists", "comments"),
        ("users", "fk_playlists_owner_id_users", "playlists"),
    ],
)
async def test_replacing_a_table_other_tables_refer_to_is_refused_alike_and_changes_nothing(
    manager: FixtureManager,
    demo_set: Path,
    tmp_path: Path,
    table: str,
    constraint: str,
    referring: str,
) -> None:
    """Neither backend deletes the referring rows (by cascade) or keeps them (SQLite's
    deferred keys let the same keys come back): the load is refused before its replace
    deletes anything, naming tenant, table, file and foreign key, and rolled back whole,
    so the tenant still validates."""
    await manager.create_tenant(TENANT)
    await manager.load_fixtures(TENANT, source=demo_set)
    before = await _counts(manager)
    loader = DataLoader(
        _renamed_artist_set(demo_set, tmp_path),
        metadata=manager.store.metadata,
        modes={table: "replace", "playlist_tracks": "skip"},
    )

    with pytest.raises(IntegrityViolationError) as refused:
        await manager.load_fixtures(TENANT, fixtures=[loader], force=True)

    error = refused.value
    assert (TENANT, table, constraint) == (error.tenant_id, error.table, error.constraint)
    assert error.path is not None
    assert Path(error.path).name.startswith(f"{table}.")
    assert f"cannot replace {table}: rows of {referring} refer to its rows" in str(error)
    assert before == await _counts(manager)
    assert "Parade & Zoë" == await _artist_name(manager)
    assert [] == (await manager.validate_tenant(TENANT)).problems


async def test_replacing_a_table_no_other_table_refers_to_keeps_only_the_new_rows(
    manager: FixtureManager, demo_set: Path, tmp_path: Path
) -> None:
    """A parent table whose children hold no rows is replaced on both backends: it holds
    the new rows only, and its checksum matches what the replace recorded."""
    catalogue = tmp_path / "catalogue"
    catalogue.mkdir()
    for name in ("artists.json", "albums.json", "tracks.jsonl"):
        shutil.copy(demo_set / name, catalogue / name)
    await manager.create_tenant(TENANT)
    await manager.load_fixtures(TENANT, source=catalogue)
    fewer = tmp_path / "fewer"
    fewer.mkdir()
    lines = (demo_set / "tracks.jsonl").read_text(encoding="utf-8").splitlines()
    (fewer / "tracks.jsonl").write_text("\n".join(lines[:10]) + "\n", encoding="utf-8")
    loader = DataLoader(fewer, metadata=manager.store.metadata, modes={"tracks": "replace"})

    await manager.load_fixtures(TENANT, fixtures=[loader])

    assert 10 == (await _counts(manager))["tracks"]
    report = await manager.validate_tenant(TENANT)
    assert [] == report.problems
    assert "match" == report.checksums["tracks"].status
