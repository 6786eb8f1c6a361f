"""Lenient loads of source files on both backends: a document its format refuses while
staging is set aside to the reject file, whatever it had staged taken back with it, and
the rest of the file loads; a strict load still refuses it whole."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tenancy_fixtures import FixtureManager
from tenancy_fixtures.errors import RecordError
from tenancy_fixtures.store.control_plane import count_rows
from tests.fixture_files import jsonl_records, write_jsonl

TENANT = "lenient_sources"
SAMPLES = Path(__file__).parent.parent / "data" / "spotify"
LISTENER = "lis-tener-0042"
#: A track only the refused entry names: it must not load.
LONE_TRACK = "LoneTrack0000000000001"


async def counts(manager: FixtureManager) -> dict[str, int]:
    """Rows per table, leaving out empty tables."""
    async with manager.store.session(TENANT, readonly=True) as session:
        found = await count_rows(session.connection, session.metadata.sorted_tables)
    return {table: rows for table, rows in found.items() if rows}


async def keys(manager: FixtureManager, table: str, column: str) -> set[Any]:
    async with manager.store.session(TENANT, readonly=True) as session:
        rows = await session.connection.execute(session.metadata.tables[f"tenant.{table}"].select())
        return {row._mapping[column] for row in rows}


def history_set(directory: Path) -> Path:
    """An extended export whose first entry has ``ms_played: -1`` and whose last names a
    track nothing else names and then ``shuffle: "x"`` (its track is staged before the
    refusal); a basic export in JSON Lines whose second entry has ``msPlayed: "x"``."""
    plays: list[dict[str, Any]] = json.loads(
        (SAMPLES / "Streaming_History_Audio_2024.json").read_text(encoding="utf-8")
    )
    plays[0] = {**plays[0], "ms_played": -1, "username": LISTENER}
    lone = {
        **plays[1],
        "ts": "2024-07-02T09:00:00Z",
        "spotify_track_uri": f"spotify:track:{LONE_TRACK}",
        "master_metadata_track_name": "Lone",
        "master_metadata_album_artist_name": "Nobody Else",
        "master_metadata_album_album_name": "Only Here",
        "shuffle": "x",
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "plays.json").write_text(json.dumps([*plays, lone]), encoding="utf-8")
    basic: list[dict[str, Any]] = json.loads(
        (SAMPLES / "StreamingHistory_music_0.json").read_text(encoding="utf-8")
    )
    basic[1] = {**basic[1], "msPlayed": "x"}
    write_jsonl(directory / "basic.jsonl", basic)
    manifest = [
        {"path": name, "format": "spotify-history", "options": {"user_id": LISTENER}}
        for name in ("plays.json", "basic.jsonl")
    ]
    (directory / "fixtures.json").write_text(json.dumps({"files": manifest}), encoding="utf-8")
    return directory


def good_plays(directory: Path) -> int:
    """The plays of :func:`history_set` that load: all entries but the three refused,
    less those without a track (episodes, unavailable)."""
    plays = json.loads((directory / "plays.json").read_text(encoding="utf-8"))
    basic = jsonl_records(directory / "basic.jsonl")
    tracked = [p for p in plays[1:-1] if p.get("spotify_track_uri")]
    named = [b for i, b in enumerate(basic) if i != 1 and b.get("trackName")]
    return len(tracked) + len(named)


async def test_a_lenient_load_sets_aside_history_entries_their_format_refuses(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """The refused entries go to the reject file, named by source file and entry, as
    read; the track only a refused entry named is not loaded; the listener the first
    (refused) entry staged still loads with the other plays."""
    await manager.create_tenant(TENANT)
    source = history_set(tmp_path / "history")

    report = await manager.load_fixtures(
        TENANT, source, validation="lenient", reject_dir=tmp_path / "rejects"
    )

    assert report.reject_file is not None
    lines = jsonl_records(report.reject_file)
    assert [
        ("plays.json", "listening_events", None, 1, "ms_played", "format:spotify_history"),
        ("plays.json", "listening_events", None, 6, "shuffle", "format:spotify_history"),
        ("basic.jsonl", "listening_events", 2, 2, "msPlayed", "format:spotify_history"),
    ] == [(r["path"], r["table"], r["line"], r["index"], r["column"], r["rule"]) for r in lines]
    assert ("SE", LISTENER) == (lines[0]["record"]["conn_country"], lines[0]["record"]["username"])
    assert "x" == lines[2]["record"]["msPlayed"]
    assert all(r["message"] for r in lines)
    assert 3 == report.rejected
    assert good_plays(source) == (await counts(manager))["listening_events"]
    assert LONE_TRACK not in await keys(manager, "tracks", "track_id")
    assert {LISTENER} == await keys(manager, "listening_events", "user_id")
    assert (await manager.validate_tenant(TENANT)).ok


async def test_a_second_identical_lenient_load_of_sources_changes_nothing(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """Loaded again leniently, the same files are unchanged: nothing written, nothing
    set aside, no new reject file."""
    await manager.create_tenant(TENANT)
    source = history_set(tmp_path / "history")
    first = await manager.load_fixtures(
        TENANT, source, validation="lenient", reject_dir=tmp_path / "rejects"
    )
    before = await counts(manager)

    again = await manager.load_fixtures(
        TENANT, source, validation="lenient", reject_dir=tmp_path / "rejects"
    )

    assert (False, 0, None) == (again.changed, again.rejected, again.reject_file)
    assert before == await counts(manager)
    assert first.reject_file is not None
    assert [first.reject_file] == list((tmp_path / "rejects").iterdir())


async def test_a_strict_load_still_refuses_a_history_entry_its_format_refuses(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """Strict: the first refused entry refuses the load, named by file, entry and field;
    nothing is written and no reject file made."""
    await manager.create_tenant(TENANT)
    source = history_set(tmp_path / "history")

    with pytest.raises(RecordError) as caught:
        await manager.load_fixtures(TENANT, source, reject_dir=tmp_path / "rejects")

    assert ("plays.json", 1, "ms_played", "format:spotify_history") == (
        str(caught.value.path),
        caught.value.record,
        caught.value.column,
        caught.value.rule,
    )
    assert {} == await counts(manager)
    assert not (tmp_path / "rejects").exists()


async def test_a_lenient_load_sets_aside_an_mpd_playlist_its_format_refuses(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """The first playlist (``collaborative: "maybe"``) is set aside with the tracks it
    staged; the second loads, and with it the owner row the first had staged."""
    await manager.create_tenant(TENANT)
    slice_ = json.loads((SAMPLES / "mpd.slice.0-999.json").read_text(encoding="utf-8"))
    bad, good = slice_["playlists"]
    bad["collaborative"] = "maybe"
    bad["tracks"][0] = {**bad["tracks"][0], "track_uri": f"spotify:track:{LONE_TRACK}"}
    source = tmp_path / "mpd"
    source.mkdir()
    (source / "mpd.slice.0-999.json").write_text(json.dumps(slice_), encoding="utf-8")

    report = await manager.load_fixtures(
        TENANT, source, validation="lenient", reject_dir=tmp_path / "rejects"
    )

    assert report.reject_file is not None
    (line,) = jsonl_records(report.reject_file)
    assert ("mpd.slice.0-999.json", "playlists", 1, "collaborative", "format:mpd") == (
        line["path"],
        line["table"],
        line["index"],
        line["column"],
        line["rule"],
    )
    assert "maybe" == line["record"]["collaborative"]
    assert {"owner_id": "mpd"} == line["implied"]  # whose playlist it is, for erasure
    loaded = await counts(manager)
    assert (1, len(good["tracks"])) == (loaded["playlists"], loaded["playlist_tracks"])
    assert LONE_TRACK not in await keys(manager, "tracks", "track_id")
    assert {"mpd"} == await keys(manager, "users", "user_id")


async def test_an_erasure_scrubs_a_set_aside_history_entry_holding_the_subjects_id(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """The refused entry naming the listener (``username``) is their record: erasing
    them removes its reject line and the check passes afterwards."""
    await manager.create_tenant(TENANT)
    report = await manager.load_fixtures(
        TENANT,
        history_set(tmp_path / "history"),
        validation="lenient",
        reject_dir=tmp_path / "rejects",
    )
    assert report.reject_file is not None

    erased = await manager.erase_subject(TENANT, LISTENER)

    assert 3 == erased.reject_lines  # every refused entry of the listener's export
    assert not report.reject_file.exists()
    assert (await manager.verify_erasure(TENANT, LISTENER)).ok


async def test_an_erasure_scrubs_the_set_aside_entries_of_the_listeners_export_only(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """An export's entries do not name their listener (``-o user_id`` does): the
    refused ones stayed in the reject file after erasing the listener, IP address and
    all. Another listener's refused entries stay."""
    await manager.create_tenant(TENANT)
    other = "other-listener-7"
    for listener in (LISTENER, other):
        source = history_set(tmp_path / listener)
        manifest = json.loads((source / "fixtures.json").read_text(encoding="utf-8"))
        for entry in manifest["files"]:
            entry["options"] = {"user_id": listener}
        (source / "fixtures.json").write_text(json.dumps(manifest), encoding="utf-8")
        plays = json.loads((source / "plays.json").read_text(encoding="utf-8"))
        del plays[0]["username"]
        (source / "plays.json").write_text(json.dumps(plays), encoding="utf-8")
        await manager.load_fixtures(
            TENANT, source, validation="lenient", reject_dir=tmp_path / "rejects", force=True
        )

    erased = await manager.erase_subject(TENANT, LISTENER)

    assert 3 == erased.reject_lines
    left = [r for path in (tmp_path / "rejects").iterdir() for r in jsonl_records(path)]
    assert 3 == len(left)
    assert all(r["implied"] == {"user_id": other} for r in left), left
    assert (await manager.verify_erasure(TENANT, LISTENER)).ok
