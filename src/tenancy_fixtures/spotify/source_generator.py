"""Deterministic generator of Spotify source files: what the domain loaders read.

:func:`generate_sources` writes, for one made-up catalogue, the files a tenant would
hand over: Web API responses (several artists/albums/tracks, audio features,
playlists, top items), a recently-played page, a basic and an extended streaming
history export, and Million Playlist Dataset slices, plus a ``fixtures.json``
manifest naming each file's format (and the listener the history files belong to),
so ``load-fixtures TENANT DIR`` loads the lot. All files describe the same tracks.

Output depends only on ``seed`` and ``scale`` (one ``random.Random``, the catalogue
derived from the seed, fixed base instants, keys written in a fixed order), so the same
inputs give byte-identical files. Sizes grow linearly with ``scale``, memory does not:
the catalogue (:class:`~tenancy_fixtures.spotify.source_catalogue.SourceCatalogue`, 100
tracks per unit of scale) is recomputed from an item's index wherever a file names it,
and every file is streamed to disk a document at a time.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from tenancy_fixtures.loading.fixture_sets import MANIFEST_NAME
from tenancy_fixtures.spotify.generator import MAX_SCALE, ai_model_configs
from tenancy_fixtures.spotify.source_catalogue import COUNTRIES, WORDS, SourceCatalogue, Track
from tenancy_fixtures.spotify.spotify_ids import BASE62

__all__ = ["SOURCE_USER_ID", "GeneratedSource", "GeneratedSources", "generate_sources"]

#: The listener whose history and recently played pages are generated.
SOURCE_USER_ID = "history_listener"
_SOURCE_USER_NAME = "History Listener"

_API = "https://api.spotify.com/v1"
_OPEN = "https://open.spotify.com"
_BASIC_START = datetime(2024, 1, 1, tzinfo=UTC)
_EXTENDED_START = datetime(2025, 1, 1, tzinfo=UTC)
_RECENT_START = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)
_PLAYLISTS_START = datetime(2023, 1, 1, tzinfo=UTC)
_EVENTS_START = datetime(2025, 6, 1, tzinfo=UTC)
_PRODUCT_EVENTS = ("Playlist Created", "Track Saved", "Search Performed", "AI Mix Requested")
_MPD_START = 1_483_228_800  # 2017-01-01, the dataset's last year, in epoch seconds
_MPD_SLICE = 1000
_PLAYLISTS_PER_SCALE = 2
_YEAR_MINUTES = 365 * 24 * 60

_PLATFORMS = ("ios", "android", "osx", "windows", "web_player", "cast_tv")
_REASONS_START = ("trackdone", "clickrow", "fwdbtn", "playbtn", "appload")
_REASONS_END = ("trackdone", "fwdbtn", "endplay", "logout", "backbtn")


@dataclass(frozen=True)
class GeneratedSource:
    """One generated source file: where it is (relative), its format and options."""

    path: Path
    format: str
    items: int
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GeneratedSources:
    """The generated files, in the order the manifest lists them."""

    directory: Path
    files: tuple[GeneratedSource, ...]
    user_id: str = SOURCE_USER_ID


# -- Web API objects ---------------------------------------------------------------


def _links(kind: str, ident: str) -> dict[str, Any]:
    return {
        "external_urls": {"spotify": f"{_OPEN}/{kind}/{ident}"},
        "href": f"{_API}/{kind}s/{ident}",
        "id": ident,
    }


def _simple_artist(cat: SourceCatalogue, index: int) -> dict[str, Any]:
    artist = cat.artist(index)
    return {
        **_links("artist", artist.id),
        "name": artist.name,
        "type": "artist",
        "uri": f"spotify:artist:{artist.id}",
    }


def _full_artist(cat: SourceCatalogue, index: int) -> dict[str, Any]:
    artist = cat.artist(index)
    return {
        **_links("artist", artist.id),
        "followers": {"href": None, "total": artist.followers},
        "genres": artist.genres,
        "images": [],
        "name": artist.name,
        "popularity": artist.popularity,
        "type": "artist",
        "uri": f"spotify:artist:{artist.id}",
    }


def _simple_album(cat: SourceCatalogue, index: int) -> dict[str, Any]:
    album = cat.album(index)
    return {
        "album_type": album.album_type,
        "artists": [_simple_artist(cat, album.artist)],
        "available_markets": ["SE", "GB", "US"],
        **_links("album", album.id),
        "images": [],
        "name": album.name,
        "release_date": album.release_date,
        "release_date_precision": album.precision,
        "total_tracks": len(album.tracks),
        "type": "album",
        "uri": f"spotify:album:{album.id}",
    }


def _simple_track(cat: SourceCatalogue, track: Track) -> dict[str, Any]:
    return {
        "artists": [_simple_artist(cat, a) for a in track.artists],
        "disc_number": 1,
        "duration_ms": track.duration_ms,
        "explicit": track.explicit,
        **_links("track", track.id),
        "is_local": False,
        "name": track.name,
        "track_number": track.number,
        "type": "track",
        "uri": f"spotify:track:{track.id}",
    }


def _full_track(cat: SourceCatalogue, index: int) -> dict[str, Any]:
    track = cat.track(index)
    return {
        "album": _simple_album(cat, track.album),
        **_simple_track(cat, track),
        "external_ids": {"isrc": track.isrc},
        "popularity": track.popularity,
        "preview_url": None,
    }


def _full_album(cat: SourceCatalogue, index: int) -> dict[str, Any]:
    album = cat.album(index)
    items = [_simple_track(cat, cat.track(t)) for t in album.tracks]
    return {
        **_simple_album(cat, index),
        "copyrights": [{"text": f"{album.release_date[:4]} {album.label}", "type": "C"}],
        "genres": [],
        "label": album.label,
        "popularity": album.popularity,
        "tracks": {
            "href": f"{_API}/albums/{album.id}/tracks?offset=0&limit=50",
            "items": items,
            "limit": 50,
            "next": None,
            "offset": 0,
            "previous": None,
            "total": len(items),
        },
    }


def _audio_features(rng: random.Random, cat: SourceCatalogue, index: int) -> dict[str, Any]:
    track = cat.track(index)

    def unit() -> float:
        return round(rng.random(), 3)

    return {
        "acousticness": unit(),
        "analysis_url": f"{_API}/audio-analysis/{track.id}",
        "danceability": unit(),
        "duration_ms": track.duration_ms,
        "energy": unit(),
        "id": track.id,
        "instrumentalness": unit(),
        "key": rng.randint(-1, 11),
        "liveness": unit(),
        # + 0.0 turns a -0.0 into 0.0: SQLite stores -0.0 as 0, so validate-data would
        # find the table's checksum no longer the one the load computed.
        "loudness": round(rng.uniform(-30.0, 0.0), 2) + 0.0,
        "mode": rng.randint(0, 1),
        "speechiness": unit(),
        "tempo": round(rng.uniform(60.0, 200.0), 3),
        "time_signature": rng.choice((3, 4, 4, 4, 5)),
        "track_href": f"{_API}/tracks/{track.id}",
        "type": "audio_features",
        "uri": f"spotify:track:{track.id}",
        "valence": unit(),
    }


def _user(user_id: str, display_name: str | None = None) -> dict[str, Any]:
    user: dict[str, Any] = {
        "external_urls": {"spotify": f"{_OPEN}/user/{user_id}"},
        "href": f"{_API}/users/{user_id}",
        "id": user_id,
        "type": "user",
        "uri": f"spotify:user:{user_id}",
    }
    if display_name is not None:
        user["display_name"] = display_name
    return user


def _playlist(rng: random.Random, cat: SourceCatalogue, number: int) -> dict[str, Any]:
    playlist_id = cat.playlist_id(number)
    owner = f"curator{number % 7}"
    entries = _playlist_entries(rng, cat, [owner, f"friend{rng.randint(0, 9)}"])
    if number == 0:
        _add_local_file_and_episode(cat, entries, owner)
    return {
        "collaborative": number % 5 == 4,
        "description": f"{rng.choice(WORDS)} songs for {rng.choice(WORDS).lower()} days",
        **_links("playlist", playlist_id),
        "followers": {"href": None, "total": rng.randint(0, 5000)},
        "images": [],
        "name": f"{rng.choice(WORDS)} {rng.choice(WORDS)}",
        "owner": _user(owner, owner.title()),
        "public": number % 5 != 3,
        "snapshot_id": "".join(rng.choices(BASE62, k=32)),
        "tracks": {
            "href": f"{_API}/playlists/{playlist_id}/tracks?offset=0&limit=100",
            "items": entries,
            "limit": 100,
            "next": None,
            "offset": 0,
            "previous": None,
            "total": len(entries),
        },
        "type": "playlist",
        "uri": f"spotify:playlist:{playlist_id}",
    }


def _playlist_entries(
    rng: random.Random, cat: SourceCatalogue, members: list[str]
) -> list[dict[str, Any]]:
    """Tracks of the catalogue added one after the other by the playlist's members."""
    entries: list[dict[str, Any]] = []
    added = _PLAYLISTS_START + timedelta(days=rng.randint(0, 700))
    picks = rng.sample(range(cat.tracks), min(cat.tracks, rng.randint(8, 25)))
    for track in picks:
        added += timedelta(minutes=rng.randint(1, 5000))
        entries.append(
            {
                "added_at": added.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "added_by": _user(rng.choice(members)),
                "is_local": False,
                "track": _full_track(cat, track),
            }
        )
    return entries


def _add_local_file_and_episode(
    cat: SourceCatalogue, entries: list[dict[str, Any]], owner: str
) -> None:
    """What real playlists hold besides tracks: a local file and a podcast episode."""
    entries.insert(
        2,
        {
            "added_at": "2023-05-01T12:00:00Z",
            "added_by": _user(owner),
            "is_local": True,
            "track": {
                "album": {"id": None, "name": "Voice memos", "type": "album", "artists": []},
                "artists": [{"id": None, "name": "Me", "type": "artist"}],
                "duration_ms": 61000,
                "id": None,
                "is_local": True,
                "name": "Sketch 4",
                "type": "track",
                "uri": "spotify:local:Me:Voice+memos:Sketch+4:61",
            },
        },
    )
    entries.append(
        {
            "added_at": "2023-06-01T12:00:00Z",
            "added_by": _user(owner),
            "is_local": False,
            "track": {
                "duration_ms": 1_800_000,
                "id": cat.playlist_episode_id(),
                "name": "A podcast episode",
                "type": "episode",
            },
        }
    )


# -- exports ------------------------------------------------------------------------


def _basic_history(
    rng: random.Random, cat: SourceCatalogue, scale: int
) -> Iterator[dict[str, Any]]:
    moment = _BASIC_START
    total = 200 * scale
    # Plays spread over most of a year (a minute apart at least: the export's
    # precision), so the basic and extended exports do not overlap.
    step = max(1, 2 * _YEAR_MINUTES * 9 // (10 * total))
    for number in range(total):
        moment += timedelta(minutes=rng.randint(1, step))
        if number % 97 == 13:
            yield {
                "endTime": moment.strftime("%Y-%m-%d %H:%M"),
                "podcastName": "Harbor Talk",
                "episodeName": f"Episode {number}",
                "msPlayed": rng.randint(60_000, 3_000_000),
            }
            continue
        track = cat.track(rng.randrange(cat.tracks))
        yield {
            "endTime": moment.strftime("%Y-%m-%d %H:%M"),
            "artistName": cat.artist(track.artists[0]).name,
            "trackName": track.name,
            "msPlayed": rng.randint(0, track.duration_ms),
        }


def _extended_history(
    rng: random.Random, cat: SourceCatalogue, scale: int
) -> Iterator[dict[str, Any]]:
    moment = _EXTENDED_START
    total = 300 * scale
    step = max(2, 2 * _YEAR_MINUTES * 60 * 9 // (10 * total))
    for number in range(total):
        moment += timedelta(seconds=rng.randint(1, step))
        entry: dict[str, Any] = {
            "ts": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "platform": rng.choice(_PLATFORMS),
            "ms_played": 0,
            "conn_country": rng.choice(COUNTRIES),
            "ip_addr": f"192.0.2.{rng.randint(1, 254)}",
            "master_metadata_track_name": None,
            "master_metadata_album_artist_name": None,
            "master_metadata_album_album_name": None,
            "spotify_track_uri": None,
            "episode_name": None,
            "episode_show_name": None,
            "spotify_episode_uri": None,
            "audiobook_title": None,
            "audiobook_uri": None,
            "audiobook_chapter_uri": None,
            "audiobook_chapter_title": None,
            "reason_start": rng.choice(_REASONS_START),
            "reason_end": rng.choice(_REASONS_END),
            "shuffle": rng.random() < 0.4,
            "skipped": None,
            "offline": False,
            "offline_timestamp": None,
            "incognito_mode": False,
        }
        if number % 50 == 7:
            entry["episode_name"] = f"Episode {number}"
            entry["episode_show_name"] = "Harbor Talk"
            entry["spotify_episode_uri"] = f"spotify:episode:{cat.episode_id(number)}"
            entry["ms_played"] = rng.randint(60_000, 3_000_000)
        elif number % 101 != 11:  # the rest: a play of a track no longer available
            track = cat.track(rng.randrange(cat.tracks))
            entry["master_metadata_track_name"] = track.name
            entry["master_metadata_album_artist_name"] = cat.artist(track.artists[0]).name
            entry["master_metadata_album_album_name"] = cat.album(track.album).name
            entry["spotify_track_uri"] = f"spotify:track:{track.id}"
            entry["ms_played"] = rng.randint(0, track.duration_ms)
            entry["skipped"] = entry["ms_played"] < 30_000
        yield entry


def _recently_played(rng: random.Random, cat: SourceCatalogue) -> dict[str, Any]:
    moment = _RECENT_START
    items: list[dict[str, Any]] = []
    for _ in range(min(50, cat.tracks)):
        index = rng.randrange(cat.tracks)
        moment += timedelta(milliseconds=cat.track(index).duration_ms + rng.randint(0, 9999))
        album = cat.album(cat.track(index).album)
        items.append(
            {
                "context": {
                    **_links("album", album.id),
                    "type": "album",
                    "uri": f"spotify:album:{album.id}",
                },
                "played_at": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "track": _full_track(cat, index),
            }
        )
    items.reverse()  # newest first, as the API returns them
    return {"href": f"{_API}/me/player/recently-played?limit=50", "items": items, "limit": 50}


def _mpd_playlists(
    rng: random.Random, cat: SourceCatalogue, first_pid: int, count: int
) -> Iterator[dict[str, Any]]:
    for pid in range(first_pid, first_pid + count):
        picks = rng.sample(range(cat.tracks), min(cat.tracks, rng.randint(5, 40)))
        tracks = []
        for pos, index in enumerate(picks):
            track = cat.track(index)
            album = cat.album(track.album)
            artist = cat.artist(track.artists[0])
            tracks.append(
                {
                    "pos": pos,
                    "artist_name": artist.name,
                    "track_uri": f"spotify:track:{track.id}",
                    "artist_uri": f"spotify:artist:{artist.id}",
                    "track_name": track.name,
                    "album_uri": f"spotify:album:{album.id}",
                    "duration_ms": track.duration_ms,
                    "album_name": album.name,
                }
            )
        playlist: dict[str, Any] = {
            "name": f"{rng.choice(WORDS).lower()} {rng.choice(WORDS).lower()}",
            "collaborative": "true" if rng.random() < 0.1 else "false",
            "pid": pid,
            "modified_at": _MPD_START + rng.randrange(300 * 86_400),
            "num_tracks": len(tracks),
            "num_albums": len({t["album_uri"] for t in tracks}),
            "num_followers": rng.randint(1, 50),
            "tracks": tracks,
            "num_edits": rng.randint(1, 30),
            "duration_ms": sum(t["duration_ms"] for t in tracks),
            "num_artists": len({t["artist_uri"] for t in tracks}),
        }
        if rng.random() < 0.2:
            playlist["description"] = f"{rng.choice(WORDS).lower()} vibes"
        yield playlist


# -- writing ------------------------------------------------------------------------


def _dump(value: Any, *, indent: int | None = 2) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


def _write(path: Path, value: Any, *, indent: int | None = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_dump(value, indent=indent) + "\n", encoding="utf-8", newline="\n")


def _write_jsonl(path: Path, values: Iterable[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for value in values:
            out.write(_dump(value, indent=None) + "\n")
            count += 1
    return count


def _write_array(path: Path, values: Iterable[dict[str, Any]]) -> int:
    """A JSON array written one element at a time, as the exports are laid out."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write("[")
        for value in values:
            out.write(",\n  " if count else "\n  ")
            _write_element(out, value)
            count += 1
        out.write("\n]\n")
    return count


def _write_element(out: IO[str], value: dict[str, Any]) -> None:
    out.write(_dump(value, indent=None))


def _write_listing(
    path: Path,
    head: dict[str, Any],
    key: str,
    items: Iterable[dict[str, Any]],
    *,
    indent: int,
) -> int:
    """Write ``{**head, key: [*items]}`` as ``json.dumps(..., indent=indent)`` would, an
    item at a time; the number of items."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pad = " " * indent
    count = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write("{")
        for name, value in head.items():
            text = _dump(value, indent=indent).replace("\n", "\n" + pad)
            out.write(f"\n{pad}{_dump(name)}: {text},")
        out.write(f"\n{pad}{_dump(key)}: [")
        for item in items:
            text = _dump(item, indent=indent).replace("\n", "\n" + pad * 2)
            out.write(("," if count else "") + f"\n{pad * 2}{text}")
            count += 1
        out.write((f"\n{pad}]" if count else "]") + "\n}\n")
    return count


def _chunks(total: int, size: int) -> Iterator[range]:
    for start in range(0, total, size):
        yield range(start, min(total, start + size))


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _product_events(rng: random.Random, scale: int) -> Iterator[dict[str, Any]]:
    """Segment-style track calls by the export's listener."""
    moment = _EVENTS_START
    for number in range(40 * scale):
        moment += timedelta(minutes=rng.randint(1, 600))
        yield {
            "type": "track",
            "messageId": f"evt-{number:06d}",
            "userId": SOURCE_USER_ID,
            "event": rng.choice(_PRODUCT_EVENTS),
            "timestamp": _stamp(moment),
            "properties": {"platform": rng.choice(("ios", "android", "web"))},
        }


def _workspaces(rng: random.Random, cat: SourceCatalogue, scale: int) -> Iterator[dict[str, Any]]:
    """Workspaces owned by the export's listener, sharing the generated playlists."""
    playlists = _PLAYLISTS_PER_SCALE * scale
    for number in range(scale):
        created = _EVENTS_START + timedelta(days=number)
        shared = [cat.playlist_id(p) for p in rng.sample(range(playlists), min(2, playlists))]
        yield {
            "workspace_id": f"ws_sources_{number}",
            "name": f"Listening Room {number + 1}",
            "owner_id": SOURCE_USER_ID,
            "created_at": _stamp(created),
            "members": [{"user_id": SOURCE_USER_ID, "role": "owner", "joined_at": _stamp(created)}],
            "playlists": [
                {"playlist_id": p, "added_by": SOURCE_USER_ID, "added_at": _stamp(created)}
                for p in shared
            ],
            "comments": [
                {
                    "comment_id": f"c_sources_{number}_{index}",
                    "author_id": SOURCE_USER_ID,
                    "playlist_id": p,
                    "body": "Queued this for Friday.",
                    "created_at": _stamp(created + timedelta(hours=index + 1)),
                }
                for index, p in enumerate(shared)
            ],
        }


@dataclass
class _Output:
    """The directory written to, and the files written so far in manifest order."""

    directory: Path
    files: list[GeneratedSource] = field(default_factory=list)

    def written(self, relative: str, fmt: str, items: int, **options: Any) -> None:
        """List a file written (``items`` documents of format ``fmt``)."""
        self.files.append(GeneratedSource(Path(relative), fmt, items, options))

    def json(self, relative: str, value: Any, fmt: str, items: int, **options: Any) -> None:
        """Write ``value`` as one JSON document and list it."""
        _write(self.directory / relative, value)
        self.written(relative, fmt, items, **options)


def generate_sources(
    directory: Path, *, scale: int = 1, seed: int = 0, name: str = "spotify-sources"
) -> GeneratedSources:
    """Write source files of every domain — Spotify Web API responses, streaming-history
    exports, MPD slices, AI model configs, product events, workspaces — and their
    ``fixtures.json`` manifest (the set named ``name``) into ``directory``; the same
    ``scale`` and ``seed`` give byte-identical files. Existing files of the same names
    are overwritten."""
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= MAX_SCALE:
        raise ValueError(f"scale must be an integer from 1 to {MAX_SCALE}, got {scale!r}")
    rng = random.Random(seed)  # noqa: S311 - fixtures, not secrets
    cat = SourceCatalogue(seed, scale)
    directory.mkdir(parents=True, exist_ok=True)
    out = _Output(directory)
    # The same rng runs through every file, in this order: it is part of the output.
    _write_catalogue(out, rng, cat)
    _write_playlists(out, rng, cat, scale)
    _write_listening(out, rng, cat, scale)
    _write_mpd(out, rng, cat, scale)
    models = ai_model_configs()
    out.json("ai/models.json", {"models": models}, "ai-models", len(models))
    events = _write_jsonl(directory / "events/track_calls.jsonl", _product_events(rng, scale))
    out.written("events/track_calls.jsonl", "events", events)
    workspaces = _write_listing(
        directory / "collaboration/workspaces.json",
        {},
        "workspaces",
        _workspaces(rng, cat, scale),
        indent=2,
    )
    out.written("collaboration/workspaces.json", "collaboration", workspaces)
    _write(directory / MANIFEST_NAME, _manifest(out.files, name=name, scale=scale, seed=seed))
    return GeneratedSources(directory, tuple(out.files))


def _write_catalogue(out: _Output, rng: random.Random, cat: SourceCatalogue) -> None:
    """Several-artists, several-albums, several-tracks and audio-features responses."""
    for number, chunk in enumerate(_chunks(cat.artists, 50)):
        artists = [_full_artist(cat, i) for i in chunk]
        out.json(
            f"api/several_artists_{number}.json", {"artists": artists}, "spotify-api", len(chunk)
        )
    for number, chunk in enumerate(_chunks(cat.albums, 20)):
        albums = [_full_album(cat, i) for i in chunk]
        out.json(f"api/several_albums_{number}.json", {"albums": albums}, "spotify-api", len(chunk))
    for number, chunk in enumerate(_chunks(cat.tracks, 50)):
        tracks: list[dict[str, Any] | None] = [_full_track(cat, i) for i in chunk]
        if number == 0:
            tracks.append(None)  # an id the API did not find
        out.json(f"api/several_tracks_{number}.json", {"tracks": tracks}, "spotify-api", len(chunk))
    for number, chunk in enumerate(_chunks(cat.tracks, 100)):
        features = [_audio_features(rng, cat, i) for i in chunk]
        out.json(
            f"api/audio_features_{number}.json",
            {"audio_features": features},
            "spotify-api",
            len(chunk),
        )


def _write_playlists(out: _Output, rng: random.Random, cat: SourceCatalogue, scale: int) -> None:
    """Playlist responses, one file each."""
    for number in range(_PLAYLISTS_PER_SCALE * scale):
        playlist = _playlist(rng, cat, number)
        out.json(f"api/playlist_{number}.json", playlist, "spotify-api", 1)


def _write_listening(out: _Output, rng: random.Random, cat: SourceCatalogue, scale: int) -> None:
    """What the listener played: top tracks, recently played, the basic and extended
    streaming history exports (streamed to disk)."""
    top = rng.sample(range(cat.tracks), min(20, cat.tracks))
    top_tracks = {"items": [_full_track(cat, i) for i in top], "limit": 20, "offset": 0}
    out.json("api/top_tracks.json", top_tracks, "spotify-api", len(top))
    listener = {"user_id": SOURCE_USER_ID, "display_name": _SOURCE_USER_NAME}
    recent = _recently_played(rng, cat)
    out.json("recent/recently_played.json", recent, "spotify-api", len(recent["items"]), **listener)
    basic = _write_array(
        out.directory / "history/StreamingHistory0.json", _basic_history(rng, cat, scale)
    )
    out.written("history/StreamingHistory0.json", "spotify-history", basic, **listener)
    extended = _write_array(
        out.directory / "history/Streaming_History_Audio_2025.json",
        _extended_history(rng, cat, scale),
    )
    out.written(
        "history/Streaming_History_Audio_2025.json", "spotify-history", extended, **listener
    )


def _write_mpd(out: _Output, rng: random.Random, cat: SourceCatalogue, scale: int) -> None:
    """Million Playlist Dataset slices of up to 1000 playlists each."""
    total = 10 * scale
    for start in range(0, total, _MPD_SLICE):
        relative = f"mpd/mpd.slice.{start}-{start + _MPD_SLICE - 1}.json"
        playlists = _mpd_playlists(rng, cat, start, min(_MPD_SLICE, total - start))
        slice_info = {
            "generated_on": "2017-12-03 08:41:42.057563",
            "slice": f"{start}-{start + _MPD_SLICE - 1}",
            "version": "v1",
        }
        head = {"info": slice_info}
        count = _write_listing(out.directory / relative, head, "playlists", playlists, indent=4)
        out.written(relative, "mpd", count)


def _manifest(
    files: Iterable[GeneratedSource], *, name: str, scale: int, seed: int
) -> dict[str, Any]:
    """The ``fixtures.json`` naming each file's format and options."""
    return {
        "name": name,
        "version": 1,
        "generator": {"scale": scale, "seed": seed},
        "files": [
            {
                "path": f.path.as_posix(),
                "format": f.format,
                **({"options": dict(f.options)} if f.options else {}),
            }
            for f in files
        ],
    }
