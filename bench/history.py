"""An extended streaming-history export and the same rows as table files (issue 15, d).

:func:`write_history_set` writes, for one listener, ``entries`` plays as Spotify's
extended streaming history export lays them out (``Streaming_History_Audio_<n>.json``,
JSON arrays of at most :data:`ENTRIES_PER_FILE` entries, every field the export has),
and next to it the rows the ``spotify-history`` format makes of them, as a fixture
set of JSON Lines table files (what its loader stages): one ``users`` row, the
artists, albums and tracks the plays name (album and artist by derived id, as the
format derives them) and one ``listening_events`` row per play. Every entry is a play
of a track (no episodes, no unavailable tracks), each at its own second, so both load
the same rows, entry for entry.

The export's load also computes the daily aggregates of its plays
(``track_daily_stats``, ``daily_stats``), which a table-file load takes as given: a
second twin, ``tenant/``, holds the same five files plus those aggregates (computed
here as :mod:`tenancy_fixtures.spotify.daily_stats` defines them), so that loading it
leaves the same tenant, table for table, as loading the export. Cached under
``bench/.data/<scale>-<seed>/history-<n>/``.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from bench.dataset import DATA_DIR, SCALES
from tenancy_fixtures.spotify.daily_stats import STREAM_MS
from tenancy_fixtures.spotify.spotify_ids import BASE62, SPOTIFY_ID_LENGTH, derived_id

__all__ = [
    "DERIVED_TABLES",
    "ENTRIES_PER_FILE",
    "HISTORY_USER",
    "TABLES",
    "HistorySet",
    "history_at_scale",
    "write_history_set",
]

#: Entries per export file (Spotify splits the export into files of about this many).
ENTRIES_PER_FILE = 20_000
#: The listener the export is of (``-o user_id=...``).
HISTORY_USER = "history_listener"
#: The tables the table-file twin holds, parents first.
TABLES = ("users", "artists", "albums", "tracks", "listening_events")
#: The daily aggregates the export's load computes, which the ``tenant/`` twin also holds.
DERIVED_TABLES = ("track_daily_stats", "daily_stats")
_MARKER = "complete.json"
_START = datetime(2018, 1, 1, tzinfo=UTC)
_PLATFORMS = ("ios", "android", "osx", "windows", "web_player", "cast_tv")
_STARTS = ("trackdone", "clickrow", "fwdbtn", "playbtn", "appload", "backbtn")
_ENDS = ("trackdone", "fwdbtn", "endplay", "logout", "backbtn")
_COUNTRIES = ("SE", "GB", "US", "DE", "BR", "JP")
_WORDS = (
    "Amber", "Arrow", "Bloom", "Cinder", "Comet", "Coral", "Drift", "Ember", "Fable",
    "Glass", "Harbor", "Hollow", "Iris", "Lantern", "Meadow", "Nova", "Orbit", "Prism",
)  # fmt: skip


@dataclass(frozen=True)
class HistorySet:
    """The export (a directory of source files) and its table-file twins (fixture sets):
    ``tables`` the rows the format stages, ``tenant`` those and the daily aggregates."""

    export: Path
    tables: Path
    tenant: Path
    user_id: str
    entries: int
    export_bytes: int
    rows: dict[str, int]
    derived_rows: dict[str, int]

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def tenant_rows(self) -> int:
        """Rows in the tenant after either load: the staged rows and the aggregates."""
        return self.total_rows + sum(self.derived_rows.values())


@dataclass(frozen=True)
class _Track:
    id: str
    name: str
    album: str
    artist: str
    duration_ms: int


def _catalogue(rng: random.Random, entries: int) -> list[_Track]:
    """About one track per 25 plays, eight tracks an album, three albums an artist;
    every name unique, so every derived id is too."""
    tracks_wanted = max(20, entries // 25)
    artists = [f"{rng.choice(_WORDS)} Collective {n}" for n in range(max(1, tracks_wanted // 24))]
    ids: set[str] = set()
    tracks = []
    for n in range(tracks_wanted):
        album = n // 8
        track_id = "".join(rng.choices(BASE62, k=SPOTIFY_ID_LENGTH))
        if track_id in ids:
            continue
        ids.add(track_id)
        tracks.append(
            _Track(
                id=track_id,
                name=f"{rng.choice(_WORDS)} {rng.choice(_WORDS)} {n}",
                album=f"{rng.choice(_WORDS)} Sessions {album}",
                artist=artists[(album // 3) % len(artists)],
                duration_ms=rng.randint(90_000, 400_000),
            )
        )
    return tracks


def _entry(rng: random.Random, track: _Track, ts: datetime, ms_played: int) -> dict[str, Any]:
    """One extended-export entry, its fields in the export's order."""
    return {
        "ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "platform": rng.choice(_PLATFORMS),
        "ms_played": ms_played,
        "conn_country": rng.choice(_COUNTRIES),
        "ip_addr": f"192.0.2.{rng.randint(1, 254)}",
        "master_metadata_track_name": track.name,
        "master_metadata_album_artist_name": track.artist,
        "master_metadata_album_album_name": track.album,
        "spotify_track_uri": f"spotify:track:{track.id}",
        "episode_name": None,
        "episode_show_name": None,
        "spotify_episode_uri": None,
        "audiobook_title": None,
        "audiobook_uri": None,
        "audiobook_chapter_uri": None,
        "audiobook_chapter_title": None,
        "reason_start": rng.choice(_STARTS),
        "reason_end": rng.choice(_ENDS),
        "shuffle": rng.random() < 0.4,
        "skipped": ms_played < 30_000,
        "offline": False,
        "offline_timestamp": None,
        "incognito_mode": False,
    }


class _Twin:
    """The table files: catalogue rows the first time a play names them, every play."""

    def __init__(self, directory: Path, user_id: str) -> None:
        self.directory = directory
        self.user_id = user_id
        self.catalogue: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in TABLES[1:4]}
        self.events: IO[str] = (directory / "listening_events.jsonl").open(
            "w", encoding="utf-8", newline="\n"
        )
        self.event_rows = 0
        #: Per (track, day) and per day: plays, milliseconds played, skips, streams.
        self.per_track: dict[tuple[str, str], list[int]] = {}
        self.per_day: dict[str, list[int]] = {}

    def play(self, track: _Track, entry: dict[str, Any], played_at: datetime) -> None:
        artist_id = derived_id("artist", track.artist)
        album_id = derived_id("album", track.artist, track.album)
        self.catalogue["artists"].setdefault(
            artist_id, {"artist_id": artist_id, "name": track.artist}
        )
        self.catalogue["albums"].setdefault(
            album_id, {"album_id": album_id, "name": track.album, "artist_id": artist_id}
        )
        self.catalogue["tracks"].setdefault(
            track.id,
            {
                "track_id": track.id,
                "name": track.name,
                "album_id": album_id,
                "artist_id": artist_id,
            },
        )
        row = {
            "user_id": self.user_id,
            "played_at": played_at.isoformat(),
            "track_id": track.id,
            "ms_played": entry["ms_played"],
            "context_uri": None,
            "platform": entry["platform"],
            "reason_start": entry["reason_start"],
            "reason_end": entry["reason_end"],
            "shuffle": entry["shuffle"],
            "skipped": entry["skipped"],
        }
        self.events.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.event_rows += 1
        day = played_at.astimezone(UTC).date().isoformat()
        ms = entry["ms_played"]
        measures = (1, ms, 1 if entry["skipped"] else 0, 1 if ms >= STREAM_MS else 0)
        for totals in (
            self.per_track.setdefault((track.id, day), [0, 0, 0, 0]),
            self.per_day.setdefault(day, [0, 0, 0, 0]),
        ):
            for at, value in enumerate(measures):
                totals[at] += value

    def close(self) -> dict[str, int]:
        """Write the catalogue, the user and the manifest; the row count per table."""
        self.events.close()
        tables: dict[str, list[dict[str, Any]]] = {
            "users": [{"user_id": self.user_id, "display_name": self.user_id}],
            **{t: list(rows.values()) for t, rows in self.catalogue.items()},
        }
        for table, rows in tables.items():
            with (self.directory / f"{table}.jsonl").open("w", encoding="utf-8") as out:
                out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        files = [{"table": t, "path": f"{t}.jsonl"} for t in TABLES]
        manifest = {"name": "bench-history-as-tables", "version": 1, "files": files}
        (self.directory / "fixtures.json").write_text(json.dumps(manifest), encoding="utf-8")
        return {**{t: len(rows) for t, rows in tables.items()}, "listening_events": self.event_rows}

    def write_tenant(self, directory: Path) -> dict[str, int]:
        """The ``tenant/`` twin: the five table files (hard links) and the aggregates of
        the one listener's plays; the aggregate rows per table."""
        for table in TABLES:
            (directory / f"{table}.jsonl").hardlink_to(self.directory / f"{table}.jsonl")

        def row(keys: dict[str, str], totals: list[int]) -> str:
            plays, ms, skips, streams = totals
            measures = {"plays": plays, "listeners": 1, "ms_played": ms, "skips": skips}
            return json.dumps({**keys, **measures, "streams": streams}) + "\n"

        with (directory / "track_daily_stats.jsonl").open("w", encoding="utf-8") as out:
            for (track_id, day), totals in self.per_track.items():
                out.write(row({"track_id": track_id, "day": day}, totals))
        with (directory / "daily_stats.jsonl").open("w", encoding="utf-8") as out:
            out.writelines(row({"day": day}, totals) for day, totals in self.per_day.items())
        files = [{"table": t, "path": f"{t}.jsonl"} for t in (*TABLES, *DERIVED_TABLES)]
        manifest = {"name": "bench-history-as-tenant", "version": 1, "files": files}
        (directory / "fixtures.json").write_text(json.dumps(manifest), encoding="utf-8")
        return {"track_daily_stats": len(self.per_track), "daily_stats": len(self.per_day)}


def _write(export: Path, twin: _Twin, entries: int, seed: int) -> None:
    rng = random.Random(seed)
    tracks = _catalogue(rng, entries)
    moment = _START
    out: IO[str] | None = None
    for number in range(entries):
        if number % ENTRIES_PER_FILE == 0:
            if out is not None:
                out.write("\n]\n")
                out.close()
            name = f"Streaming_History_Audio_{number // ENTRIES_PER_FILE}.json"
            out = (export / name).open("w", encoding="utf-8", newline="\n")
            out.write("[")
        assert out is not None
        track = tracks[rng.randrange(len(tracks))]
        skipped = rng.random() < 0.22
        ms_played = rng.randint(0, 29_999) if skipped else track.duration_ms
        # The export's time is when the stream ended, to the second: one play a second
        # at most, so no two plays of the listener share a played_at.
        moment += timedelta(seconds=ms_played // 1000 + rng.randint(1, 120))
        entry = _entry(rng, track, moment, ms_played)
        out.write(("\n  " if number % ENTRIES_PER_FILE == 0 else ",\n  ") + json.dumps(entry))
        twin.play(track, entry, moment)
    if out is not None:
        out.write("\n]\n")
        out.close()


def write_history_set(root: Path, entries: int, seed: int, *, log: Any = print) -> HistorySet:
    """The export of ``entries`` plays and its table-file twin, written now unless cached."""
    directory = root / f"history-{entries}"
    export, tables, tenant = directory / "export", directory / "tables", directory / "tenant"
    marker = directory / _MARKER
    if marker.is_file():
        info = json.loads(marker.read_text(encoding="utf-8"))
        if info.get("entries") == entries and info.get("seed") == seed and "derived" in info:
            return HistorySet(
                export,
                tables,
                tenant,
                HISTORY_USER,
                entries,
                info["export_bytes"],
                info["rows"],
                info["derived"],
            )
    if directory.exists():
        shutil.rmtree(directory)
    export.mkdir(parents=True)
    tables.mkdir()
    tenant.mkdir()
    log(f"writing a {entries:,}-entry extended streaming history export into {export} ...")
    started = time.perf_counter()
    twin = _Twin(tables, HISTORY_USER)
    _write(export, twin, entries, seed)
    rows = twin.close()
    derived = twin.write_tenant(tenant)
    size = sum(p.stat().st_size for p in export.iterdir())
    info = {"entries": entries, "seed": seed, "export_bytes": size, "rows": rows}
    marker.write_text(json.dumps({**info, "derived": derived}), encoding="utf-8")
    log(
        f"  {size / (1 << 20):,.0f} MiB of export, {sum(rows.values()):,} table rows, "
        f"in {time.perf_counter() - started:.1f}s"
    )
    return HistorySet(export, tables, tenant, HISTORY_USER, entries, size, rows, derived)


def history_at_scale(scale: str, *, log: Any = print) -> HistorySet:
    """The export of the bench scale named ``scale`` and its twin (cached with the
    scale's other sets), for the modules that run this case alone."""
    config = SCALES[scale]
    root = DATA_DIR / f"{config.name}-{config.seed}"
    return write_history_set(root, config.history_entries, config.seed, log=log)
