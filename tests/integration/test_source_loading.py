"""Source files through the staged load path: detection, merging, manifests, error origins.

A small format defined here (artists named by "songs") exercises the framework on both
backends, independently of the real Spotify formats.
"""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.errors import (
    ConfigError,
    FixtureFormatError,
    FixtureSetError,
    IntegrityViolationError,
    RecordError,
)
from tenancy_fixtures.loading.data_loader import DataLoader
from tenancy_fixtures.loading.set_check import check_set
from tenancy_fixtures.loading.sources import (
    SOURCE_FORMATS,
    RowSink,
    SourceFormat,
    SourceLoader,
    detect_format,
    source_file,
)
from tenancy_fixtures.spotify.schema import spotify_metadata
from tenancy_fixtures.store.control_plane import count_rows
from tenancy_fixtures.tenancy.credentials import encrypt_credential, generate_secret_key
from tests.fixture_files import write_jsonl
from tests.log_capture import captured_logs

TENANT = "source_tenant"
ARTIST = "0OdUWJ0sBjDrqHygGUXeCF"
OTHER = "3WrFJ7ztbogyGnTHbHJFl2"


class _MarkedFormat(SourceFormat):
    """Test-only: documents that say which format they are by ``{marker: true}``."""

    marker: ClassVar[str]
    loader = "spotify"

    @classmethod
    def sniff(cls, document: Any) -> bool:
        return isinstance(document, dict) and document.get(cls.marker) is True


class SongsFormat(_MarkedFormat):
    """``{"songbook": true, "artist": {...}, "name": ...}`` documents."""

    name = "test-songs"
    marker = "songbook"
    tables = frozenset({"artists"})

    def normalize(self, document: Any, sink: RowSink) -> None:
        artist = document.get("artist")
        if not isinstance(artist, dict):
            raise sink.refuse("a song needs an artist object", column="artist", rule="format:song")
        sink.merge(
            "artists",
            {"artist_id": artist.get("id"), "name": artist.get("name"), "popularity": None},
        )


class AlbumsFormat(_MarkedFormat):
    """``{"albumbook": true, "id": ..., "artist_id": ...}`` documents, albums only,
    trusting their artists to be there."""

    name = "test-albums"
    marker = "albumbook"
    tables = frozenset({"albums"})
    option_names = frozenset({"album_name"})

    def normalize(self, document: Any, sink: RowSink) -> None:
        name = self.options.get("album_name", "an album")
        sink.merge(
            "albums", {"album_id": document["id"], "name": name, "artist_id": document["artist_id"]}
        )


@pytest.fixture(autouse=True)
def songs_format() -> Iterator[None]:
    SOURCE_FORMATS[SongsFormat.name] = SongsFormat
    SOURCE_FORMATS[AlbumsFormat.name] = AlbumsFormat
    yield
    SOURCE_FORMATS.pop(SongsFormat.name, None)
    SOURCE_FORMATS.pop(AlbumsFormat.name, None)


def song(artist_id: str, name: str = "Someone") -> dict[str, Any]:
    return {"songbook": True, "name": "a song", "artist": {"id": artist_id, "name": name}}


async def artists(manager: FixtureManager) -> dict[str, str]:
    async with manager.store.session(TENANT, readonly=True) as session:
        table = session.metadata.tables["tenant.artists"]
        result = await session.connection.execute(table.select())
        return {row.artist_id: row.name for row in result}


async def total_rows(manager: FixtureManager) -> int:
    async with manager.store.session(TENANT, readonly=True) as session:
        counts = await count_rows(session.connection, session.metadata.sorted_tables)
    return sum(counts.values())


async def test_an_artist_named_by_many_documents_is_one_row(
    manager: FixtureManager, tmp_path: Path
) -> None:
    write_jsonl(tmp_path / "songs.jsonl", [song(ARTIST, "First"), song(OTHER), song(ARTIST)])
    await manager.create_tenant(TENANT)

    report = await manager.load_fixtures(TENANT, tmp_path / "songs.jsonl")

    assert {"artists": 2} == report.row_counts
    assert {ARTIST: "First", OTHER: "Someone"} == await artists(manager)


async def test_loading_the_same_source_twice_changes_nothing(
    manager: FixtureManager, tmp_path: Path
) -> None:
    write_jsonl(tmp_path / "songs.jsonl", [song(ARTIST)])
    await manager.create_tenant(TENANT)
    await manager.load_fixtures(TENANT, tmp_path, format="test-songs")

    again = await manager.load_fixtures(TENANT, tmp_path, format="test-songs")

    assert not again.changed


async def test_a_bad_document_is_reported_at_its_source_line_and_nothing_is_written(
    manager: FixtureManager, tmp_path: Path
) -> None:
    write_jsonl(tmp_path / "songs.jsonl", [song(ARTIST), song(OTHER), {"songbook": True}])
    await manager.create_tenant(TENANT)

    with pytest.raises(RecordError) as caught:
        await manager.load_fixtures(TENANT, tmp_path / "songs.jsonl")

    assert ("songs.jsonl", 3, "artist") == (
        caught.value.path,
        caught.value.line,
        caught.value.column,
    )
    assert 0 == await total_rows(manager)


async def test_a_staged_row_the_schema_refuses_is_reported_at_its_source_document(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """A value that breaks a column rule is traced from the staged file to the source."""
    documents = [song(ARTIST), song(OTHER, "x" * 401)]
    (tmp_path / "songs.json").write_text(json.dumps(documents), encoding="utf-8")
    await manager.create_tenant(TENANT)

    with pytest.raises(RecordError) as caught:
        await manager.load_fixtures(TENANT, tmp_path / "songs.json")

    error = caught.value
    assert ("songs.json", None, 2, "name") == (error.path, error.line, error.record, error.column)
    assert 0 == await total_rows(manager)


@pytest.mark.usefixtures("load_path")
async def test_a_row_naming_a_missing_parent_is_reported_at_its_source_document(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """A foreign key the database refuses, with keys deferred to the end of the load or
    kept in place, is traced from the staged file to the source line."""
    albums = [
        {"albumbook": True, "id": "4aawyAB9vmqN3uQ7FjRGTy", "artist_id": ARTIST},
    ]
    write_jsonl(tmp_path / "albums_src.jsonl", albums)
    await manager.create_tenant(TENANT)

    with pytest.raises(IntegrityViolationError) as caught:
        await manager.load_fixtures(TENANT, tmp_path / "albums_src.jsonl")

    assert ("albums_src.jsonl", 1) == (caught.value.path, caught.value.line)
    assert 0 == await total_rows(manager)


async def test_a_manifest_entry_names_a_source_file_and_its_format(
    manager: FixtureManager, tmp_path: Path
) -> None:
    with gzip.open(tmp_path / "exported.data.jsonl.gz", "wt", encoding="utf-8") as out:
        out.write(json.dumps(song(ARTIST)) + "\n")
    manifest = {
        "name": "mixed",
        "files": [{"path": "exported.data.jsonl.gz", "format": "test-songs"}],
    }
    (tmp_path / "fixtures.json").write_text(json.dumps(manifest), encoding="utf-8")
    await manager.create_tenant(TENANT)

    report = await manager.load_fixtures(TENANT, tmp_path)

    assert {"artists": 1} == report.row_counts


async def test_an_option_no_format_reads_is_refused_naming_the_format_and_its_options(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """``options={"loud": True}`` for a format that takes no option, in a manifest entry,
    to the whole load or on a file in code, was ignored; now a ConfigError naming the
    option, the format and what it takes, before anything is loaded."""
    write_jsonl(tmp_path / "songs.jsonl", [song(ARTIST)])
    entry = {"path": "songs.jsonl", "format": "test-songs", "options": {"loud": 1}}
    manifest = {"files": [entry]}
    (tmp_path / "fixtures.json").write_text(json.dumps(manifest), encoding="utf-8")
    await manager.create_tenant(TENANT)

    with pytest.raises(ConfigError) as in_manifest:
        await manager.load_fixtures(TENANT, tmp_path)
    with pytest.raises(ConfigError) as given:
        await manager.load_fixtures(TENANT, tmp_path / "songs.jsonl", options={"loud": 1})
    with pytest.raises(ConfigError) as in_code:
        SourceLoader(
            [source_file(tmp_path, "songs.jsonl", options={"loud": 1})],
            metadata=manager.store.metadata,
        )

    assert "songs.jsonl: unknown option 'loud': format 'test-songs' takes no options" == str(
        in_manifest.value
    ).removeprefix(f"tenant '{TENANT}': ")
    assert "unknown option 'loud': format 'test-songs' takes no options" in str(given.value)
    assert "unknown option 'loud': format 'test-songs' takes no options" in str(in_code.value)
    for refused in (in_manifest.value, given.value, in_code.value):
        assert "options.loud" == refused.key
    assert 0 == await total_rows(manager)


async def test_an_option_given_to_the_whole_load_needs_only_one_format_to_read_it(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """``-o`` goes to every file of the load: an option one of its formats declares is
    taken though the others do not read it; one none declares is refused naming each."""
    write_jsonl(tmp_path / "a_songs.jsonl", [song(ARTIST)])
    album = {"albumbook": True, "id": "4aawyAB9vmqN3uQ7FjRGTy", "artist_id": ARTIST}
    write_jsonl(tmp_path / "b_albums.jsonl", [album])
    await manager.create_tenant(TENANT)

    report = await manager.load_fixtures(TENANT, tmp_path, options={"album_name": "Tide"})
    with pytest.raises(ConfigError) as caught:
        await manager.load_fixtures(TENANT, tmp_path, options={"album": "Tide"}, force=True)

    assert {"artists": 1, "albums": 1} == report.row_counts
    assert (
        "unknown option 'album': format 'test-albums' takes album_name; format 'test-songs' "
        "takes no options"
    ) in str(caught.value)


def test_the_format_of_a_file_is_detected_from_its_first_document(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "songs.jsonl", [song(ARTIST)])

    assert "test-songs" == detect_format(source_file(tmp_path, "songs.jsonl"))


def test_a_file_no_format_recognises_is_a_typed_error(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "mystery.jsonl", [{"what": "is this"}])

    with pytest.raises(FixtureFormatError, match="cannot tell the format"):
        SourceLoader([source_file(tmp_path, "mystery.jsonl")], metadata=spotify_metadata())


@pytest.mark.parametrize("relative", ["../outside.json", "/etc/passwd"])
def test_a_source_path_outside_the_directory_is_refused(tmp_path: Path, relative: str) -> None:
    with pytest.raises(FixtureSetError):
        source_file(tmp_path, relative, format="test-songs")


def test_an_unknown_format_is_refused_naming_the_known_ones(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "songs.jsonl", [song(ARTIST)])

    with pytest.raises(FixtureSetError, match=r"unknown format 'nope'.*test-songs"):
        source_file(tmp_path, "songs.jsonl", format="nope")


async def test_a_manifest_entry_may_name_the_domain_loader_instead_of_a_format(
    manager: FixtureManager, tmp_path: Path
) -> None:
    write_jsonl(tmp_path / "exported.jsonl", [song(ARTIST)])
    manifest = {"files": [{"path": "exported.jsonl", "loader": "spotify"}]}
    (tmp_path / "fixtures.json").write_text(json.dumps(manifest), encoding="utf-8")
    await manager.create_tenant(TENANT)

    report = await manager.load_fixtures(TENANT, tmp_path)

    assert {"artists": 1} == report.row_counts


def test_a_manifest_naming_an_unknown_loader_for_table_files_is_refused(
    manager: FixtureManager, tmp_path: Path
) -> None:
    write_jsonl(tmp_path / "artists.jsonl", [{"artist_id": ARTIST, "name": "A"}])
    manifest = {"files": [{"path": "artists.jsonl", "loader": "nope"}]}
    (tmp_path / "fixtures.json").write_text(json.dumps(manifest), encoding="utf-8")

    with pytest.raises(FixtureSetError, match="unknown loader 'nope'"):
        manager.data_fixtures("free", tmp_path)


async def test_a_directory_mixing_table_files_and_source_files_loads_both(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """Each file is detected as it would be alone: artists.jsonl holds artist rows, songs.jsonl
    is source documents (it names no table)."""
    other = "1OdUWJ0sBjDrqHygGUXeCF"
    write_jsonl(tmp_path / "artists.jsonl", [{"artist_id": ARTIST, "name": "A"}])
    write_jsonl(tmp_path / "songs.jsonl", [song(other, name="B")])
    await manager.create_tenant(TENANT)

    await manager.load_fixtures(TENANT, tmp_path)

    assert {ARTIST: "A", other: "B"} == await artists(manager)


def readme_manifest_set(directory: Path) -> Path:
    """The README's manifest: users.csv and an export whose plays (and derived artists)
    reference that user, its user row derived from the ``user_id`` option."""
    (directory / "users.csv").write_text(
        "user_id,display_name,email\nu_ava,Ava,ava@example.com\n", encoding="utf-8"
    )
    (directory / "history").mkdir()
    export = [{"endTime": "2024-01-03 21:51", "artistName": "A", "trackName": "T", "msPlayed": 9}]
    (directory / "history" / "StreamingHistory0.json").write_text(
        json.dumps(export), encoding="utf-8"
    )
    history = {"path": "history/StreamingHistory0.json", "format": "spotify-history"}
    table_file = {"table": "users", "path": "users.csv"}
    manifest = {"files": [table_file, {**history, "options": {"user_id": "u_ava"}}]}
    (directory / "fixtures.json").write_text(json.dumps(manifest), encoding="utf-8")
    return directory


async def test_a_users_table_file_and_a_history_export_of_its_user_load_together(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """Both fill ``users``, so the table file goes first; the source loader used to be
    put first for its artists and the load refused as misordered."""
    await manager.create_tenant(TENANT)

    await manager.load_fixtures(TENANT, readme_manifest_set(tmp_path))

    async with manager.store.session(TENANT, readonly=True) as session:
        users = session.metadata.tables["tenant.users"]
        events = session.metadata.tables["tenant.listening_events"]
        names = (await session.connection.execute(select(users.c.display_name))).scalars()
        plays = (await session.connection.execute(select(events.c.user_id))).scalars()
        assert (["Ava"], ["u_ava"]) == (list(names), list(plays))


async def test_a_source_row_an_earlier_table_file_gave_is_merged_not_rejected_as_duplicate(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """The export's listener row (inserted only when missing) meets users.csv's u_ava: the
    load merges it, so a lenient load sets nothing aside (it rejected it as a duplicate)."""
    await manager.create_tenant(TENANT)

    report = await manager.load_fixtures(
        TENANT, readme_manifest_set(tmp_path), validation="lenient", reject_dir=tmp_path
    )

    assert (0, None) == (report.rejected, report.reject_file)


def test_checking_a_set_without_a_tenant_merges_a_row_an_earlier_loader_gave(
    tmp_path: Path,
) -> None:
    """``validate-data --source`` of the README's manifest is ok, as its load is (it found
    a duplicate primary key (user_id)=(u_ava)); a key given twice by one file still is one."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'data'}")
    metadata = spotify_metadata()
    (tmp_path / "set").mkdir()
    (tmp_path / "dup").mkdir()
    write_jsonl(tmp_path / "dup" / "artists.jsonl", [{"artist_id": ARTIST, "name": "A"}] * 2)

    merged = check_set(readme_manifest_set(tmp_path / "set"), metadata=metadata, settings=settings)
    twice = check_set(tmp_path / "dup", metadata=metadata, settings=settings)

    assert (True, [], {"duplicate_key": 1}) == (
        merged.ok,
        merged.problems,
        dict(twice.report.rules),
    )


@pytest.mark.parametrize(
    ("format_name", "document"),
    [
        ("mpd", {"tracks": [{"id": ARTIST, "type": "track"}]}),  # a Web API response
        ("mpd", {"info": {}, "playlists": None}),
        ("ai-models", {"model_id": "chat-main", "task": "chat"}),  # one config, unwrapped
        ("collaboration", {"workspace_id": "w1", "members": []}),
    ],
)
async def test_a_file_without_the_array_its_format_streams_is_refused_not_loaded_empty(
    manager: FixtureManager, tmp_path: Path, format_name: str, document: dict[str, Any]
) -> None:
    """An object without ``playlists`` (``models``, ``workspaces``) given to the format
    that streams that array loaded nothing and reported success."""
    path = tmp_path / "export.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    await manager.create_tenant(TENANT)

    with pytest.raises(FixtureFormatError, match="array to read") as caught:
        await manager.load_fixtures(TENANT, path, format=format_name)

    assert ("export.json", 1, 0) == (
        caught.value.path,
        caught.value.record,
        await total_rows(manager),
    )


def test_a_csv_file_named_for_no_table_is_refused_naming_it(
    manager: FixtureManager, tmp_path: Path
) -> None:
    write_jsonl(tmp_path / "artists.jsonl", [{"artist_id": ARTIST, "name": "A"}])
    (tmp_path / "songs.csv").write_text("name\nx\n", encoding="utf-8")

    with pytest.raises(FixtureSetError, match=r"songs\.csv: named for no table"):
        manager.data_fixtures("free", tmp_path)


async def test_a_single_table_file_loads_into_its_table(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """``load-fixtures T artists.jsonl``: one table file is a set of one file."""
    path = tmp_path / "artists.jsonl"
    write_jsonl(path, [{"artist_id": ARTIST, "name": "A"}])
    await manager.create_tenant(TENANT)

    report = await manager.load_fixtures(TENANT, path)

    assert {"artists": 1} == report.row_counts
    assert {ARTIST: "A"} == await artists(manager)


async def test_a_corrupt_compressed_table_file_is_a_format_error_naming_it(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """Telling table files from source files peeks into each file; a gzip stream that
    does not decompress is left to the table reader, which names the file (found by
    the hostile property test: zlib's error escaped the peek)."""
    data = gzip.compress(b'{"artist_id": "x", "name": "A"}\n' * 50)
    # After the 10-byte header: a stored block whose length and its complement disagree.
    (tmp_path / "artists.jsonl.gz").write_bytes(data[:10] + b"\x00\x05\x00\x00\x00" + data[10:])
    await manager.create_tenant(TENANT)

    with pytest.raises(FixtureFormatError, match=r"artists\.jsonl\.gz"):
        await manager.load_fixtures(TENANT, tmp_path)

    assert {} == await artists(manager)


async def test_a_source_document_named_like_a_table_is_read_as_a_source(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """``artists.json`` holding one song document (an object, not rows) is a source file,
    in a directory as alone."""
    (tmp_path / "artists.json").write_text(json.dumps(song(ARTIST, name="S")), encoding="utf-8")
    await manager.create_tenant(TENANT)

    await manager.load_fixtures(TENANT, tmp_path)

    assert {ARTIST: "S"} == await artists(manager)


async def test_two_fixtures_writing_one_table_of_a_new_tenant_load_together(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """The second write to a table meets the keys a bulk load of a new tenant dropped."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    write_jsonl(first / "artists.jsonl", [{"artist_id": ARTIST, "name": "Old"}])
    write_jsonl(
        second / "artists.jsonl",
        [{"artist_id": ARTIST, "name": "New"}, {"artist_id": OTHER, "name": "Other"}],
    )
    metadata = manager.store.metadata
    loaders = [
        DataLoader(first, name="first", metadata=metadata),
        DataLoader(second, name="second", metadata=metadata),
    ]
    await manager.create_tenant(TENANT)

    report = await manager.load_fixtures(TENANT, fixtures=loaders)

    assert {ARTIST: "New", OTHER: "Other"} == await artists(manager)
    assert (1, 1) == (report.writes["artists"].inserted - 1, report.writes["artists"].updated)
    assert (await manager.validate_tenant(TENANT)).ok


SPOTIFY_SAMPLES = Path(__file__).parent.parent / "data" / "spotify"


async def test_listening_events_from_a_history_export_refresh_the_daily_aggregates(
    manager: FixtureManager,
) -> None:
    history = source_file(
        SPOTIFY_SAMPLES,
        "StreamingHistory_music_0.json",
        options={"user_id": "listener", "display_name": "Lis Tener"},
    )
    await manager.create_tenant(TENANT)

    report = await manager.load_fixtures(
        TENANT, fixtures=[SourceLoader([history], metadata=manager.store.metadata)]
    )

    async with manager.store.session(TENANT, readonly=True) as session:
        counts = await count_rows(session.connection, session.metadata.sorted_tables)
        daily = session.metadata.tables["tenant.daily_stats"]
        plays = (await session.connection.execute(select(func.sum(daily.c.plays)))).scalar_one()
    assert report.row_counts["listening_events"] == plays
    assert counts["track_daily_stats"] > 0


async def test_one_source_loader_given_to_two_tenants_loads_the_same_rows_into_each(
    manager: FixtureManager,
) -> None:
    """A loader given as ``fixtures`` is loaded again for the next tenant: it stages anew,
    as if new (its format readers once kept the first staging's plays, so the second
    tenant got every play skipped as a repeat, and no listener)."""
    history = source_file(
        SPOTIFY_SAMPLES,
        "Streaming_History_Audio_2024.json",
        format="spotify-history",
        options={"user_id": "listener"},
    )
    loader = SourceLoader([history], metadata=manager.store.metadata)
    reports = []
    for tenant in ("first_listener", "second_listener"):
        await manager.create_tenant(tenant)
        reports.append(await manager.load_fixtures(tenant, fixtures=[loader]))

    first, second = reports
    assert first.row_counts["listening_events"] > 0
    assert first.row_counts == second.row_counts
    assert first.derived_rows == second.derived_rows


LANTERNS = "HmbdtF7LxBIT12Mi5vzzIl"
HARBOR = [{"type": "artist", "id": "FJ6kPU9541PZwIpm3EXYNH", "name": "The Velvet Harbor"}]


def api_track(**changes: Any) -> dict[str, Any]:
    """A Web API track object of ``LANTERNS``."""
    album = {"type": "album", "id": "yZrJ0wIajuJsmWCQRcIRSA", "name": "Night", "artists": HARBOR}
    track = {"type": "track", "id": LANTERNS, "name": "Lanterns", "duration_ms": 201_000}
    return {**track, "popularity": 50, "artists": HARBOR, "album": album, **changes}


#: An extended streaming-history entry: a play of ``LANTERNS`` at 10:00 on 1 July 2024.
HISTORY_PLAY = {
    "ts": "2024-07-01T10:00:00Z",
    "ms_played": 5_000,
    "spotify_track_uri": f"spotify:track:{LANTERNS}",
    "master_metadata_track_name": "Lanterns",
    "master_metadata_album_artist_name": "The Velvet Harbor",
    "master_metadata_album_album_name": "Night",
}


@pytest.mark.parametrize(
    ("name", "document", "source_format"),
    [
        ("history.json", [], "spotify-history"),
        ("episodes.json", [{"type": "episode", "id": LANTERNS}], "spotify-api"),
    ],
)
async def test_a_source_that_stages_no_row_loads_nothing_without_an_error(
    manager: FixtureManager, tmp_path: Path, name: str, document: Any, source_format: str
) -> None:
    """A file of no entries, or of entries all skipped (once a raw AttributeError)."""
    (tmp_path / name).write_text(json.dumps(document), encoding="utf-8")
    await manager.create_tenant(TENANT)

    report = await manager.load_fixtures(
        TENANT, tmp_path / name, format=source_format, options={"user_id": "listener"}
    )

    assert (0, {}) == (report.rows, report.row_counts)
    assert 0 == await total_rows(manager)


async def test_a_value_a_later_document_gives_a_track_is_refused_at_that_document(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """The history names the track first (a thin row); the Web API file's row replaces
    it, and its bad popularity is that file's, not the history's."""
    (tmp_path / "a_history.json").write_text(json.dumps([HISTORY_PLAY]), encoding="utf-8")
    bad = api_track(popularity=500)
    (tmp_path / "b_tracks.json").write_text(json.dumps([bad]), encoding="utf-8")
    await manager.create_tenant(TENANT)

    with pytest.raises(RecordError) as caught:
        await manager.load_fixtures(TENANT, tmp_path, options={"user_id": "listener"})

    assert "b_tracks.json, record 1, column popularity" in str(caught.value)
    assert "a_history.json, record 1, column popularity" not in str(caught.value)
    assert 0 == await total_rows(manager)


async def test_a_play_two_formats_read_in_one_load_is_loaded_once_the_first_kept(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """A recently-played page and a history export of one listener share a play (once an
    integrity error naming a staged file)."""
    played = {"items": [{"played_at": "2024-07-01T10:00:00Z", "track": api_track()}]}
    (tmp_path / "a_recent.json").write_text(json.dumps(played), encoding="utf-8")
    (tmp_path / "b_history.json").write_text(json.dumps([HISTORY_PLAY]), encoding="utf-8")
    await manager.create_tenant(TENANT)

    report = await manager.load_fixtures(TENANT, tmp_path, options={"user_id": "listener"})

    assert 1 == report.row_counts["listening_events"]
    async with manager.store.session(TENANT, readonly=True) as session:
        events = session.metadata.tables["tenant.listening_events"]
        kept = (await session.connection.execute(select(events.c.ms_played))).scalar_one()
    assert 201_000 == kept  # the Web API's play (its track's length), read first


#: An AI model config of the ``models.json`` source, without credentials or default flag.
CHAT_MINI: dict[str, Any] = {
    "model_id": "chat-mini",
    "provider": "openai",
    "model_name": "gpt-4o-mini",
    "version": "2024-07-18",
    "task": "chat",
    "parameters": {"temperature": 0.4},
}


async def test_ai_model_configs_leaving_a_task_without_a_default_are_refused(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """A check that needs the tenant's rows runs after a source's rows are written."""
    config = {
        **CHAT_MINI,
        "credentials": {"env": "OPENAI_API_KEY"},
        "enabled": True,
        "is_default": False,
    }
    (tmp_path / "models.json").write_text(json.dumps({"models": [config]}), encoding="utf-8")
    await manager.create_tenant(TENANT)

    with pytest.raises(RecordError, match="no default") as caught:
        await manager.load_fixtures(TENANT, tmp_path / "models.json")

    assert ("models.json", 1) == (caught.value.path, caught.value.record)
    assert 0 == await total_rows(manager)


async def test_an_encrypted_credential_in_a_source_decrypts_with_the_managers_key(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key comes from the manager's settings, not from the environment."""
    monkeypatch.delenv("TENANCY_SECRET_KEY", raising=False)
    key = generate_secret_key()
    config = {
        **CHAT_MINI,
        "credentials": {"encrypted": encrypt_credential("a-real-key-value", key)},
        "is_default": True,
    }
    (tmp_path / "models.json").write_text(json.dumps({"models": [config]}), encoding="utf-8")
    keyed = settings.model_copy(update={"secret_key": SecretStr(key)})

    async with FixtureManager(keyed) as manager:
        await manager.create_tenant(TENANT)
        try:
            report = await manager.load_fixtures(TENANT, tmp_path / "models.json")
        finally:
            await manager.drop_tenant(TENANT)

    assert {"ai_models": 1} == report.row_counts


@pytest.mark.parametrize(
    ("files", "says"),
    [
        pytest.param({}, "no fixture files to load", id="empty"),
        pytest.param({"users.txt": "x\n"}, "not read: users.txt", id="unknown-extension"),
    ],
)
async def test_a_directory_with_nothing_to_load_is_refused_naming_what_was_not_read(
    manager: FixtureManager, tmp_path: Path, files: dict[str, str], says: str
) -> None:
    """It said "fixtures already applied, nothing changed" and exited 0."""
    source = tmp_path / "set"
    source.mkdir()
    for name, text in files.items():
        (source / name).write_text(text)
    await manager.create_tenant(TENANT)

    with pytest.raises(FixtureSetError) as refused:
        await manager.load_fixtures(TENANT, source)

    assert says in str(refused.value)
    assert 0 == await total_rows(manager)


async def test_a_file_of_no_known_kind_next_to_table_files_is_named_in_a_warning(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """``users.json1`` (a typo) is not read; the load of the rest says so."""
    source = tmp_path / "set"
    source.mkdir()
    write_jsonl(source / "artists.jsonl", [{"artist_id": ARTIST, "name": "A", "genres": []}])
    (source / "users.json1").write_text("[]\n")
    await manager.create_tenant(TENANT)

    with captured_logs() as logs:
        report = await manager.load_fixtures(TENANT, source)

    assert {"artists": 1} == report.row_counts
    [warning] = [e for e in logs if e["event"] == "fixture_files_not_read"]
    assert ["users.json1"] == warning["files"]
