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
  ``played_at`` for the user (the table's key) is skipped as a duplicate: the first of
  the load is kept, whichever format read it (a Web API recently-played page, say).
  The basic export gives minutes only, and a minute of skips ends several plays: the
  plays ending in one minute take its seconds in file order (``07:34:00``,
  ``07:34:01``...), the first second no play of the listener took in the load; an entry
  repeating one of that minute's plays (same track and ``msPlayed``) is the duplicate.
- The basic export names tracks only by artist and title: the track, its artist and
  a placeholder album (``"Unknown album"``, one per artist) get **derived** ids
  (:func:`~tenancy_fixtures.spotify.spotify_ids.derived_id`), which never collide with
  real catalogue rows.
- The extended export gives the real track id (from ``spotify_track_uri``); its album
  and artist, named only, get derived ids; ``tracks.artist_id`` and
  ``albums.artist_id`` are the ``master_metadata_album_artist_name`` artist.
- Catalogue rows from history are placeholders, written ``insert_missing``: a track,
  album or artist the tenant already has (from Web API objects, say) is never
  overwritten by the thinner row a history implies. Within one load, a track a Web API
  file staged earlier is not restaged at all. The other way round, any real row of the
  track (a full or simplified Web API object, an MPD entry, a table file), in the same
  load or a later one, replaces the placeholder: a track whose artist has an id derived
  from its name is one (:meth:`StreamingHistoryFormat.placeholders`).
- ``platform`` is cut to the column's 64 characters, ``reason_start``/``reason_end``
  to 32.

A missing ``ts``/``endTime`` or ``ms_played``/``msPlayed``, a negative play length,
a URI that is not a track's, or a value of the wrong type is a
:class:`~tenancy_fixtures.errors.RecordError` naming the file, entry and field;
nothing is written (a lenient load sets the entry aside, with what it staged, and
loads the rest).
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left, bisect_right
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import accumulate, count, repeat
from operator import add, attrgetter
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from sqlalchemy import select

from tenancy_fixtures.loading.data_loader import TableMode
from tenancy_fixtures.loading.sources import (
    ReadAhead,
    RowSink,
    SourceFile,
    SourceFormat,
    stage_document,
    whole_json,
)
from tenancy_fixtures.spotify.formats.values import Fields, SkipCounts, iso_utc, listener_row
from tenancy_fixtures.spotify.spotify_ids import derived_id, parse_uri
from tenancy_fixtures.store.base import TENANT_SCHEMA, TenantSession

__all__ = ["UNKNOWN_ALBUM", "StreamingHistoryFormat", "read_plays"]

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
#: A track URI as the export writes it: what :func:`parse_uri` takes as a track.
_TRACK_URI = re.compile(r"spotify:track:[0-9A-Za-z]{22}")
_TRACK_ID_AT = len("spotify:track:")
#: Track keys :meth:`StreamingHistoryFormat.placeholders` looks up per query.
_KEYS_PER_QUERY = 500
_DERIVED: Mapping[str, TableMode] = {
    "users": "insert_missing",
    "artists": "insert_missing",
    "albums": "insert_missing",
    "tracks": "insert_missing",
}


class _PlayLine(msgspec.Struct, gc=False):
    """A play's ``listening_events`` row, its fields in column order: staged as this
    struct's JSON line, or as the dict :func:`_play_row` makes of it."""

    user_id: str
    played_at: str | None
    track_id: str
    ms_played: int | None
    context_uri: None
    platform: str | None
    reason_start: str | None
    reason_end: str | None
    shuffle: bool | None
    skipped: bool | None


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
    (platform,) = _cut([platform], _PLATFORM_LENGTH)
    reason_start, reason_end = _cut([reason_start, reason_end], _REASON_LENGTH)
    row = _PlayLine(
        user_id,
        played_at,
        track_id,
        ms_played,
        None,
        platform,
        reason_start,
        reason_end,
        shuffle,
        skipped,
    )
    return msgspec.structs.asdict(row)


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
_TS_OF = attrgetter("ts")
_MS_OF = attrgetter("ms_played")
_URI_OF = attrgetter("spotify_track_uri")
_PLATFORM_OF = attrgetter("platform")
_REASON_START_OF = attrgetter("reason_start")
_REASON_END_OF = attrgetter("reason_end")
_SHUFFLE_OF = attrgetter("shuffle")
_SKIPPED_OF = attrgetter("skipped")
#: The names an entry gives its track: track, artist, album.
_NAMES_OF = attrgetter(
    "master_metadata_track_name",
    "master_metadata_album_artist_name",
    "master_metadata_album_album_name",
)
_NAMES = msgspec.json.Decoder(tuple[str | None, str | None, str | None])


#: Rows as JSON lines, the bytes :meth:`RowSink.add` writes for them.
_LINES = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class _Plays:
    """An extended export file as :func:`read_plays` read it."""

    user_id: str
    entries: int
    #: The record numbers (from 1) of the plays, ascending; their times as staged.
    records: array[int]
    times: list[str]
    #: The plays' rows as JSON lines, one after the other, and where each line ends
    #: (``None`` for a file of plays only, staged whole unless a play is a repeat).
    lines: bytes
    ends: array[int] | None
    #: Each track's first play in the file, in file order: its record, the track id,
    #: the names the entry gives (track, artist, album) as JSON lines and where each
    #: ends (few are read: most tracks were staged from an earlier file).
    first_records: array[int]
    first_tracks: list[str]
    first_names: bytes
    first_name_ends: array[int]
    #: The fields of the entries read one at a time, by record number.
    others: dict[int, dict[str, Any]]


def read_plays(file: SourceFile, user_id: str) -> _Plays | Literal[False]:
    """The plays of ``user_id`` in an extended export file, decoded whole and typed,
    each encoded as the ``listening_events`` JSON line the format stages for it; the
    other entries kept for :meth:`StreamingHistoryFormat.normalize`. ``False``: the file
    is not an extended export typed as the export types it (read entry by entry).

    A play here is an entry naming a track URI :func:`parse_uri` accepts, with a time
    as the export writes it (whole seconds, ``Z``) and a length of at least 0: an entry
    :class:`Fields` would take without a word, giving the same row. The file is looked
    at a field at a time across its entries (the per-entry work of a file of plays is
    a few list comprehensions, not a Python call per entry).
    """
    data = whole_json(file)
    if data is None:
        return False
    try:
        entries = _EXTENDED_FILE.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return False
    del data
    plain = _plain_plays(entries)
    picked = [entry for entry, is_play in zip(entries, plain, strict=True) if is_play]
    records = array("q", (n for n, is_play in enumerate(plain, 1) if is_play))
    tracks = [uri[_TRACK_ID_AT:] for uri in map(_URI_OF, picked)]
    times = [f"{ts[:-1]}+00:00" for ts in map(_TS_OF, picked)]  # iso_utc of a UTC second
    lines = _play_lines(user_id, picked, times, tracks)
    # Each track's first play: the smallest position of each track id.
    firsts = sorted(
        dict(zip(reversed(tracks), range(len(tracks) - 1, -1, -1), strict=True)).values()
    )
    names = _LINES.encode_lines([_NAMES_OF(picked[i]) for i in firsts])
    return _Plays(
        user_id,
        len(entries),
        records,
        times,
        lines,
        _line_ends(lines) if len(picked) < len(entries) else None,
        array("q", (records[i] for i in firsts)),
        [tracks[i] for i in firsts],
        names,
        _line_ends(names),
        {
            record: msgspec.structs.asdict(entry)
            for record, (entry, is_play) in enumerate(zip(entries, plain, strict=True), 1)
            if not is_play
        },
    )


def _play_lines(
    user_id: str, plays: list[_ExtendedEntry], times: list[str], tracks: list[str]
) -> bytes:
    """The ``listening_events`` JSON lines of ``plays`` (plain plays, with their times
    and track ids as staged), in one encoder call: a call per row costs ten times as much."""
    rows = map(
        _PlayLine,
        repeat(user_id, len(plays)),
        times,
        tracks,
        map(_MS_OF, plays),
        repeat(None, len(plays)),
        _cut(map(_PLATFORM_OF, plays), _PLATFORM_LENGTH),
        _cut(map(_REASON_START_OF, plays), _REASON_LENGTH),
        _cut(map(_REASON_END_OF, plays), _REASON_LENGTH),
        map(_SHUFFLE_OF, plays),
        map(_SKIPPED_OF, plays),
    )
    return _LINES.encode_lines(list(rows))


def _plain_plays(entries: list[_ExtendedEntry]) -> list[bool]:
    """Which ``entries`` are plain plays (see :func:`read_plays`)."""
    plain = [
        uri is not None
        and ms >= 0
        and _TRACK_URI.fullmatch(uri) is not None
        and _EXPORT_TIME.fullmatch(ts) is not None
        for uri, ms, ts in zip(
            map(_URI_OF, entries), map(_MS_OF, entries), map(_TS_OF, entries), strict=True
        )
    ]
    times = [entry.ts for entry, is_play in zip(entries, plain, strict=True) if is_play]
    try:
        deque(map(datetime.fromisoformat, times), maxlen=0)  # real dates and times of day
    except ValueError:
        plain = [
            is_play and _is_time(entry.ts) for entry, is_play in zip(entries, plain, strict=True)
        ]
    return plain


def _is_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _cut(values: Iterable[str | None], length: int) -> list[str | None]:
    """Texts cut to ``length`` characters, an empty one as ``None``."""
    return [value[:length] if value else None for value in values]


def _line_ends(lines: bytes) -> array[int]:
    """Where each of ``lines`` (JSON lines, each ending in a line break) ends."""
    return array("q", map(add, accumulate(map(len, lines.split(b"\n")[:-1])), count(1)))


def _start(ends: array[int], line: int) -> int:
    """Where line number ``line`` (from 0) of lines ending at ``ends`` starts."""
    return ends[line - 1] if line else 0


def _ends(plays: _Plays) -> array[int]:
    """Where each of the plays' lines ends (worked out here for a file of plays only)."""
    return plays.ends if plays.ends is not None else _line_ends(plays.lines)


def _lines(plays: _Plays, at: int, end: int) -> bytes:
    """The lines of plays ``at`` to ``end``."""
    if (at, end) == (0, len(plays.records)):
        return plays.lines
    ends = _ends(plays)
    return plays.lines[_start(ends, at) : ends[end - 1]]


def _first_names(plays: _Plays, first: int) -> tuple[str | None, str | None, str | None]:
    """The names the entry of the tracks' first play number ``first`` (from 0) gives."""
    ends = plays.first_name_ends
    return _NAMES.decode(plays.first_names[_start(ends, first) : ends[first]])


class StreamingHistoryFormat(SourceFormat):
    """Basic and extended streaming history exports into listening events."""

    name = "spotify-history"
    option_names = frozenset({"user_id", "display_name"})
    loader = "spotify"
    tables = frozenset({"users", "artists", "albums", "tracks", "listening_events"})
    derived_modes: ClassVar[Mapping[str, TableMode]] = _DERIVED
    placeholder_tables: ClassVar[frozenset[str]] = frozenset({"tracks"})

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        #: Entries read but not loaded, by reason.
        self.skipped = SkipCounts()
        #: Tracks this reader staged (all of them in the sink's tracks, which another
        #: format may have staged more of): most tracks an export file names.
        self._tracks: set[str] = set()
        #: The listener, once checked and staged (the options do not change).
        self._listener: str | None = None
        #: The plays (track, length) of the basic export's entries per listener and
        #: minute, in file order: the n-th took the minute's n-th free second.
        self._minute_plays: dict[tuple[str, datetime], list[tuple[str, int | None]]] = {}

    @classmethod
    def sniff(cls, document: Any) -> bool:
        return isinstance(document, dict) and (
            ("ts" in document and "ms_played" in document)
            or ("endTime" in document and "msPlayed" in document)
        )

    @classmethod
    async def placeholders(
        cls, session: TenantSession, table: str, keys: Sequence[tuple[Any, ...]]
    ) -> set[tuple[Any, ...]]:
        """The tracks of ``keys`` the tenant holds as a history staged them: by an
        artist whose id is derived from its name, which no real track's artist has."""
        tracks = session.metadata.tables.get(f"{TENANT_SCHEMA}.{table}")
        artists = session.metadata.tables.get(f"{TENANT_SCHEMA}.artists")
        if table != "tracks" or tracks is None or artists is None:
            return set()
        found: set[tuple[Any, ...]] = set()
        for at in range(0, len(keys), _KEYS_PER_QUERY):
            chunk = [key[0] for key in keys[at : at + _KEYS_PER_QUERY]]
            query = (
                select(tracks.c.track_id, artists.c.artist_id, artists.c.name)
                .join_from(tracks, artists, tracks.c.artist_id == artists.c.artist_id)
                .where(tracks.c.track_id.in_(chunk))
            )
            result = await session.connection.execute(query)
            found.update(
                (track,) for track, artist, name in result if artist == derived_id("artist", name)
            )
        return found

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

    def read_ahead(self, file: SourceFile) -> ReadAhead | None:
        user_id = self.options.get("user_id")
        if file.container != "json" or not isinstance(user_id, str):
            return None
        # Only what reading needs travels (options may hold anything).
        return ReadAhead(read_plays, (replace(file, options={}), user_id))

    def stage_file(self, file: SourceFile, index: int, sink: RowSink, ahead: Any = None) -> bool:
        """An extended export file read whole (:func:`read_plays`, in a parse worker or
        here): one typed decode instead of a generic JSON object and a :class:`Fields`
        per entry, and its plays staged as the JSON lines it encoded, a run at a time.

        Plays at a time as the export writes it are staged so; any other entry (an
        episode, an unusual time, a refusal) goes through :meth:`normalize`, in file
        order (:func:`stage_document`: a lenient load sets a refused one aside, and
        journals nothing for the plays). A file with any entry not typed as the export
        types it (a basic export, a value of the wrong type) is declined.
        """
        job = self.read_ahead(file)
        plays = ahead if ahead is not None or job is None else read_plays(*job.args)
        if not isinstance(plays, _Plays):  # declined, here or by the worker
            return False
        at = first = 0
        for other in [*sorted(plays.others), plays.entries + 1]:
            end = bisect_left(plays.records, other)
            first = self._stage_plays(plays, at, end, first, index, sink)
            at = end
            if other <= plays.entries:
                sink.at_record(index, other)
                stage_document(self, plays.others[other], sink, other)
        if plays.entries:
            sink.at_record(index, plays.entries)  # where reading entry by entry ends
        return True

    def _stage_plays(
        self, plays: _Plays, at: int, end: int, first: int, index: int, sink: RowSink
    ) -> int:
        """Stage plays ``at`` to ``end`` of ``plays`` (of file ``index``) as
        :meth:`_extended` would one by one: the listener and the tracks first played
        among them before their lines; a play at a time the listener already played at
        is counted as a duplicate. Returns the first of the tracks' first plays not
        looked at yet."""
        if at == end:
            return first
        if self._listener is None:
            sink.at_record(index, plays.records[at])
            self._user(sink)
        if self._listener != plays.user_id:
            raise AssertionError("plays read ahead for another listener")
        stop = bisect_right(plays.first_records, plays.records[end - 1], lo=first)
        fresh = set(plays.first_tracks[first:stop]).difference(self._tracks)
        if fresh:
            merged = sink.merged_keys("tracks")
            tracks = enumerate(plays.first_tracks[first:stop], first)
            for play in [p for p, t in tracks if t in fresh and (t,) not in merged]:
                sink.at_record(index, plays.first_records[play])
                self._track(sink, plays.first_tracks[play], *_first_names(plays, play))
        self._stage_lines(plays, at, end, index, sink)
        return stop

    def _stage_lines(self, plays: _Plays, at: int, end: int, index: int, sink: RowSink) -> None:
        """Stage the lines of plays ``at`` to ``end``, but for the plays at a time the
        listener already played at (or that an earlier play among them has), which are
        counted as duplicates."""
        times = plays.times[at:end]
        new = set(times)
        played = sink.taken("listening_events", plays.user_id)
        before = played & new
        repeated = (
            {t for t, n in Counter(times).items() if n > 1} if len(new) < len(times) else set()
        )
        played |= new
        if not before and not repeated:
            sink.add_lines(
                "listening_events",
                _lines(plays, at, end),
                file_index=index,
                records=plays.records[at:end],
            )
            return
        ends = _ends(plays)
        # Few plays are repeats: look at those only, keeping the first of each new time.
        dropped, taken = before | repeated, set[str]()
        kept, records, run = bytearray(), array("q"), at
        for play in (at + i for i, t in enumerate(times) if t in dropped):
            if plays.times[play] not in before and plays.times[play] not in taken:
                taken.add(plays.times[play])
                continue
            self.skipped["duplicate_play"] += 1
            kept += plays.lines[_start(ends, run) : _start(ends, play)]
            records.extend(plays.records[run:play])
            run = play + 1
        kept += plays.lines[_start(ends, run) : ends[end - 1]]
        records.extend(plays.records[run:end])
        sink.add_lines("listening_events", bytes(kept), file_index=index, records=records)

    def implied(self, document: Any) -> Mapping[str, Any]:
        """Every entry is a play of the listener the options name."""
        del document
        user_id = self.options.get("user_id")
        return {"user_id": user_id} if isinstance(user_id, str) else {}

    def finish(self, sink: RowSink) -> None:
        del sink
        self.skipped.report(self.name)

    def record_table(self, document: Any) -> str | None:
        del document
        return "listening_events"

    def _user(self, sink: RowSink) -> str:
        if self._listener is None:
            self._listener = listener_row(self.options, sink, format_name=self.name)
            sink.on_undo(self._forget_listener)
        return self._listener

    def _forget_listener(self) -> None:
        """The listener's row was taken back with the entry that staged it."""
        self._listener = None

    def _basic(self, entry: Fields, sink: RowSink) -> None:
        user_id = self._user(sink)
        end = entry.text("endTime", required=True)
        assert end is not None
        try:
            minute = datetime.strptime(end.strip(), _BASIC_TIME).replace(tzinfo=UTC)
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
                placeholder=True,
            )
        played_at = self._basic_time(sink, user_id, minute, (track_id, ms_played))
        if played_at is None:
            self.skipped["duplicate_play"] += 1
            return
        row = {"user_id": user_id, "played_at": played_at, "track_id": track_id}
        sink.add("listening_events", {**row, "ms_played": ms_played})

    def _basic_time(
        self, sink: RowSink, user_id: str, minute: datetime, play: tuple[str, int | None]
    ) -> str | None:
        """The ``played_at`` of a basic entry's play ending in ``minute``: the first of
        the minute's seconds no play of the listener took yet, in file order (the
        export gives minutes only: skips end several plays a minute). ``None``: a
        repeat of a play this minute had (same track and length), or a minute full."""
        plays = self._minute_plays.setdefault((user_id, minute), [])
        if play in plays:
            return None
        for second in range(60):
            played_at = iso_utc(minute + timedelta(seconds=second))
            if sink.take("listening_events", user_id, played_at):
                plays.append(play)
                sink.on_undo(partial(plays.remove, play))
                return played_at
        return None

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
            self._track(
                sink,
                ref.id,
                entry.text("master_metadata_track_name"),
                entry.text("master_metadata_album_artist_name"),
                entry.text("master_metadata_album_album_name"),
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

    def _track(
        self, sink: RowSink, track_id: str, name: str | None, artist: str | None, album: str | None
    ) -> None:
        """Stage a track an extended entry names, with its artist and album."""
        self._tracks.add(track_id)
        sink.on_undo(partial(self._tracks.discard, track_id))
        artist = artist or _UNKNOWN_ARTIST
        artist_id = self._artist(sink, artist)
        sink.merge(
            "tracks",
            {
                "track_id": track_id,
                "name": name or _UNKNOWN_TRACK,
                "album_id": self._album(sink, artist_id, artist, album),
                "artist_id": artist_id,
            },
            authoritative=False,
            placeholder=True,
        )

    @staticmethod
    def _artist(sink: RowSink, name: str) -> str:
        artist_id = derived_id("artist", name)
        sink.merge(
            "artists", {"artist_id": artist_id, "name": name}, authoritative=False, placeholder=True
        )
        return artist_id

    @staticmethod
    def _album(sink: RowSink, artist_id: str, artist: str, name: str | None) -> str:
        album_id = derived_id("album", artist, name or "")
        sink.merge(
            "albums",
            {"album_id": album_id, "name": name or UNKNOWN_ALBUM, "artist_id": artist_id},
            authoritative=False,
            placeholder=True,
        )
        return album_id

    def _play(self, sink: RowSink, row: dict[str, Any]) -> None:
        if self._new_play(sink, row):
            sink.add("listening_events", row)

    def _new_play(self, sink: RowSink, row: dict[str, Any]) -> bool:
        """Whether ``row`` is the user's first play at its time in the load, by any
        format (a repeat is counted)."""
        if not sink.take("listening_events", row["user_id"], row["played_at"]):
            self.skipped["duplicate_play"] += 1
            return False
        return True
