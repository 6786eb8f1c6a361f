"""The Spotify source formats load into a tenant on both backends.

Web API objects, streaming-history exports and MPD slices go through the staged load
path: one transaction, idempotent, nothing written when any document is refused.
"""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tenancy_fixtures import FixtureManager
from tenancy_fixtures.errors import RecordError
from tenancy_fixtures.loading.sources import SourceLoader, source_file
from tenancy_fixtures.spotify.source_generator import SOURCE_USER_ID, generate_sources
from tenancy_fixtures.spotify.spotify_ids import derived_id
from tenancy_fixtures.store.control_plane import count_rows
from tests.log_capture import captured_logs

TENANT = "spotify_sources"
SAMPLES = Path(__file__).parent.parent / "data" / "spotify"
API_FILES = (
    "several_tracks.json",
    "album.json",
    "several_artists.json",
    "playlist.json",
    "several_audio_features.json",
    "top_artists.json",
)
HARBOR = "FJ6kPU9541PZwIpm3EXYNH"
NIGHT_FERRIES = "yZrJ0wIajuJsmWCQRcIRSA"
LANTERNS = "HmbdtF7LxBIT12Mi5vzzIl"
PLAYLIST = "RrDVC22GGFXDnEQtG9K3vx"
LISTENER = {"user_id": "listener", "display_name": "Lis Tener"}


def copy_samples(directory: Path, *names: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(SAMPLES / name, directory / name)
    return directory


def loader(
    manager: FixtureManager, directory: Path, *names: str, options: dict[str, Any] | None = None
) -> SourceLoader:
    files = [source_file(directory, name, options=options) for name in names]
    return SourceLoader(files, metadata=manager.store.metadata)


async def counts(manager: FixtureManager) -> dict[str, int]:
    """Rows per table, leaving out empty tables."""
    async with manager.store.session(TENANT, readonly=True) as session:
        found = await count_rows(session.connection, session.metadata.sorted_tables)
    return {table: rows for table, rows in found.items() if rows}


async def rows(manager: FixtureManager, table: str, key: str) -> dict[str, dict[str, Any]]:
    async with manager.store.session(TENANT, readonly=True) as session:
        result = await session.connection.execute(
            session.metadata.tables[f"tenant.{table}"].select()
        )
        return {row._mapping[key]: dict(row._mapping) for row in result}


@pytest.fixture
async def tenant(manager: FixtureManager) -> str:
    await manager.create_tenant(TENANT)
    return TENANT


async def test_web_api_objects_fill_the_catalogue_playlists_and_features(
    manager: FixtureManager, tenant: str, tmp_path: Path
) -> None:
    directory = copy_samples(tmp_path / "api", *API_FILES)

    report = await manager.load_fixtures(tenant, directory)

    assert {
        "users": 2,
        "artists": 2,
        "albums": 2,
        "tracks": 4,
        "audio_features": 2,
        "playlists": 1,
        "playlist_tracks": 3,
    } == await counts(manager)
    assert report.changed
    artists = await rows(manager, "artists", "artist_id")
    assert (["indie folk", "dream pop"], 120345) == (
        artists[HARBOR]["genres"],
        artists[HARBOR]["followers"],
    )
    playlist = (await rows(manager, "playlists", "playlist_id"))[PLAYLIST]
    assert ("harbor.fan", 12, "Songs for the ferry") == (
        playlist["owner_id"],
        playlist["followers"],
        playlist["description"],
    )
    owner = (await rows(manager, "users", "user_id"))["harbor.fan"]
    assert ("Harbor Fan", None) == (owner["display_name"], owner["email"])


async def test_the_same_artist_across_many_tracks_is_one_row(
    manager: FixtureManager, tenant: str, tmp_path: Path
) -> None:
    directory = copy_samples(tmp_path / "api", "several_tracks.json", "playlist.json")

    await manager.load_fixtures(tenant, directory)

    tracks = await rows(manager, "tracks", "track_id")
    by_harbor = [t for t in tracks.values() if t["artist_id"] == HARBOR]
    assert 2 == len(by_harbor)
    assert [HARBOR] == [a for a in await rows(manager, "artists", "artist_id") if a == HARBOR]


async def test_loading_the_same_sources_twice_changes_nothing(
    manager: FixtureManager, tenant: str, tmp_path: Path
) -> None:
    directory = copy_samples(tmp_path / "all", *API_FILES, "mpd.slice.0-999.json")
    await manager.load_fixtures(tenant, directory)
    before = await counts(manager)

    again = await manager.load_fixtures(tenant, directory)

    assert not again.changed
    assert before == await counts(manager)


async def test_a_history_after_an_api_load_leaves_the_real_catalogue_rows_alone(
    manager: FixtureManager, tenant: str, tmp_path: Path
) -> None:
    api = copy_samples(tmp_path / "api", "several_tracks.json")
    history = copy_samples(
        tmp_path / "history", "StreamingHistory_music_0.json", "Streaming_History_Audio_2024.json"
    )
    await manager.load_fixtures(tenant, api)
    real = (await rows(manager, "tracks", "track_id"))[LANTERNS]

    await manager.load_fixtures(
        tenant,
        fixtures=[
            loader(
                manager,
                history,
                "StreamingHistory_music_0.json",
                "Streaming_History_Audio_2024.json",
                options=LISTENER,
            )
        ],
    )

    tracks = await rows(manager, "tracks", "track_id")
    assert real == tracks[LANTERNS]
    assert NIGHT_FERRIES == tracks[LANTERNS]["album_id"]
    assert 215000 == tracks[LANTERNS]["duration_ms"]
    assert "Night Ferries" == (await rows(manager, "albums", "album_id"))[NIGHT_FERRIES]["name"]
    assert derived_id("track", "The Velvet Harbor", "Lanterns") in tracks
    assert 7 == (await counts(manager))["listening_events"]  # 07:34 ends two basic plays
    listener = (await rows(manager, "users", "user_id"))["listener"]
    assert ("Lis Tener", "free") == (listener["display_name"], listener["product"])


async def test_a_history_names_an_existing_user_without_changing_them(
    manager: FixtureManager, tenant: str, tmp_path: Path
) -> None:
    users = tmp_path / "users"
    users.mkdir()
    (users / "users.json").write_text(
        json.dumps(
            [
                {
                    "user_id": "listener",
                    "display_name": "Real Name",
                    "email": "listener@example.com",
                    "product": "premium",
                }
            ]
        ),
        encoding="utf-8",
    )
    await manager.load_fixtures(tenant, users)
    history = copy_samples(tmp_path / "history", "Streaming_History_Audio_2024.json")

    await manager.load_fixtures(
        tenant,
        fixtures=[loader(manager, history, "Streaming_History_Audio_2024.json", options=LISTENER)],
    )

    listener = (await rows(manager, "users", "user_id"))["listener"]
    assert ("Real Name", "listener@example.com", "premium") == (
        listener["display_name"],
        listener["email"],
        listener["product"],
    )


async def test_recently_played_becomes_listening_events_of_the_named_user(
    manager: FixtureManager, tenant: str, tmp_path: Path
) -> None:
    directory = copy_samples(tmp_path / "recent", "recently_played.json")

    await manager.load_fixtures(
        tenant, fixtures=[loader(manager, directory, "recently_played.json", options=LISTENER)]
    )

    events = await rows(manager, "listening_events", "track_id")
    assert {"listener"} == {e["user_id"] for e in events.values()}
    assert f"spotify:playlist:{PLAYLIST}" == events[LANTERNS]["context_uri"]
    assert 3 == (await counts(manager))["listening_events"]


async def test_an_mpd_slice_fills_playlists_their_tracks_and_the_catalogue(
    manager: FixtureManager, tenant: str, tmp_path: Path
) -> None:
    directory = copy_samples(tmp_path / "mpd", "mpd.slice.0-999.json")

    await manager.load_fixtures(tenant, directory, format="mpd")

    assert {
        "users": 1,
        "artists": 3,
        "albums": 3,
        "tracks": 4,
        "playlists": 2,
        "playlist_tracks": 5,
    } == await counts(manager)
    chill = (await rows(manager, "playlists", "playlist_id"))["mpd0000000000000000001"]
    assert ("mpd", True, 1) == (chill["owner_id"], chill["collaborative"], chill["followers"])
    assert 2017 == chill["created_at"].year


async def test_an_mpd_playlist_reloaded_with_fewer_tracks_keeps_those_alone(
    manager: FixtureManager, tenant: str, tmp_path: Path
) -> None:
    """A slice lists a playlist's whole track list: reloaded with its first track
    alone, playlist 0 keeps that one (its old positions 1 and 2 stayed, after the new
    list's end); playlist 1, absent from the second slice, keeps its tracks. The
    recorded contents still match the table."""
    document = json.loads((SAMPLES / "mpd.slice.0-999.json").read_text("utf-8"))
    first = tmp_path / "first"
    first.mkdir()
    (first / "mpd.slice.0-999.json").write_text(json.dumps(document), encoding="utf-8")
    await manager.load_fixtures(tenant, first, format="mpd")
    playlist = document["playlists"][0]
    playlist["tracks"] = playlist["tracks"][:1]
    document["playlists"] = [playlist]
    fewer = tmp_path / "fewer"
    fewer.mkdir()
    (fewer / "mpd.slice.0-999.json").write_text(json.dumps(document), encoding="utf-8")

    await manager.load_fixtures(tenant, fewer, format="mpd")

    async with manager.store.session(TENANT, readonly=True) as session:
        table = session.metadata.tables["tenant.playlist_tracks"]
        query = select(table.c.playlist_id, table.c.position).order_by(*table.primary_key)
        kept = [tuple(row) for row in await session.connection.execute(query)]
    report = await manager.validate_tenant(tenant, recompute_checksums=True)
    assert [
        ("mpd0000000000000000000", 0),
        ("mpd0000000000000000001", 0),
        ("mpd0000000000000000001", 1),
    ] == kept
    assert report.ok, report.problems
    assert "match" == report.checksums["playlist_tracks"].status


async def positions(manager: FixtureManager) -> list[tuple[str, int]]:
    """The tenant's (playlist, position) pairs, in key order."""
    async with manager.store.session(TENANT, readonly=True) as session:
        table = session.metadata.tables["tenant.playlist_tracks"]
        query = select(table.c.playlist_id, table.c.position).order_by(*table.primary_key)
        return [(row[0], row[1]) for row in await session.connection.execute(query)]


async def validated_positions(manager: FixtureManager, tenant: str) -> list[tuple[str, int]]:
    """:func:`positions`, once ``validate-data --recompute-checksums`` of the tenant passed
    with the playlist tracks' recorded checksum matching."""
    report = await manager.validate_tenant(tenant, recompute_checksums=True)
    assert report.ok, report.problems
    assert "match" == report.checksums["playlist_tracks"].status
    return await positions(manager)


def playlist_page(offset: int, items: list[Any], total: int) -> dict[str, Any]:
    """The sample playlist with a page of ``items`` from ``offset``, the last one."""
    document: dict[str, Any] = json.loads((SAMPLES / "playlist.json").read_text("utf-8"))
    document["tracks"].update(offset=offset, items=items, total=total, next=None)
    return document


async def test_an_api_playlist_reloaded_whole_with_fewer_tracks_keeps_those_alone(
    manager: FixtureManager, tenant: str, tmp_path: Path
) -> None:
    """A playlist whose page is its whole list (offset 0, no next page, total its
    items), reloaded with its first track alone, keeps that one (positions 1 and 5
    stayed); the recorded contents still match the table."""
    await manager.load_fixtures(
        tenant, copy_samples(tmp_path / "first", "playlist.json"), format="spotify-api"
    )
    items = json.loads((SAMPLES / "playlist.json").read_text("utf-8"))["tracks"]["items"]
    fewer = tmp_path / "fewer"
    fewer.mkdir()
    (fewer / "playlist.json").write_text(json.dumps(playlist_page(0, items[:1], 1)), "utf-8")

    await manager.load_fixtures(tenant, fewer, format="spotify-api")

    assert [(PLAYLIST, 0)] == await validated_positions(manager, tenant)


async def test_an_api_playlist_whole_list_keeps_the_positions_another_page_of_the_load_gives(
    manager: FixtureManager, tenant: str, tmp_path: Path
) -> None:
    """A load holding a page of the playlist from offset 5 and a whole list of one
    track writes both pages' positions: the whole list prunes only the tenant's others
    (position 1, from the first load), not the other page's position 5."""
    await manager.load_fixtures(
        tenant, copy_samples(tmp_path / "first", "playlist.json"), format="spotify-api"
    )
    items = json.loads((SAMPLES / "playlist.json").read_text("utf-8"))["tracks"]["items"]
    pages = [playlist_page(5, items[5:], 6), playlist_page(0, items[:1], 1)]
    second = tmp_path / "second"
    second.mkdir()
    (second / "pages.json").write_text(json.dumps(pages), "utf-8")

    await manager.load_fixtures(tenant, second, format="spotify-api")

    assert [(PLAYLIST, 0), (PLAYLIST, 5)] == await validated_positions(manager, tenant)


async def test_a_whole_page_of_a_playlists_items_reloaded_with_fewer_keeps_those_alone(
    manager: FixtureManager, tenant: str, tmp_path: Path
) -> None:
    """A standalone page of playlist items loaded for the playlist the options name is
    pruned as a playlist's page is: its whole list of one track leaves that one alone."""
    await manager.load_fixtures(
        tenant, copy_samples(tmp_path / "first", "playlist.json"), format="spotify-api"
    )
    items = json.loads((SAMPLES / "playlist.json").read_text("utf-8"))["tracks"]["items"]
    page = playlist_page(0, items[:1], 1)["tracks"]
    fewer = tmp_path / "fewer"
    fewer.mkdir()
    (fewer / "items.json").write_text(json.dumps(page), "utf-8")

    await manager.load_fixtures(
        tenant, fewer, format="spotify-api", options={"playlist_id": PLAYLIST}
    )

    assert [(PLAYLIST, 0)] == await validated_positions(manager, tenant)


async def test_an_mpd_slice_does_not_overwrite_richer_api_rows(
    manager: FixtureManager, tenant: str, tmp_path: Path
) -> None:
    await manager.load_fixtures(tenant, copy_samples(tmp_path / "api", "several_tracks.json"))
    before = (await rows(manager, "tracks", "track_id"))[LANTERNS]

    await manager.load_fixtures(tenant, copy_samples(tmp_path / "mpd", "mpd.slice.0-999.json"))

    assert before == (await rows(manager, "tracks", "track_id"))[LANTERNS]
    assert 61 == before["popularity"]


async def test_a_simplified_object_in_a_later_load_does_not_erase_the_full_row(
    manager: FixtureManager, tenant: str, tmp_path: Path
) -> None:
    full = copy_samples(tmp_path / "full", "several_artists.json", "album.json")
    await manager.load_fixtures(tenant, full)
    before = await rows(manager, "artists", "artist_id")

    # The playlist names the same artists as simplified objects (no genres, no followers).
    await manager.load_fixtures(tenant, copy_samples(tmp_path / "later", "playlist.json"))

    after = await rows(manager, "artists", "artist_id")
    assert before[HARBOR] == after[HARBOR]
    assert (
        "Saltwater Sound"
        == (await rows(manager, "albums", "album_id"))["EJGqp252TeHXYfUiL9hC4Q"]["label"]
    )
    assert 3 == (await counts(manager))["playlist_tracks"]


async def test_a_load_mixing_real_and_derived_tracks_leaves_existing_real_rows_alone(
    manager: FixtureManager, tenant: str, tmp_path: Path
) -> None:
    await manager.load_fixtures(tenant, copy_samples(tmp_path / "api", "several_tracks.json"))
    before = (await rows(manager, "tracks", "track_id"))[LANTERNS]
    mixed = copy_samples(tmp_path / "mixed", "Streaming_History_Audio_2024.json")
    response = json.loads((SAMPLES / "several_tracks.json").read_text(encoding="utf-8"))
    # A full track other than Lanterns, which the history names by id only.
    response["tracks"] = response["tracks"][1:2]
    (mixed / "northbound.json").write_text(json.dumps(response), encoding="utf-8")

    await manager.load_fixtures(
        tenant,
        fixtures=[
            SourceLoader(
                [
                    source_file(mixed, "northbound.json"),
                    source_file(mixed, "Streaming_History_Audio_2024.json", options=LISTENER),
                ],
                metadata=manager.store.metadata,
            )
        ],
    )

    assert before == (await rows(manager, "tracks", "track_id"))[LANTERNS]


PAPER_TIDE = "vSI8GOczALa0N2TANopNIa"
MIRA_SOLEN = "nBq6GDyx1rfpGpHCAJIetk"
PAPER_TIDE_ALBUM = "EJGqp252TeHXYfUiL9hC4Q"
#: Files giving Paper Tide as a real row that is not a full Web API track: the album's
#: page of simplified tracks, and an MPD entry.
THIN_CATALOGUES = ["album.json", "mpd.slice.0-999.json"]


def nameless_history(manager: FixtureManager, directory: Path) -> SourceLoader:
    """The extended history sample with its track, artist and album names removed (as
    the export gives them for some plays), as ``history.json`` in ``directory``: its
    tracks become "Unknown track" placeholders by "Unknown artist"."""
    directory.mkdir(parents=True)
    entries = json.loads((SAMPLES / "Streaming_History_Audio_2024.json").read_text("utf-8"))
    for entry in entries:
        for field in ("track_name", "album_artist_name", "album_album_name"):
            entry[f"master_metadata_{field}"] = None
    (directory / "history.json").write_text(json.dumps(entries), encoding="utf-8")
    return loader(manager, directory, "history.json", options=LISTENER)


async def paper_tide(manager: FixtureManager) -> tuple[Any, ...]:
    track = (await rows(manager, "tracks", "track_id"))[PAPER_TIDE]
    return track["name"], track["artist_id"], track["album_id"], track["duration_ms"]


async def paper_tide_plays(manager: FixtureManager) -> int:
    events = await rows(manager, "listening_events", "played_at")
    return sum(1 for event in events.values() if event["track_id"] == PAPER_TIDE)


@pytest.mark.parametrize("catalogue", THIN_CATALOGUES)
async def test_a_placeholder_track_from_history_takes_the_catalogue_name_loaded_later(
    manager: FixtureManager, tenant: str, tmp_path: Path, catalogue: str
) -> None:
    await manager.load_fixtures(tenant, fixtures=[nameless_history(manager, tmp_path / "history")])
    assert "Unknown track" == (await paper_tide(manager))[0]
    plays = await paper_tide_plays(manager)

    await manager.load_fixtures(tenant, copy_samples(tmp_path / "catalogue", catalogue))

    assert ("Paper Tide", MIRA_SOLEN, PAPER_TIDE_ALBUM, 181000) == await paper_tide(manager)
    assert 1 == plays == await paper_tide_plays(manager)


@pytest.mark.parametrize("catalogue", THIN_CATALOGUES)
async def test_a_catalogue_track_keeps_its_name_when_a_history_loaded_later_has_none(
    manager: FixtureManager, tenant: str, tmp_path: Path, catalogue: str
) -> None:
    await manager.load_fixtures(tenant, copy_samples(tmp_path / "catalogue", catalogue))

    await manager.load_fixtures(tenant, fixtures=[nameless_history(manager, tmp_path / "history")])

    assert ("Paper Tide", MIRA_SOLEN, PAPER_TIDE_ALBUM, 181000) == await paper_tide(manager)
    assert 1 == await paper_tide_plays(manager)


async def test_a_placeholder_track_read_first_in_a_load_takes_the_catalogue_row_of_that_load(
    manager: FixtureManager, tenant: str, tmp_path: Path
) -> None:
    history = nameless_history(manager, tmp_path / "both")
    shutil.copy(SAMPLES / "album.json", tmp_path / "both" / "album.json")

    await manager.load_fixtures(
        tenant,
        fixtures=[
            SourceLoader(
                [*history.sources, source_file(tmp_path / "both", "album.json")],
                metadata=manager.store.metadata,
            )
        ],
    )

    assert ("Paper Tide", MIRA_SOLEN, PAPER_TIDE_ALBUM, 181000) == await paper_tide(manager)
    assert 1 == await paper_tide_plays(manager)


def _wrong_type(directory: Path) -> str:
    response = json.loads((SAMPLES / "several_tracks.json").read_text(encoding="utf-8"))
    response["tracks"][1]["type"] = "album"
    # Not named for a table: a directory of table files would claim "tracks.json".
    (directory / "several_tracks.json").write_text(json.dumps(response), encoding="utf-8")
    return "several_tracks.json"


def _history_without_ts(directory: Path) -> str:
    entries = json.loads((SAMPLES / "Streaming_History_Audio_2024.json").read_text("utf-8"))
    del entries[4]["ts"]
    (directory / "history.json").write_text(json.dumps(entries), encoding="utf-8")
    return "history.json"


def _negative_ms_played(directory: Path) -> str:
    entries = json.loads((SAMPLES / "StreamingHistory_music_0.json").read_text("utf-8"))
    entries[4]["msPlayed"] = -1
    (directory / "basic.json").write_text(json.dumps(entries), encoding="utf-8")
    return "basic.json"


def _mpd_without_pid(directory: Path) -> str:
    document = json.loads((SAMPLES / "mpd.slice.0-999.json").read_text("utf-8"))
    del document["playlists"][1]["pid"]
    (directory / "mpd.slice.0-999.json").write_text(json.dumps(document), encoding="utf-8")
    return "mpd.slice.0-999.json"


def _mpd_bad_uri(directory: Path) -> str:
    document = json.loads((SAMPLES / "mpd.slice.0-999.json").read_text("utf-8"))
    document["playlists"][1]["tracks"][1]["track_uri"] = "spotify:track:123"
    (directory / "mpd.slice.0-999.json").write_text(json.dumps(document), encoding="utf-8")
    return "mpd.slice.0-999.json"


def _mpd_followers_past_64_bits(directory: Path) -> str:
    document = json.loads((SAMPLES / "mpd.slice.0-999.json").read_text("utf-8"))
    document["playlists"][1]["num_followers"] = 2**64
    (directory / "mpd.slice.0-999.json").write_text(json.dumps(document), encoding="utf-8")
    return "mpd.slice.0-999.json"


def _mpd_modified_at_past_64_bits(directory: Path) -> str:
    document = json.loads((SAMPLES / "mpd.slice.0-999.json").read_text("utf-8"))
    document["playlists"][1]["modified_at"] = 99_999_999_999_999_999_999
    (directory / "mpd.slice.0-999.json").write_text(json.dumps(document), encoding="utf-8")
    return "mpd.slice.0-999.json"


@pytest.mark.parametrize(
    ("make", "record", "column"),
    [
        (_wrong_type, 1, "tracks[1].type"),
        (_history_without_ts, 5, "ts"),
        (_negative_ms_played, 5, "msPlayed"),
        (_mpd_without_pid, 2, "pid"),
        (_mpd_bad_uri, 2, "tracks[1].track_uri"),
        (_mpd_followers_past_64_bits, 2, "num_followers"),
        (_mpd_modified_at_past_64_bits, 2, "modified_at"),
    ],
    ids=[
        "wrong-type",
        "history-without-ts",
        "negative-ms-played",
        "mpd-without-pid",
        "bad-uri",
        "mpd-followers-past-64-bits",
        "mpd-modified-at-past-64-bits",
    ],
)
async def test_a_malformed_source_is_a_typed_error_and_nothing_is_written(
    manager: FixtureManager,
    tenant: str,
    tmp_path: Path,
    make: Callable[[Path], str],
    record: int,
    column: str,
) -> None:
    # A good file before the bad one: its rows must not survive either.
    directory = copy_samples(tmp_path / "bad", "several_artists.json")
    name = make(directory)

    with pytest.raises(RecordError) as caught:
        await manager.load_fixtures(
            tenant,
            fixtures=[loader(manager, directory, "several_artists.json", name, options=LISTENER)],
        )

    assert (name, record, column) == (
        caught.value.path,
        caught.value.record,
        caught.value.column,
    )
    assert {} == await counts(manager)


async def test_a_refused_source_document_names_the_tenant(
    manager: FixtureManager, tenant: str, tmp_path: Path
) -> None:
    directory = tmp_path / "bad"
    directory.mkdir()
    _wrong_type(directory)

    with pytest.raises(RecordError) as caught:
        await manager.load_fixtures(tenant, directory)

    assert TENANT == caught.value.tenant_id


async def test_skipped_items_are_counted_in_the_log(
    manager: FixtureManager, tenant: str, tmp_path: Path
) -> None:
    directory = copy_samples(tmp_path / "api", "playlist.json")

    with captured_logs() as logs:
        await manager.load_fixtures(tenant, directory)

    skipped = [e for e in logs if e["event"] == "source_documents_skipped"]
    assert [{"local": 1, "unavailable": 1, "episode": 1}] == [
        {k: e[k] for k in ("local", "unavailable", "episode")} for e in skipped
    ]


async def test_a_generated_source_set_loads_cleanly_and_only_once(
    manager: FixtureManager, tenant: str, tmp_path: Path
) -> None:
    generated = generate_sources(tmp_path / "generated", scale=2, seed=11)

    report = await manager.load_fixtures(tenant, generated.directory)
    again = await manager.load_fixtures(tenant, generated.directory)

    loaded = await counts(manager)
    assert report.changed
    assert not again.changed
    assert 200 == sum(1 for _ in (await rows(manager, "audio_features", "track_id")))
    assert {"users", "artists", "albums", "tracks", "audio_features", "playlists"} <= set(loaded)
    assert {"playlist_tracks", "listening_events"} <= set(loaded)
    mpd = [p for p in await rows(manager, "playlists", "playlist_id") if p.startswith("mpd")]
    assert 20 == len(mpd)
    assert SOURCE_USER_ID in await rows(manager, "users", "user_id")
