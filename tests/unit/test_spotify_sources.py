"""The Spotify source formats turn Web API objects, exports and MPD slices into rows.

No database here: documents are normalised into a staging sink and the staged rows
are read back. Loading them (both backends) is tested in
tests/integration/test_spotify_loaders.py.
"""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import copy
import gzip
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tenancy_fixtures.errors import FixtureFormatError, RecordError
from tenancy_fixtures.loading.sources import (
    SOURCE_FORMATS,
    Origin,
    RowSink,
    SourceFormat,
    detect_format,
    iter_documents,
    read_source_file,
    source_file,
)
from tenancy_fixtures.spotify.formats.mpd import MillionPlaylistFormat, mpd_playlist_id
from tenancy_fixtures.spotify.formats.spotify_api import SpotifyApiFormat
from tenancy_fixtures.spotify.formats.streaming_history import UNKNOWN_ALBUM, StreamingHistoryFormat
from tenancy_fixtures.spotify.generator import MAX_SCALE
from tenancy_fixtures.spotify.schema import spotify_metadata
from tenancy_fixtures.spotify.source_catalogue import SourceCatalogue
from tenancy_fixtures.spotify.source_generator import SOURCE_USER_ID, generate_sources
from tenancy_fixtures.spotify.spotify_ids import (
    SpotifyRef,
    derived_id,
    id_of,
    is_spotify_id,
    parse_uri,
)
from tests.memory import traced_peak

SAMPLES = Path(__file__).parent.parent / "data" / "spotify"
HARBOR = "FJ6kPU9541PZwIpm3EXYNH"
MIRA = "nBq6GDyx1rfpGpHCAJIetk"
NIGHT_FERRIES = "yZrJ0wIajuJsmWCQRcIRSA"
PAPER_TIDE_ALBUM = "EJGqp252TeHXYfUiL9hC4Q"
LANTERNS = "HmbdtF7LxBIT12Mi5vzzIl"
NORTHBOUND = "hzK1KIKz9nfQtytdhq4IdC"
PAPER_TIDE = "vSI8GOczALa0N2TANopNIa"
PLAYLIST = "RrDVC22GGFXDnEQtG9K3vx"
LISTENER = {"user_id": "listener", "display_name": "Lis Tener"}

Rows = dict[str, list[dict[str, Any]]]


def normalise(
    fmt: type[SourceFormat],
    *paths: Path,
    options: dict[str, Any] | None = None,
    whole_files: bool = True,
) -> tuple[Rows, SourceFormat]:
    """Stage ``paths`` through one reader of ``fmt`` as a load does (a whole file at once
    where the format can; ``whole_files=False``: a document at a time); the staged rows
    per table."""
    rows, reader, _ = staged_with_origins(fmt, *paths, options=options, whole_files=whole_files)
    return rows, reader


def staged_with_origins(
    fmt: type[SourceFormat],
    *paths: Path,
    options: dict[str, Any] | None = None,
    whole_files: bool = True,
) -> tuple[Rows, SourceFormat, dict[str, list[Origin]]]:
    """:func:`normalise`, and where each staged line came from, by staged file."""
    files = [source_file(p.parent, p.name, format=fmt.name, options=options or {}) for p in paths]
    reader = fmt(options)
    with tempfile.TemporaryDirectory() as staging:
        sink = RowSink(Path(staging), spotify_metadata(), files)
        for index, file in enumerate(files):
            if whole_files:
                read_source_file(reader, file, index, sink)
                continue
            for document in iter_documents(file, stream=fmt.stream):
                sink.at(index, document)
                reader.normalize(document.value, sink)
        reader.finish(sink)
        codes = sink.close()
        rows: Rows = {}
        # Authoritative rows first, then the derived ones, as the loader writes them.
        for staged in [
            *sorted(Path(staging).glob("_staged/*.jsonl")),
            *sorted(Path(staging).glob("_derived/*.jsonl")),
        ]:
            lines = staged.read_bytes().splitlines()  # not U+2028, which JSON leaves bare
            rows.setdefault(staged.stem, []).extend(json.loads(line) for line in lines)
    origins = {name: [sink.decode(code) for code in found] for name, found in codes.items()}
    return rows, reader, origins


def by_key(rows: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    return {row[key]: row for row in rows}


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def skipped(reader: SourceFormat) -> dict[str, int]:
    assert isinstance(reader, SpotifyApiFormat | StreamingHistoryFormat | MillionPlaylistFormat)
    return dict(reader.skipped)


class TestSpotifyIds:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (f"spotify:track:{LANTERNS}", SpotifyRef("track", LANTERNS)),
            (f"https://open.spotify.com/track/{LANTERNS}?si=abc", SpotifyRef("track", LANTERNS)),
            (f"https://open.spotify.com/intl-de/album/{NIGHT_FERRIES}", ("album", NIGHT_FERRIES)),
            (f"spotify:user:harbor.fan:playlist:{PLAYLIST}", SpotifyRef("playlist", PLAYLIST)),
            ("spotify:user:harbor.fan", SpotifyRef("user", "harbor.fan")),
            ("spotify:user:harbor.fan:collection", SpotifyRef("collection", "harbor.fan")),
            ("spotify:local:Me:Demos:My+demo:180", SpotifyRef("local", "Me:Demos:My+demo:180")),
        ],
    )
    def test_a_uri_or_link_names_its_kind_and_id(self, value: str, expected: SpotifyRef) -> None:
        assert expected == parse_uri(value)

    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            ("spotify:track:tooShort", "22 base-62"),
            (f"spotify:planet:{LANTERNS}", "unknown Spotify URI kind"),
            (f"https://example.com/track/{LANTERNS}", "not a Spotify link"),
            ("track:HmbdtF7LxBIT12Mi5vzzIl", "not a Spotify URI"),
            (42, "expected a Spotify URI"),
        ],
    )
    def test_a_malformed_uri_is_refused_saying_why(self, value: object, reason: str) -> None:
        with pytest.raises(ValueError, match=reason):
            parse_uri(value)

    def test_an_id_is_taken_bare_or_from_a_uri_of_its_kind_only(self) -> None:
        assert LANTERNS == id_of(LANTERNS, "track")
        assert LANTERNS == id_of(f"spotify:track:{LANTERNS}", "track")
        with pytest.raises(ValueError, match="expected a album URI, found a track URI"):
            id_of(f"spotify:track:{LANTERNS}", "album")

    def test_a_derived_id_is_a_stable_spotify_shaped_id_ignoring_case_and_spacing(self) -> None:
        derived = derived_id("artist", "The Velvet Harbor")

        assert is_spotify_id(derived)
        assert derived == derived_id("artist", "  the velvet   HARBOR ")
        assert derived != derived_id("album", "The Velvet Harbor")
        assert derived_id("track", "A", "B C") != derived_id("track", "A B", "C")


class TestDetection:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("several_tracks.json", "spotify-api"),
            ("album.json", "spotify-api"),
            ("several_artists.json", "spotify-api"),
            ("playlist.json", "spotify-api"),
            ("several_audio_features.json", "spotify-api"),
            ("recently_played.json", "spotify-api"),
            ("top_artists.json", "spotify-api"),
            ("StreamingHistory_music_0.json", "spotify-history"),
            ("Streaming_History_Audio_2024.json", "spotify-history"),
            ("mpd.slice.0-999.json", "mpd"),
        ],
    )
    def test_each_source_file_is_detected_as_its_format(self, name: str, expected: str) -> None:
        assert expected == detect_format(source_file(SAMPLES, name))

    @pytest.mark.parametrize(
        "document",
        [
            sample("playlist.json"),
            sample("several_tracks.json"),
            sample("recently_played.json"),
            sample("StreamingHistory_music_0.json")[0],
            sample("Streaming_History_Audio_2024.json")[0],
            sample("mpd.slice.0-999.json")["playlists"][0],
        ],
        ids=["api-playlist", "api-tracks", "api-recent", "basic", "extended", "mpd"],
    )
    def test_exactly_one_spotify_format_claims_each_kind_of_document(self, document: Any) -> None:
        formats = (SpotifyApiFormat, StreamingHistoryFormat, MillionPlaylistFormat)

        assert 1 == sum(fmt.sniff(document) for fmt in formats)

    @pytest.mark.parametrize(
        "document",
        [
            {"track_id": LANTERNS, "name": "Lanterns", "album_id": NIGHT_FERRIES},
            {"tracks": [], "info": {}},
            {"items": [{"name": "no type"}]},
            {"ts": "2024-01-01T00:00:00Z"},
            {"pid": 1, "tracks": [], "type": "playlist"},
            [LANTERNS],
        ],
    )
    def test_table_rows_and_lookalikes_are_claimed_by_no_spotify_format(
        self, document: Any
    ) -> None:
        formats = (SpotifyApiFormat, StreamingHistoryFormat, MillionPlaylistFormat)

        assert [] == [fmt.name for fmt in formats if fmt.sniff(document)]

    def test_the_spotify_formats_are_registered_by_name(self) -> None:
        assert {"spotify-api", "spotify-history", "mpd"} <= set(SOURCE_FORMATS)

    @pytest.mark.parametrize("value", [[], {}, ["track"], {"a": 1}], ids=["[]", "{}", "[x]", "{a}"])
    def test_a_list_or_object_where_a_kind_is_named_is_claimed_by_no_format(
        self, value: Any
    ) -> None:
        """A hostile first document with a list or object as its ``task`` or ``type`` (at
        the top, in an item, in a wrapper) is no format's; it used to raise TypeError
        (unhashable) out of format detection, failing the load untyped."""
        documents = [
            {"model_id": "m", "provider": "p", "task": value},
            {"type": value, "id": "x"},
            {"type": value, "messageId": "m", "userId": "u", "timestamp": "t"},
            {"items": [{"type": value, "id": "x"}]},
            {"tracks": [{"type": value, "id": "x"}]},
        ]

        claimed = [
            (fmt.name, i)
            for i, document in enumerate(documents)
            for fmt in SOURCE_FORMATS.values()
            if fmt.sniff(document)
        ]

        assert [] == claimed


class TestWebApiObjects:
    def test_an_artist_named_by_many_tracks_and_albums_is_one_row(self) -> None:
        rows, reader = normalise(SpotifyApiFormat, SAMPLES / "several_tracks.json")

        assert [HARBOR, MIRA] == [r["artist_id"] for r in rows["artists"]]
        assert {"unavailable": 1} == skipped(reader)

    def test_a_track_takes_its_first_artist_and_its_album_is_staged_once(self) -> None:
        rows, _ = normalise(SpotifyApiFormat, SAMPLES / "several_tracks.json")
        tracks = by_key(rows["tracks"], "track_id")

        assert {
            "track_id": LANTERNS,
            "name": "Lanterns",
            "album_id": NIGHT_FERRIES,
            "artist_id": HARBOR,
            "duration_ms": 215000,
            "explicit": False,
            "popularity": 61,
            "track_number": 1,
            "isrc": "GBXQ72100001",
        } == tracks[LANTERNS]
        assert [NIGHT_FERRIES] == [r["album_id"] for r in rows["albums"]]
        assert {
            "album_id": NIGHT_FERRIES,
            "name": "Night Ferries",
            "album_type": "album",
            "artist_id": HARBOR,
            "release_date": "2021-03-05",
            "release_date_precision": "day",
            "total_tracks": 10,
            "label": None,
        } == rows["albums"][0]

    def test_a_full_album_brings_its_label_and_the_tracks_of_its_page(self) -> None:
        rows, _ = normalise(SpotifyApiFormat, SAMPLES / "album.json")

        album = rows["albums"][0]
        assert ("single", "Saltwater Sound", "2023") == (
            album["album_type"],
            album["label"],
            album["release_date"],
        )
        assert {PAPER_TIDE, "6SDRwD7333lAch9c2YVbFK"} == {r["track_id"] for r in rows["tracks"]}
        assert {PAPER_TIDE_ALBUM} == {r["album_id"] for r in rows["tracks"]}

    def test_a_full_object_completes_the_simplified_one_read_before_it(self) -> None:
        rows, _ = normalise(
            SpotifyApiFormat, SAMPLES / "several_tracks.json", SAMPLES / "several_artists.json"
        )
        harbor = by_key(rows["artists"], "artist_id")[HARBOR]

        assert (["indie folk", "dream pop"], 55, 120345) == (
            harbor["genres"],
            harbor["popularity"],
            harbor["followers"],
        )

    def test_unknown_fields_are_ignored_and_missing_optional_fields_are_null(
        self, tmp_path: Path
    ) -> None:
        track = sample("several_tracks.json")["tracks"][1]
        track["a_field_from_the_future"] = {"nested": [1, 2]}
        for optional in ("popularity", "explicit", "external_ids", "track_number"):
            del track[optional]

        rows, _ = normalise(SpotifyApiFormat, write(tmp_path / "t.json", track))

        staged = rows["tracks"][0]
        assert "a_field_from_the_future" not in staged
        assert (None, None, None, None) == (
            staged["popularity"],
            staged["explicit"],
            staged["isrc"],
            staged["track_number"],
        )

    def test_a_playlist_keeps_its_positions_and_skips_local_missing_and_episode_items(
        self,
    ) -> None:
        rows, reader = normalise(SpotifyApiFormat, SAMPLES / "playlist.json")

        assert {
            "playlist_id": PLAYLIST,
            "owner_id": "harbor.fan",
            "name": "Harbor Lights",
            "description": "Songs for the ferry",
            "public": True,
            "collaborative": False,
            "followers": 12,
            "snapshot_id": "MTAsZDVkOGFmYTk0ZjA5",
            "created_at": None,
        } == rows["playlists"][0]
        entries = [
            (r["position"], r["track_id"], r["added_by"], r["added_at"])
            for r in rows["playlist_tracks"]
        ]
        assert [
            (0, LANTERNS, "harbor.fan", "2024-02-01T10:00:00+00:00"),
            (1, PAPER_TIDE, "sailor_42", "2024-02-02T10:00:00+00:00"),
            (5, NORTHBOUND, None, None),
        ] == entries
        assert {"local": 1, "unavailable": 1, "episode": 1} == skipped(reader)
        assert {"harbor.fan": "Harbor Fan", "sailor_42": "sailor_42"} == {
            r["user_id"]: r["display_name"] for r in rows["users"]
        }

    def test_a_playlist_in_the_2026_shape_reads_like_the_classic_one(self, tmp_path: Path) -> None:
        playlist = sample("playlist.json")
        page = playlist.pop("tracks")
        for entry in page["items"]:
            entry["item"] = entry.pop("track")
        playlist["items"] = page

        rows, _ = normalise(SpotifyApiFormat, write(tmp_path / "p.json", playlist))
        classic, _ = normalise(SpotifyApiFormat, SAMPLES / "playlist.json")

        assert classic["playlist_tracks"] == rows["playlist_tracks"]

    def test_page_offsets_count_in_playlist_item_positions(self, tmp_path: Path) -> None:
        page = copy.deepcopy(sample("playlist.json")["tracks"])
        page["offset"] = 100

        rows, _ = normalise(
            SpotifyApiFormat,
            write(tmp_path / "items.json", page),
            options={"playlist_id": PLAYLIST},
        )

        assert [100, 101, 105] == [r["position"] for r in rows["playlist_tracks"]]

    def test_a_page_of_saved_tracks_without_a_playlist_only_feeds_the_catalogue(
        self, tmp_path: Path
    ) -> None:
        page = sample("playlist.json")["tracks"]

        rows, _ = normalise(SpotifyApiFormat, write(tmp_path / "saved.json", page))

        assert "playlist_tracks" not in rows
        assert 3 == len(rows["tracks"])

    def test_audio_features_are_staged_per_track(self) -> None:
        rows, reader = normalise(SpotifyApiFormat, SAMPLES / "several_audio_features.json")

        features = by_key(rows["audio_features"], "track_id")
        assert {LANTERNS, NORTHBOUND} == set(features)
        assert (7, 1, 4, 118.04) == tuple(
            features[LANTERNS][k] for k in ("key", "mode", "time_signature", "tempo")
        )
        assert {"unavailable": 1} == skipped(reader)

    def test_recently_played_becomes_plays_of_the_named_user(self) -> None:
        rows, reader = normalise(
            SpotifyApiFormat, SAMPLES / "recently_played.json", options=LISTENER
        )

        plays = [
            (r["played_at"], r["track_id"], r["ms_played"], r["context_uri"])
            for r in rows["listening_events"]
        ]
        assert [
            ("2025-01-10T08:00:00.123000+00:00", LANTERNS, 215000, f"spotify:playlist:{PLAYLIST}"),
            ("2025-01-10T08:04:00+00:00", NORTHBOUND, 198000, None),
            ("2025-01-10T08:10:30+00:00", PAPER_TIDE, 181000, None),
        ] == plays
        assert {"listener"} == {r["user_id"] for r in rows["listening_events"]}
        assert [{"user_id": "listener", "display_name": "Lis Tener"}] == rows["users"]
        assert {"duplicate_play": 1, "context_dropped": 1} == skipped(reader)

    def test_a_played_at_past_microseconds_is_rounded_as_postgresql_rounds_it(
        self, tmp_path: Path
    ) -> None:
        """Not cut to 6 digits as Python parses it: the play is staged at the time a
        PostgreSQL tenant would store for that text, and a SQLite one then stores it too."""
        document = sample("recently_played.json")
        document["items"][0]["played_at"] = "2025-01-10T08:00:00.9999995Z"

        rows, _ = normalise(
            SpotifyApiFormat, write(tmp_path / "recent.json", document), options=LISTENER
        )

        assert "2025-01-10T08:00:01+00:00" == rows["listening_events"][0]["played_at"]

    @pytest.mark.parametrize(
        ("played_at", "message"),
        [
            pytest.param("0001-01-01T00:00:00+01:00", "outside the calendar", id="before-year-1"),
            pytest.param("9999-12-31T23:59:59-01:00", "outside the calendar", id="after-9999"),
            pytest.param("2025-01-10T08:00:00+00:00:00.5", "whole seconds", id="offset-fraction"),
        ],
    )
    def test_a_played_at_no_utc_timestamp_can_hold_is_refused_naming_its_field(
        self, tmp_path: Path, played_at: str, message: str
    ) -> None:
        """Refused as the record's error (an OverflowError escaped before; an offset's
        fraction of a second was dropped without a word)."""
        document = sample("recently_played.json")
        document["items"][0]["played_at"] = played_at

        with pytest.raises(RecordError) as refused:
            normalise(SpotifyApiFormat, write(tmp_path / "recent.json", document), options=LISTENER)

        assert ("recent.json", "items[0].played_at") == (refused.value.path, refused.value.column)
        assert message in str(refused.value)

    def test_top_items_only_feed_the_catalogue(self) -> None:
        rows, _ = normalise(SpotifyApiFormat, SAMPLES / "top_artists.json")

        assert ["artists"] == list(rows)
        assert 2 == len(rows["artists"])

    def test_recently_played_without_a_user_is_refused(self) -> None:
        with pytest.raises(RecordError) as caught:
            normalise(SpotifyApiFormat, SAMPLES / "recently_played.json")

        assert ("recently_played.json", "user_id", "option:user_id") == (
            caught.value.path,
            caught.value.column,
            caught.value.rule,
        )

    def test_an_object_of_the_wrong_type_is_refused_naming_its_path(self, tmp_path: Path) -> None:
        response = sample("several_tracks.json")
        response["tracks"][1]["type"] = "album"

        with pytest.raises(
            RecordError, match="expected a Spotify object of type 'track'"
        ) as caught:
            normalise(SpotifyApiFormat, write(tmp_path / "tracks.json", response))

        assert ("tracks.json", 1, "tracks[1].type", "format:spotify_object") == (
            caught.value.path,
            caught.value.record,
            caught.value.column,
            caught.value.rule,
        )

    @pytest.mark.parametrize(
        ("change", "column"),
        [
            (lambda t: t.update(id="not-an-id"), "tracks[0].id"),
            (lambda t: t.pop("name"), "tracks[0].name"),
            (lambda t: t.update(artists=[]), "tracks[0].artists"),
            (lambda t: t["album"].update(type="artist"), "tracks[0].album.type"),
            (lambda t: t.update(duration_ms="long"), "tracks[0].duration_ms"),
        ],
        ids=["bad-id", "no-name", "no-artist", "album-of-wrong-type", "text-duration"],
    )
    def test_a_malformed_track_is_refused_naming_the_field(
        self, tmp_path: Path, change: Any, column: str
    ) -> None:
        response = sample("several_tracks.json")
        change(response["tracks"][0])

        with pytest.raises(RecordError) as caught:
            normalise(SpotifyApiFormat, write(tmp_path / "tracks.json", response))

        assert column == caught.value.column

    def test_a_document_that_is_no_spotify_object_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(RecordError, match="not a Spotify Web API object"):
            normalise(SpotifyApiFormat, write(tmp_path / "x.json", {"hello": "world"}))


class TestStreamingHistory:
    def test_the_basic_export_derives_the_catalogue_from_names(self) -> None:
        rows, reader = normalise(
            StreamingHistoryFormat, SAMPLES / "StreamingHistory_music_0.json", options=LISTENER
        )

        lanterns = derived_id("track", "The Velvet Harbor", "Lanterns")
        harbor = derived_id("artist", "The Velvet Harbor")
        assert {
            "track_id": lanterns,
            "name": "Lanterns",
            "album_id": derived_id("album", "The Velvet Harbor", ""),
            "artist_id": harbor,
        } == by_key(rows["tracks"], "track_id")[lanterns]
        assert {UNKNOWN_ALBUM} == {r["name"] for r in rows["albums"]}
        assert 2 == len(rows["artists"])
        assert [
            ("2024-06-01T07:30:00+00:00", 215000),
            ("2024-06-01T07:34:00+00:00", 12000),
            ("2024-06-01T07:34:01+00:00", 3000),  # skipped within the same minute: kept
            ("2024-06-02T21:15:00+00:00", 181000),
        ] == [(r["played_at"], r["ms_played"]) for r in rows["listening_events"]]
        assert {"episode": 1} == skipped(reader)

    def test_basic_plays_ending_in_one_minute_are_kept_a_second_apart_and_repeats_dropped(
        self, tmp_path: Path
    ) -> None:
        """The basic export gives minutes: a second play ending in the same minute (a
        skip) was dropped as a duplicate. Plays of one minute now take its seconds in
        file order; the same play again (same minute, track and msPlayed) is a repeat."""
        entries = [
            {"endTime": "2024-06-01 07:34", "artistName": "A", "trackName": t, "msPlayed": ms}
            for t, ms in [("One", 5000), ("Two", 4000), ("One", 5000), ("One", 6000)]
        ]
        path = tmp_path / "StreamingHistory_music_0.json"
        path.write_text(json.dumps(entries), encoding="utf-8")

        rows, reader = normalise(StreamingHistoryFormat, path, options=LISTENER)

        assert [
            ("2024-06-01T07:34:00+00:00", derived_id("track", "A", "One"), 5000),
            ("2024-06-01T07:34:01+00:00", derived_id("track", "A", "Two"), 4000),
            ("2024-06-01T07:34:02+00:00", derived_id("track", "A", "One"), 6000),
        ] == [(r["played_at"], r["track_id"], r["ms_played"]) for r in rows["listening_events"]]
        assert {"duplicate_play": 1} == skipped(reader)

    def test_the_extended_export_keeps_real_track_ids_and_play_details(self) -> None:
        rows, reader = normalise(
            StreamingHistoryFormat, SAMPLES / "Streaming_History_Audio_2024.json", options=LISTENER
        )

        assert {LANTERNS, PAPER_TIDE} == {r["track_id"] for r in rows["tracks"]}
        assert {derived_id("album", "The Velvet Harbor", "Night Ferries")} == {
            r["album_id"] for r in rows["tracks"] if r["track_id"] == LANTERNS
        }
        second = rows["listening_events"][1]
        assert {
            "user_id": "listener",
            "played_at": "2024-07-01T10:05:00+00:00",
            "track_id": PAPER_TIDE,
            "ms_played": 5000,
            "context_uri": None,
            "platform": "Android OS 14 API 34 (Google, Pixel 8)",
            "reason_start": "trackdone",
            "reason_end": "fwdbtn",
            "shuffle": True,
            "skipped": True,
        } == second
        assert 3 == len(rows["listening_events"])
        assert {"episode": 1, "unavailable": 1} == skipped(reader)

    def test_a_history_without_its_listener_is_refused(self) -> None:
        with pytest.raises(RecordError, match="needs the option user_id") as caught:
            normalise(StreamingHistoryFormat, SAMPLES / "Streaming_History_Audio_2024.json")

        assert ("user_id", 1) == (caught.value.column, caught.value.record)

    @pytest.mark.parametrize(
        ("change", "column", "message"),
        [
            (lambda e: e.pop("ts"), "ts", "missing 'ts'"),
            (lambda e: e.update(ts="yesterday"), "ts", "ISO 8601"),
            (lambda e: e.update(ms_played=-1), "ms_played", "at least 0"),
            (
                lambda e: e.update(spotify_track_uri="spotify:track:nope"),
                "spotify_track_uri",
                "22 base-62",
            ),
            (
                lambda e: e.update(spotify_track_uri=f"spotify:album:{NIGHT_FERRIES}"),
                "spotify_track_uri",
                "expected a track URI",
            ),
            (lambda e: e.update(shuffle="sometimes"), "shuffle", "true or false"),
        ],
        ids=["no-ts", "bad-ts", "negative-ms", "bad-uri", "album-uri", "bad-shuffle"],
    )
    def test_a_malformed_extended_entry_is_refused_naming_the_entry_and_field(
        self, tmp_path: Path, change: Any, column: str, message: str
    ) -> None:
        entries = sample("Streaming_History_Audio_2024.json")
        change(entries[1])

        with pytest.raises(RecordError, match=message) as caught:
            normalise(
                StreamingHistoryFormat, write(tmp_path / "history.json", entries), options=LISTENER
            )

        assert ("history.json", 2, column) == (
            caught.value.path,
            caught.value.record,
            caught.value.column,
        )

    @pytest.mark.parametrize(
        ("change", "column"),
        [
            (lambda e: e.pop("endTime"), "endTime"),
            (lambda e: e.update(endTime="01/06/2024 07:30"), "endTime"),
            (lambda e: e.update(msPlayed=-5), "msPlayed"),
        ],
        ids=["no-endTime", "bad-endTime", "negative-ms"],
    )
    def test_a_malformed_basic_entry_is_refused(
        self, tmp_path: Path, change: Any, column: str
    ) -> None:
        entries = sample("StreamingHistory_music_0.json")
        change(entries[0])

        with pytest.raises(RecordError) as caught:
            normalise(
                StreamingHistoryFormat, write(tmp_path / "basic.json", entries), options=LISTENER
            )

        assert (1, column) == (caught.value.record, caught.value.column)


def _extended_entry(n: int, **changes: Any) -> dict[str, Any]:
    """An extended-history play of one of three tracks, at minute ``n``."""
    track = (LANTERNS, PAPER_TIDE, NORTHBOUND)[n % 3]
    entry = {
        "ts": f"2024-07-01T10:{n % 60:02d}:{n // 60:02d}Z",
        "platform": "ios",
        "ms_played": 1000 * n,
        "conn_country": "SE",
        "master_metadata_track_name": f"Track {track[:4]}",
        "master_metadata_album_artist_name": "The Velvet Harbor",
        "master_metadata_album_album_name": "Night Ferries",
        "spotify_track_uri": f"spotify:track:{track}",
        "spotify_episode_uri": None,
        "reason_start": "clickrow",
        "reason_end": "trackdone",
        "shuffle": n % 2 == 0,
        "skipped": None,
    }
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not _ABSENT}


_ABSENT = object()
#: Entries the whole-file path must stage exactly as the document path does: plays of
#: tracks staged before and after, and every kind of entry it leaves to the document path.
_ODD_ENTRIES = [
    _extended_entry(7),  # the second play of a track: the whole-file path's own
    _extended_entry(1, ts="2024-07-01T10:01:00Z"),  # the same time again: a duplicate
    _extended_entry(8, ts="2024-07-01T10:08:00.250Z"),  # fractions of a second
    _extended_entry(9, ts="2024-07-01T12:09:00+02:00"),  # an offset
    _extended_entry(10, ts="2024-07-01 10:10:00Z"),  # a space for the T
    _extended_entry(11, ts="2024-W27-1T10:11:00Z"),  # a week date of the same length
    _extended_entry(12, platform="p" * 80, reason_start="r" * 40, reason_end=""),
    _extended_entry(13, shuffle=_ABSENT, skipped=True, ms_played=0),
    _extended_entry(14, spotify_track_uri=f"https://open.spotify.com/track/{LANTERNS}"),
    _extended_entry(15, spotify_track_uri="spotify:local:Artist:Album:Title:215"),
    _extended_entry(16, spotify_track_uri=None, spotify_episode_uri="spotify:episode:x"),
    _extended_entry(17, spotify_track_uri=None),
    _extended_entry(18, master_metadata_track_name="Kept: the track was staged first"),
]


def _read_entry_by_entry(path: Path) -> tuple[Rows, int]:
    """The rows staged from ``path`` and how many of its entries took the entry-by-entry
    path (all of them when the file was not read whole)."""
    read: list[Any] = []

    class Counting(StreamingHistoryFormat):
        def normalize(self, document: Any, sink: RowSink) -> None:
            read.append(document)
            super().normalize(document, sink)

    rows, _ = normalise(Counting, path, options=LISTENER)
    return rows, len(read)


class TestWholeExtendedFiles:
    """An extended export file is staged at once (one typed decode) where it can be;
    what it stages, and where each row came from, is what reading it a document at a
    time stages."""

    @staticmethod
    def _both(*paths: Path) -> tuple[Any, Any]:
        whole = staged_with_origins(StreamingHistoryFormat, *paths, options=LISTENER)
        documents = staged_with_origins(
            StreamingHistoryFormat, *paths, options=LISTENER, whole_files=False
        )
        return whole, documents

    def test_a_file_read_whole_stages_what_reading_it_entry_by_entry_stages(
        self, tmp_path: Path
    ) -> None:
        entries = [_extended_entry(n) for n in range(7)] + _ODD_ENTRIES
        whole, documents = self._both(write(tmp_path / "history.json", entries))

        assert documents[0] == whole[0]
        assert documents[2] == whole[2]
        assert skipped(documents[1]) == skipped(whole[1])
        assert {"duplicate_play": 1, "episode": 1, "local": 1, "unavailable": 1} == skipped(
            whole[1]
        )

    def test_plays_in_a_later_file_point_at_their_own_file_and_entry(self, tmp_path: Path) -> None:
        first = write(tmp_path / "a.json", [_extended_entry(n) for n in range(3)])
        later = write(tmp_path / "b.json", [_extended_entry(n) for n in range(3, 9)])

        whole, documents = self._both(first, later)

        events = whole[2]["_staged/listening_events.jsonl"]
        assert [("b.json", n) for n in range(1, 7)] == [(o.path, o.record) for o in events[3:]]
        assert documents[2] == whole[2]
        assert documents[0] == whole[0]

    def test_the_names_tracks_are_first_played_with_stage_as_entry_by_entry(
        self, tmp_path: Path
    ) -> None:
        names = [None, "", 'a "quoted" \\ name', "two\nlines", "Ünïcødé ✓ 🎧", "\u2028 \x00"]

        def play(n: int, track: int) -> dict[str, Any]:
            return _extended_entry(
                n,
                spotify_track_uri=f"spotify:track:{track:022d}",
                master_metadata_track_name=names[track % 6],
                master_metadata_album_artist_name=names[-1 - track % 6],
                master_metadata_album_album_name=names[(track + 2) % 6],
            )

        first = write(tmp_path / "a.json", [play(n, n) for n in range(6)])
        # Tracks of the first file again, among new ones and an entry read on its own.
        later = [play(n, n - 3) for n in range(6, 12)]
        later.insert(2, _extended_entry(13, ts="2024-07-01T10:13:00.250Z"))
        whole, documents = self._both(first, write(tmp_path / "b.json", later))

        assert documents[0] == whole[0]
        assert documents[2] == whole[2]

    def test_a_track_another_format_staged_is_not_staged_again_from_the_history(
        self, tmp_path: Path
    ) -> None:
        path = write(tmp_path / "history.json", [_extended_entry(n) for n in range(6)])
        file = source_file(tmp_path, path.name, format="spotify-history", options=LISTENER)
        with tempfile.TemporaryDirectory() as staging:
            sink = RowSink(Path(staging), spotify_metadata(), [file])
            # As a Web API file read earlier in the same load stages it.
            api_track = {"track_id": LANTERNS, "name": "Lanterns", "artist_id": None}
            sink.merge("tracks", dict(api_track))
            read_source_file(StreamingHistoryFormat(LISTENER), file, 0, sink)
            sink.close()
            staged = {
                part: [
                    json.loads(line) for line in (Path(staging) / part).read_bytes().splitlines()
                ]
                for part in ("_staged/tracks.jsonl", "_derived/tracks.jsonl")
            }

        assert [api_track] == staged["_staged/tracks.jsonl"]
        assert [PAPER_TIDE, NORTHBOUND] == [t["track_id"] for t in staged["_derived/tracks.jsonl"]]

    def test_a_compressed_file_is_read_whole_too(self, tmp_path: Path) -> None:
        plain = write(tmp_path / "history.json", [_extended_entry(n) for n in range(9)])
        packed = tmp_path / "packed.json.gz"
        packed.write_bytes(gzip.compress(plain.read_bytes()))

        assert (_read_entry_by_entry(plain)[0], 0) == _read_entry_by_entry(packed)

    def test_a_file_with_a_byte_order_mark_is_read_whole_too(self, tmp_path: Path) -> None:
        plain = write(tmp_path / "history.json", [_extended_entry(n) for n in range(9)])
        marked = tmp_path / "marked.json"
        marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())

        assert (_read_entry_by_entry(plain)[0], 0) == _read_entry_by_entry(marked)

    def test_only_entries_that_are_not_plain_plays_take_the_entry_by_entry_path(
        self, tmp_path: Path
    ) -> None:
        plays = [_extended_entry(n) for n in range(30)]
        path = write(tmp_path / "history.json", plays + _ODD_ENTRIES)

        # Four times not written as the export writes them, a link, a local file, an
        # episode and an entry without a URI; the other odd entries are plain plays.
        assert 8 == _read_entry_by_entry(path)[1]

    def test_repeated_times_are_skipped_as_reading_entry_by_entry_skips_them(
        self, tmp_path: Path
    ) -> None:
        first = write(
            tmp_path / "a.json",
            [
                _extended_entry(1),
                _extended_entry(2),
                _extended_entry(4, ts="2024-07-01T10:01:00Z"),  # a plain play's time again
                _extended_entry(5, ts="2024-07-01T12:06:00+02:00"),  # odd, a new time...
                _extended_entry(6),  # ...which this plain play then repeats
                _extended_entry(7, ts="2024-07-01T12:02:00+02:00"),  # odd, repeats entry 2
                _extended_entry(8),
                _extended_entry(8),
                _extended_entry(8, ts="2024-07-01T10:08:00.000Z"),
            ],
        )
        later = write(
            tmp_path / "b.json",
            [_extended_entry(n) for n in (9, 1, 10, 8, 11)],  # 1 and 8: the first file's
        )

        whole, documents = self._both(first, later)

        assert documents[0] == whole[0]
        assert documents[2] == whole[2]
        assert {"duplicate_play": 7} == skipped(whole[1]) == skipped(documents[1])
        events = whole[2]["_staged/listening_events.jsonl"]
        assert [("a.json", 1), ("a.json", 2), ("a.json", 4)] == [
            (o.path, o.record) for o in events[:3]
        ]

    def test_a_file_of_plays_only_repeating_a_time_stages_as_entry_by_entry(
        self, tmp_path: Path
    ) -> None:
        plays = [_extended_entry(n) for n in (1, 2, 2, 3, 1, 4)]
        whole, documents = self._both(write(tmp_path / "history.json", plays))

        assert documents[0] == whole[0]
        assert documents[2] == whole[2]
        assert {"duplicate_play": 2} == skipped(whole[1]) == skipped(documents[1])

    def test_a_value_nested_past_a_hundred_levels_is_refused_either_way(
        self, tmp_path: Path
    ) -> None:
        """As a table file's is: it loaded (the field is not read), at the price of
        memory quadratic in the depth while streaming."""
        entries = [_extended_entry(n) for n in range(3)]
        text = json.dumps(entries)[:-2] + ', "x": ' + "[" * 3000 + "]" * 3000 + "}]"
        path = tmp_path / "history.json"
        path.write_text(text, encoding="utf-8")

        for whole_files in (True, False):
            with pytest.raises(FixtureFormatError, match="nested deeper than 100") as caught:
                normalise(StreamingHistoryFormat, path, options=LISTENER, whole_files=whole_files)
            assert ("history.json", 3) == (caught.value.path, caught.value.record)

    def test_bytes_that_are_not_utf8_in_a_field_no_column_reads_are_refused_either_way(
        self, tmp_path: Path
    ) -> None:
        entries = json.dumps([_extended_entry(n) for n in range(4)]).encode()
        path = tmp_path / "history.json"
        path.write_bytes(entries.replace(b'"conn_country": "SE"', b'"conn_country": "S\xffE"'))

        refusals = []
        for whole_files in (True, False):
            with pytest.raises(FixtureFormatError, match="unreadable") as caught:
                normalise(StreamingHistoryFormat, path, options=LISTENER, whole_files=whole_files)
            refusals.append(str(caught.value))
        assert refusals[0] == refusals[1]

    @pytest.mark.parametrize(
        ("change", "column", "message"),
        [
            ({"ts": "2024-02-30T10:00:00Z"}, "ts", "ISO 8601"),
            ({"ms_played": -1}, "ms_played", "at least 0"),
            ({"ms_played": True}, "ms_played", "whole number"),
            ({"shuffle": "sometimes"}, "shuffle", "true or false"),
            ({"spotify_track_uri": "spotify:track:" + "x" * 21 + "!"}, "spotify_track_uri", "22"),
            ({"ms_played": -(2**63) - 1}, "ms_played", "at least 0"),
        ],
        ids=["no-such-day", "negative-ms", "boolean-ms", "text-shuffle", "bad-id", "past-int64"],
    )
    def test_a_bad_entry_after_the_first_is_refused_naming_it_either_way(
        self, tmp_path: Path, change: dict[str, Any], column: str, message: str
    ) -> None:
        entries = [_extended_entry(n) for n in range(5)]
        entries[4].update(change)
        path = write(tmp_path / "history.json", entries)

        refusals = []
        for whole_files in (True, False):
            with pytest.raises(RecordError, match=message) as caught:
                normalise(StreamingHistoryFormat, path, options=LISTENER, whole_files=whole_files)
            assert ("history.json", 5, column) == (
                caught.value.path,
                caught.value.record,
                caught.value.column,
            )
            refusals.append(str(caught.value))
        assert refusals[0] == refusals[1]


def _place(error: RecordError) -> tuple[Any, ...]:
    """Where ``error`` says the refused value is: file, record, field and rule."""
    return (error.path, error.record, error.column, error.rule)


def _mpd_refusal(tmp_path: Path, change: Any) -> RecordError:
    """The refusal of the sample slice whose second playlist ``change`` spoiled."""
    document = sample("mpd.slice.0-999.json")
    change(document["playlists"][1])
    with pytest.raises(RecordError) as caught:
        normalise(MillionPlaylistFormat, write(tmp_path / "mpd.slice.0-999.json", document))
    return caught.value


class TestMillionPlaylistDataset:
    def test_a_slice_becomes_playlists_their_tracks_and_the_catalogue(self) -> None:
        rows, _ = normalise(MillionPlaylistFormat, SAMPLES / "mpd.slice.0-999.json")

        assert {
            "playlist_id": "mpd0000000000000000001",
            "owner_id": "mpd",
            "name": "chill",
            "description": "quiet ones",
            "public": True,
            "collaborative": True,
            "followers": 1,
            "snapshot_id": None,
            "created_at": "2017-07-14T02:40:00+00:00",
        } == rows["playlists"][1]
        assert 5 == len(rows["playlist_tracks"])
        assert 4 == len(rows["tracks"])
        assert {HARBOR, MIRA, "zssuN5scLgOWFBFUH5yxqt"} == {r["artist_id"] for r in rows["artists"]}
        assert [{"user_id": "mpd", "display_name": "Million Playlist Dataset"}] == rows["users"]

    def test_the_owner_of_mpd_playlists_can_be_named(self) -> None:
        rows, _ = normalise(
            MillionPlaylistFormat,
            SAMPLES / "mpd.slice.0-999.json",
            options={"owner_id": "research", "owner_name": "Research team"},
        )

        assert {"research"} == {r["owner_id"] for r in rows["playlists"]}
        assert [{"user_id": "research", "display_name": "Research team"}] == rows["users"]

    def test_a_modified_at_past_the_year_9999_is_refused_naming_it(self, tmp_path: Path) -> None:
        playlist = {"pid": 1, "name": "far", "modified_at": 10**12, "tracks": []}
        path = write(tmp_path / "mpd.slice.0-0.json", {"info": {}, "playlists": [playlist]})

        with pytest.raises(RecordError) as caught:
            normalise(MillionPlaylistFormat, path)

        assert ("mpd.slice.0-0.json", "modified_at") == (caught.value.path, caught.value.column)
        assert "at most 253402300799" in str(caught.value)

    def test_the_playlist_id_pads_the_pid_to_a_spotify_shaped_id(self) -> None:
        assert "mpd0000000000000999999" == mpd_playlist_id(999_999)
        assert is_spotify_id(mpd_playlist_id(5))

    def test_a_playlist_seen_twice_is_loaded_once(self, tmp_path: Path) -> None:
        rows, reader = normalise(
            MillionPlaylistFormat,
            SAMPLES / "mpd.slice.0-999.json",
            write(tmp_path / "again.json", sample("mpd.slice.0-999.json")),
        )

        assert 2 == len(rows["playlists"])
        assert 5 == len(rows["playlist_tracks"])
        assert {"duplicate_playlist": 2} == skipped(reader)

    @pytest.mark.parametrize(
        ("change", "column"),
        [
            (lambda p: p.pop("pid"), "pid"),
            (lambda p: p.update(pid="one"), "pid"),
            (lambda p: p["tracks"][1].update(pos=0), "tracks[1].pos"),
            (
                lambda p: p["tracks"][0].update(artist_uri="spotify:artist:x"),
                "tracks[0].artist_uri",
            ),
            (lambda p: p["tracks"][0].pop("track_uri"), "tracks[0].track_uri"),
            (lambda p: p.update(collaborative="maybe"), "collaborative"),
        ],
        ids=["no-pid", "text-pid", "repeated-pos", "bad-artist-uri", "no-track-uri", "bad-flag"],
    )
    def test_a_malformed_playlist_is_refused_naming_its_place_and_field(
        self, tmp_path: Path, change: Any, column: str
    ) -> None:
        refused = _mpd_refusal(tmp_path, change)

        assert ("mpd.slice.0-999.json", 2, column, "format:mpd") == _place(refused)

    @pytest.mark.parametrize(
        ("change", "column", "maximum"),
        [
            (lambda p: p.update(num_followers=2**64), "num_followers", 2**63 - 1),
            (lambda p: p.update(num_followers=2**63), "num_followers", 2**63 - 1),
            (
                lambda p: p.update(modified_at=99_999_999_999_999_999_999),
                "modified_at",
                253402300799,
            ),
            (lambda p: p["tracks"][1].update(pos=2**64), "tracks[1].pos", 2**31 - 1),
            (
                lambda p: p["tracks"][0].update(duration_ms=2**70),
                "tracks[0].duration_ms",
                2**31 - 1,
            ),
        ],
        ids=["followers-past-64-bits", "followers-past-int64", "modified-at", "pos", "duration"],
    )
    def test_a_number_beyond_64_bits_is_refused_naming_its_field_not_as_malformed_json(
        self, tmp_path: Path, change: Any, column: str, maximum: int
    ) -> None:
        refused = _mpd_refusal(tmp_path, change)

        assert ("mpd.slice.0-999.json", 2, column, "format:mpd") == _place(refused)
        assert f"must be at most {maximum}" in str(refused)
        assert "malformed" not in str(refused)


class TestSourceGenerator:
    def test_the_same_seed_and_scale_give_byte_identical_files(self, tmp_path: Path) -> None:
        first = generate_sources(tmp_path / "a", scale=1, seed=3)
        generate_sources(tmp_path / "b", scale=1, seed=3)

        names = sorted(p.relative_to(first.directory) for p in first.directory.rglob("*.json"))
        assert names == sorted(
            p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.json")
        )
        for name in names:
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()

    def test_another_seed_gives_other_data(self, tmp_path: Path) -> None:
        generate_sources(tmp_path / "a", scale=1, seed=1)
        generate_sources(tmp_path / "b", scale=1, seed=2)

        relative = Path("api/several_tracks_0.json")
        assert (tmp_path / "a" / relative).read_bytes() != (tmp_path / "b" / relative).read_bytes()

    def test_every_file_is_listed_in_the_manifest_and_detected_as_its_format(
        self, tmp_path: Path
    ) -> None:
        generated = generate_sources(tmp_path, scale=1, seed=0)
        manifest = json.loads((tmp_path / "fixtures.json").read_text(encoding="utf-8"))

        listed = {e["path"]: e["format"] for e in manifest["files"]}
        on_disk = {
            p.relative_to(tmp_path).as_posix()
            for p in tmp_path.rglob("*/*")
            if p.name.endswith((".json", ".jsonl"))
        }
        assert on_disk == set(listed)
        for path, fmt in listed.items():
            assert fmt == detect_format(source_file(tmp_path, path)), path
        history = [e for e in manifest["files"] if e["format"] == "spotify-history"]
        assert {SOURCE_USER_ID} == {e["options"]["user_id"] for e in history}
        assert SOURCE_USER_ID == generated.user_id

    def test_sizes_grow_with_the_scale(self, tmp_path: Path) -> None:
        small = generate_sources(tmp_path / "s", scale=1, seed=0)
        large = generate_sources(tmp_path / "l", scale=3, seed=0)

        def items(generated: Any, fmt: str) -> int:
            return sum(f.items for f in generated.files if f.format == fmt)

        for fmt in ("spotify-api", "spotify-history", "mpd"):
            assert items(large, fmt) > items(small, fmt)

    @pytest.mark.parametrize("scale", [0, -1, True, MAX_SCALE + 1])
    def test_a_scale_below_one_or_past_the_largest_is_refused(
        self, tmp_path: Path, scale: int
    ) -> None:
        with pytest.raises(ValueError, match="scale"):
            generate_sources(tmp_path, scale=scale, seed=0)

    def test_documents_streamed_an_item_at_a_time_read_as_one_json_dump(
        self, tmp_path: Path
    ) -> None:
        """The workspaces file and the MPD slices, written a playlist at a time, are laid
        out as ``json.dumps`` of the whole document."""
        generate_sources(tmp_path, scale=2, seed=4)

        for relative, indent in (
            ("collaboration/workspaces.json", 2),
            ("mpd/mpd.slice.0-999.json", 4),
        ):
            text = (tmp_path / relative).read_text(encoding="utf-8")
            document = json.loads(text)
            assert text == json.dumps(document, indent=indent, ensure_ascii=False) + "\n"
        assert 20 == len(document["playlists"])

    def test_no_value_is_negative_zero(self, tmp_path: Path) -> None:
        """A loudness rounding to -0.0 is written 0.0 (SQLite stores -0.0 as 0, and
        validate-data then found audio_features' checksum changed; seed 7 has one)."""
        generate_sources(tmp_path, scale=3, seed=7)

        for path in (tmp_path / "api").glob("audio_features_*.json"):
            assert "-0.0," not in path.read_text(encoding="utf-8"), path.name

    def test_memory_does_not_grow_with_the_scale(self, tmp_path: Path) -> None:
        """The catalogue is derived, not kept, and every file is streamed: four times the
        sources peak within 512 KiB of the smaller set (about 90 KiB apart here, mostly
        the bounded caches filling; keeping the catalogue costs ~450 KiB per unit of
        scale: 1.8 MiB more)."""
        generate_sources(tmp_path / "warm-up", scale=1, seed=1)

        def peak(directory: Path, scale: int) -> int:
            return traced_peak(lambda: generate_sources(directory, scale=scale, seed=1))

        small = peak(tmp_path / "small", 1)
        large = peak(tmp_path / "large", 4)

        assert large - small < 512 * 1024, (small, large)


class TestSourceCatalogue:
    def test_artist_names_are_distinct_also_past_two_words(self) -> None:
        """Past 33 * 33 artists the names take three words; none repeats."""
        catalogue = SourceCatalogue(seed=2, scale=120)

        names = [catalogue.artist(i).name for i in range(catalogue.artists)]

        assert len(set(names)) == len(names) == 1200
        assert any(len(n.removeprefix("The ").split(" & ")[0].split()) == 3 for n in names)

    def test_every_artist_has_an_album_and_every_album_a_run_of_its_tracks(self) -> None:
        catalogue = SourceCatalogue(seed=2, scale=5)
        albums = [catalogue.album(a) for a in range(catalogue.albums)]

        assert set(range(catalogue.artists)) <= {a.artist for a in albums}
        assert [t for a in albums for t in a.tracks] == list(range(catalogue.tracks))
        for index, album in enumerate(albums):
            for number, track in enumerate(album.tracks, start=1):
                derived = catalogue.track(track)
                assert (index, number) == (derived.album, derived.number)
                assert album.artist == derived.artists[0]
                assert is_spotify_id(derived.id)

    def test_ids_are_distinct_within_each_kind(self) -> None:
        catalogue = SourceCatalogue(seed=2, scale=5)

        for count, item in (
            (catalogue.artists, catalogue.artist),
            (catalogue.albums, catalogue.album),
            (catalogue.tracks, catalogue.track),
        ):
            ids = {item(i).id for i in range(count)}
            assert count == len(ids)


@pytest.mark.parametrize("whole", [True, False], ids=["read-whole", "streamed"])
def test_an_export_entry_that_is_not_utf8_is_a_format_error_naming_the_file_and_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, whole: bool
) -> None:
    if not whole:
        monkeypatch.setattr("tenancy_fixtures.loading.json_arrays.MAX_WHOLE_ARRAY_BYTES", 1)
    entry = {"ts": "2026-01-01T00:00:00Z", "ms_played": 1, "platform": "PLACEHOLDER"}
    good = json.dumps(entry)
    bad = good.replace("PLACEHOLDER", "\udcff").encode("utf-8", "surrogateescape")
    path = tmp_path / "Streaming_History_Audio_2026.json"
    path.write_bytes(b"[" + good.encode() + b",\n" + bad + b"]")
    file = source_file(tmp_path, path.name, format="spotify-history")
    with pytest.raises(FixtureFormatError) as caught:
        list(iter_documents(file))
    assert (path.name, 2) == (caught.value.path, caught.value.record)


@pytest.mark.parametrize("text", ["B\\ud800b", "\\udc00", "\\ud800\\u0041"])
def test_a_lone_surrogate_escape_in_a_json_source_is_refused_at_its_document_not_stored_as_a_qmark(
    tmp_path: Path, text: str
) -> None:
    """yajl decoded it as ``?`` (or merged it with the next escape into another character)."""
    good = json.dumps({"type": "artist", "id": HARBOR, "name": "Harbor"})
    bad = good.replace("Harbor", text)
    path = tmp_path / "artists.json"
    path.write_text(f"[{good},\n{good},\n{bad}]", encoding="ascii")
    file = source_file(tmp_path, path.name, format="spotify-api")

    with pytest.raises(RecordError) as caught:
        list(iter_documents(file))

    assert ("artists.json", 3, "encoding") == (
        caught.value.path,
        caught.value.record,
        caught.value.rule,
    )
    assert "lone surrogate" in str(caught.value)


@pytest.mark.parametrize(
    ("fmt", "document", "path", "expected"),
    [
        (
            "spotify-history",
            [_extended_entry(0), _extended_entry(1, ms_played=2**64), _extended_entry(2)],
            (1, "ms_played"),
            2**64,
        ),
        (
            "spotify-api",
            [{"type": "artist", "id": HARBOR, "name": "Harbor", "followers": {"total": 2**64}}],
            (0, "followers", "total"),
            2**64,
        ),
        (
            "spotify-history",
            [_extended_entry(0, ms_played=-(2**70)), _extended_entry(1, x=[0.5, 1e300])],
            (1, "x", 1),
            1e300,
        ),
    ],
    ids=["history", "api-objects", "floats-after-it"],
)
def test_a_streamed_json_source_holding_an_integer_beyond_64_bits_is_read_not_called_malformed(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
    document: Any,
    path: tuple[Any, ...],
    expected: Any,
) -> None:
    # Streamed, as an export past the size read whole is.
    monkeypatch.setattr("tenancy_fixtures.loading.json_arrays.MAX_WHOLE_ARRAY_BYTES", 1)
    file = source_file(tmp_path, write(tmp_path / "source.json", document).name, format=fmt)

    found: Any = [d.value for d in iter_documents(file)]
    for key in path:
        found = found[key]

    assert (expected, type(expected)) == (found, type(found))
