"""Format ``spotify-history``: Spotify account data exports of what a user played.

One format reads both exports, telling them apart entry by entry, so a directory
holding either (or both) loads with ``--format spotify-history`` or by detection:

- the basic ``StreamingHistory*.json`` (``StreamingHistory_music_*.json``) of the
  account data package: ``endTime`` (``"YYYY-MM-DD HH:MM"``, UTC), ``artistName``,
  ``trackName``, ``msPlayed``; podcast entries (``podcastName``, ``episodeName``)
  are skipped as episodes;
- the extended ``Streaming_History_Audio_*.json`` (older: ``endsong_*.json``):
  ``ts`` (ISO 8601, UTC), ``ms_played``, ``spotify_track_uri``,
  ``master_metadata_track_name``, ``master_metadata_album_artist_name``,
  ``master_metadata_album_album_name``, ``platform``, ``reason_start``, ``reason_end``,
  ``shuffle``, ``skipped``; the rest (``conn_country``, ``ip_addr``, ``offline``,
  ``incognito_mode``...) has no column and is ignored. Entries for episodes or
  audiobooks, and entries without a track URI, are skipped and counted.

Mapping decisions:

- Every entry becomes a ``listening_events`` row of ``options["user_id"]`` (required;
  the ``users`` row is inserted from ``user_id`` and ``options["display_name"]`` when
  the tenant lacks it). ``played_at`` is the export's time, which is when the stream
  *ended*; ``context_uri`` is NULL (exports do not say). A second entry with the same
  ``played_at`` for the user (the table's key; frequent with the basic export's
  minute precision) is skipped as a duplicate: the first is kept.
- The basic export names tracks only by artist and title: the track, its artist and
  a placeholder album (``"Unknown album"``, one per artist) get **derived** ids
  (:func:`~tenancy_fixtures.spotify.spotify_ids.derived_id`), which never collide with
  real catalogue rows.
- The extended export gives the real track id (from ``spotify_track_uri``); its album
  and artist, named only, get derived ids; ``tracks.artist_id`` and
  ``albums.artist_id`` are the ``master_metadata_album_artist_name`` artist.
- Catalogue rows from history are written ``insert_missing``: a track, album or artist
  the tenant already has (from Web API objects, say) is never overwritten by the
  thinner row a history implies. Within one load, a track a Web API file staged
  earlier is not restaged at all.
- ``platform`` is cut to the column's 64 characters, ``reason_start``/``reason_end``
  to 32.

A missing ``ts``/``endTime`` or ``ms_played``/``msPlayed``, a negative play length,
a URI that is not a track's, or a value of the wrong type is a
:class:`~tenancy_fixtures.errors.RecordError` naming the file, entry and field;
nothing is written.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

import msgspec

from tenancy_fixtures.loading.data_loader import TableMode
from tenancy_fixtures.loading.sources import RowSink, SourceFile, SourceFormat, whole_json
from tenancy_fixtures.spotify.formats.values import Fields, SkipCounts, iso_utc, listener_row
from tenancy_fixtures.spotify.spotify_ids import derived_id, parse_uri

__all__ = ["UNKNOWN_ALBUM", "StreamingHistoryFormat"]

_RULE = "format:spotify_history"
#: Name of the placeholder album a history names no album for.
UNKNOWN_ALBUM = "Unknown album"
_UNKNOWN_TRACK = "Unknown track"
_UNKNOWN_ARTIST = "Unknown artist"
_BASIC_TIME = "%Y-%m-%d %H:%M"
_PLATFORM_LENGTH = 64
_REASON_LENGTH = 32
_SPOKEN_FIELDS = (
    "spotify_episode_uri",
    "episode_name",
    "episode_show_name",
    "audiobook_uri",
    "audiobook_title",
    "audiobook_chapter_uri",
)
#: An extended entry's time as the export writes it (UTC, whole seconds), and a track
#: URI's shape: the entries :meth:`StreamingHistoryFormat.stage_file` takes without
#: :class:`Fields`.
_EXPORT_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_TRACK_URI_PREFIX = "spotify:track:"
_TRACK_ID_AT = len(_TRACK_URI_PREFIX)
_TRACK_URI_LENGTH = _TRACK_ID_AT + 22
_DERIVED: Mapping[str, TableMode] = {
    "users": "insert_missing",
    "artists": "insert_missing",
    "albums": "insert_missing",
    "tracks": "insert_missing",
}


def _play_row(
    user_id: str,
    played_at: str | None,
    track_id: str,
    ms_played: int | None,
    platform: str | None,
    reason_start: str | None,
    reason_end: str | None,
    shuffle: bool | None,
    skipped: bool | None,
) -> dict[str, Any]:
    """The ``listening_events`` row of an extended entry's checked values."""
    return {
        "user_id": user_id,
        "played_at": played_at,
        "track_id": track_id,
        "ms_played": ms_played,
        "context_uri": None,
        "platform": platform[:_PLATFORM_LENGTH] if platform else None,
        "reason_start": reason_start[:_REASON_LENGTH] if reason_start else None,
        "reason_end": reason_end[:_REASON_LENGTH] if reason_end else None,
        "shuffle": shuffle,
        "skipped": skipped,
    }


class _ExtendedEntry(msgspec.Struct, gc=False):
    """An extended-export entry with the JSON types the export gives its fields; a file
    whose every entry has them is decoded in one call (other fields are not read)."""

    ts: str
    #: Past -2^63 orjson reads a number as a float, which :class:`Fields` then reads
    #: back rounded: such a file is left to that path, to be refused the same way.
    ms_played: Annotated[int, msgspec.Meta(ge=-(2**63))]
    spotify_track_uri: str | None = None
    master_metadata_track_name: str | None = None
    master_metadata_album_artist_name: str | None = None
    master_metadata_album_album_name: str | None = None
    platform: str | None = None
    reason_start: str | None = None
    reason_end: str | None = None
    shuffle: bool | None = None
    skipped: bool | None = None
    spotify_episode_uri: Any = None
    episode_name: Any = None
    episode_show_name: Any = None
    audiobook_uri: Any = None
    audiobook_title: Any = None
    audiobook_chapter_uri: Any = None


_EXTENDED_FILE = msgspec.json.Decoder(list[_ExtendedEntry])


class StreamingHistoryFormat(SourceFormat):
    """Basic and extended streaming history exports into listening events."""

    name = "spotify-history"
    loader = "spotify"
    tables = frozenset({"users", "artists", "albums", "tracks", "listening_events"})
    derived_modes: ClassVar[Mapping[str, TableMode]] = _DERIVED

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        #: Entries read but not loaded, by reason.
        self.skipped = SkipCounts()
        self._plays: set[tuple[str, str]] = set()
        #: The listener, once checked and staged (the options do not change).
        self._listener: str | None = None

    @classmethod
    def sniff(cls, document: Any) -> bool:
        return isinstance(document, dict) and (
            ("ts" in document and "ms_played" in document)
            or ("endTime" in document and "msPlayed" in document)
        )

    def normalize(self, document: Any, sink: RowSink) -> None:
        entry = Fields(document, sink, rule=_RULE)
        if "ts" in entry.value or "ms_played" in entry.value:
            self._extended(entry, sink)
        elif "endTime" in entry.value or "msPlayed" in entry.value:
            self._basic(entry, sink)
        else:
            raise entry.refuse(
                "not a streaming history entry: expected 'ts' and 'ms_played' (extended) "
                "or 'endTime' and 'msPlayed' (basic)",
                None,
            )

    def stage_file(self, file: SourceFile, index: int, sink: RowSink) -> bool:
        """An extended export file read whole: one typed decode instead of a generic
        JSON object and a :class:`Fields` per entry.

        A play of a track staged before, at a time as the export writes it, is staged
        here; any other entry (a new track, an episode, an unusual time, a refusal)
        goes through :meth:`normalize`, in file order. A file with any entry not typed
        as the export types it (a basic export, a value of the wrong type) is declined.
        """
        data = whole_json(file)
        if data is None:
            return False
        try:
            entries = _EXTENDED_FILE.decode(data)
        except (msgspec.DecodeError, RecursionError):
            return False
        del data
        staged = sink.merged_keys("tracks")
        plays: list[dict[str, Any]] = []
        records: list[int] = []
        for record, entry in enumerate(entries, 1):
            play = self._quick_play(entry, staged)
            if play is None:
                sink.add_records("listening_events", plays, file_index=index, records=records)
                plays, records = [], []
                sink.at_record(index, record)
                self.normalize(msgspec.structs.asdict(entry), sink)
            elif self._new_play(play):
                plays.append(play)
                records.append(record)
        sink.add_records("listening_events", plays, file_index=index, records=records)
        if entries:
            sink.at_record(index, len(entries))  # where reading entry by entry ends
        return True

    def _quick_play(
        self, entry: _ExtendedEntry, staged: Collection[tuple[Any, ...]]
    ) -> dict[str, Any] | None:
        """The row :meth:`_extended` makes of ``entry`` if it is a play of a track in
        ``staged`` at a time written as the export writes it; else ``None``."""
        uri, ts, ms_played = entry.spotify_track_uri, entry.ts, entry.ms_played
        if (
            self._listener is None
            or uri is None
            or len(uri) != _TRACK_URI_LENGTH
            or not uri.startswith(_TRACK_URI_PREFIX)
            # Every format checks an id (or derives one) before it merges a track.
            or (uri[_TRACK_ID_AT:],) not in staged
            or _EXPORT_TIME.fullmatch(ts) is None
            or ms_played < 0
        ):
            return None
        try:
            datetime.fromisoformat(ts)  # a real date and time of day
        except ValueError:
            return None
        return _play_row(
            self._listener,
            f"{ts[:-1]}+00:00",  # iso_utc of a whole-second UTC time
            uri[_TRACK_ID_AT:],
            ms_played,
            entry.platform,
            entry.reason_start,
            entry.reason_end,
            entry.shuffle,
            entry.skipped,
        )

    def finish(self, sink: RowSink) -> None:
        del sink
        self.skipped.report(self.name)

    def _user(self, sink: RowSink) -> str:
        if self._listener is None:
            self._listener = listener_row(self.options, sink, format_name=self.name)
        return self._listener

    def _basic(self, entry: Fields, sink: RowSink) -> None:
        user_id = self._user(sink)
        end = entry.text("endTime", required=True)
        assert end is not None
        try:
            played_at = iso_utc(datetime.strptime(end.strip(), _BASIC_TIME).replace(tzinfo=UTC))
        except ValueError:
            raise entry.refuse(
                f"expected a time as YYYY-MM-DD HH:MM (UTC), found {end!r:.40}", "endTime"
            ) from None
        ms_played = entry.integer("msPlayed", required=True, minimum=0)
        if entry.has("podcastName") or entry.has("episodeName"):
            self.skipped["episode"] += 1
            return
        artist = entry.text("artistName")
        title = entry.text("trackName")
        if artist is None or title is None:
            self.skipped["unavailable"] += 1
            return
        track_id = derived_id("track", artist, title)
        if not sink.seen("tracks", track_id):
            artist_id = self._artist(sink, artist)
            album_id = self._album(sink, artist_id, artist, None)
            sink.merge(
                "tracks",
                {"track_id": track_id, "name": title, "album_id": album_id, "artist_id": artist_id},
                authoritative=False,
            )
        self._play(
            sink,
            {
                "user_id": user_id,
                "played_at": played_at,
                "track_id": track_id,
                "ms_played": ms_played,
            },
        )

    def _extended(self, entry: Fields, sink: RowSink) -> None:
        user_id = self._user(sink)
        played_at = entry.timestamp("ts", required=True)
        ms_played = entry.integer("ms_played", required=True, minimum=0)
        uri = entry.text("spotify_track_uri")
        if uri is None:
            spoken = any(entry.has(name) for name in _SPOKEN_FIELDS)
            self.skipped["episode" if spoken else "unavailable"] += 1
            return
        try:
            ref = parse_uri(uri)
        except ValueError as exc:
            raise entry.refuse(str(exc), "spotify_track_uri") from None
        if ref.kind == "local":
            self.skipped["local"] += 1
            return
        if ref.kind != "track":
            raise entry.refuse(f"expected a track URI, found a {ref.kind} URI", "spotify_track_uri")
        if not sink.seen("tracks", ref.id):
            artist = entry.text("master_metadata_album_artist_name") or _UNKNOWN_ARTIST
            artist_id = self._artist(sink, artist)
            album = entry.text("master_metadata_album_album_name")
            sink.merge(
                "tracks",
                {
                    "track_id": ref.id,
                    "name": entry.text("master_metadata_track_name") or _UNKNOWN_TRACK,
                    "album_id": self._album(sink, artist_id, artist, album),
                    "artist_id": artist_id,
                },
                authoritative=False,
            )
        self._play(
            sink,
            _play_row(
                user_id,
                played_at,
                ref.id,
                ms_played,
                entry.text("platform"),
                entry.text("reason_start"),
                entry.text("reason_end"),
                entry.boolean("shuffle"),
                entry.boolean("skipped"),
            ),
        )

    @staticmethod
    def _artist(sink: RowSink, name: str) -> str:
        artist_id = derived_id("artist", name)
        sink.merge("artists", {"artist_id": artist_id, "name": name}, authoritative=False)
        return artist_id

    @staticmethod
    def _album(sink: RowSink, artist_id: str, artist: str, name: str | None) -> str:
        album_id = derived_id("album", artist, name or "")
        sink.merge(
            "albums",
            {"album_id": album_id, "name": name or UNKNOWN_ALBUM, "artist_id": artist_id},
            authoritative=False,
        )
        return album_id

    def _play(self, sink: RowSink, row: dict[str, Any]) -> None:
        if self._new_play(row):
            sink.add("listening_events", row)

    def _new_play(self, row: dict[str, Any]) -> bool:
        """Whether ``row`` is the user's first play at its time (a repeat is counted)."""
        key = (row["user_id"], row["played_at"])
        if key in self._plays:
            self.skipped["duplicate_play"] += 1
            return False
        self._plays.add(key)
        return True
