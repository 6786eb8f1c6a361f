"""Format ``spotify-api``: Spotify Web API objects and responses, as the API returns them.

Documents (one JSON object per file, a top-level array of them, or JSON Lines) are:

- an object with a ``type``: ``track``, ``artist``, ``album`` (simplified or full, with
  its ``tracks`` page), ``playlist`` (with its page of playlist items) or
  ``audio_features``;
- a response wrapping them: ``{"tracks": [...]}``, ``{"artists": [...]}``,
  ``{"albums": [...]}``, ``{"audio_features": [...]}`` ("get several ..."; ``null``
  for ids the API did not find), the same keys holding a page (search), and
  ``{"items": [...]}`` pages: recently played (``track``, ``played_at``,
  ``context``), top items (tracks or artists), saved tracks or playlist items
  (``added_at``, ``track``), or the user's playlists.

Both the classic shape and the one of Spotify's February 2026 changes are read: a
playlist's page of entries under ``tracks`` or ``items``, an entry's track under
``track`` or ``item``; fields that changes removed (``popularity``, ``followers``,
``available_markets``...) simply become NULL.

Mapping decisions:

- Nested objects go to their tables once per key (``RowSink.merge``): the same artist
  in a thousand tracks is one row; a full object completes what a simplified one
  left NULL. ``tracks.artist_id`` is the track's first artist, ``albums.artist_id``
  the album's first artist (the track's first artist when an album lists none). An
  album's ``release_date`` of ``"0000"`` (unknown), a ``total_tracks`` or
  ``duration_ms`` of 0 become NULL; ``album_type`` is lower-cased; an ISRC loses
  dashes and spaces and is upper-cased.
- A playlist becomes a ``playlists`` row (followers, snapshot_id, collaborative,
  public, description; ``created_at`` NULL: the API does not say) and one
  ``playlist_tracks`` row per entry, ``position`` = the entry's index in its page plus
  the page's ``offset`` (skipped entries leave their position unused).
  ``added_at`` of ``1970-01-01T00:00:00Z`` (the API's "unknown" for old playlists)
  becomes NULL. The owner and each ``added_by`` user become ``users`` rows
  (``display_name`` from the object, else the id; no e-mail).
- A playlist's page that is its whole list (``offset`` 0, ``next`` null, ``total`` the
  number of its items) leaves the playlist with the tracks it gives alone: the positions
  the tenant holds past them are deleted after the load (recorded as a purge). A
  playlist the load gives no whole page of keeps its tracks, and the positions any
  other page of it in the load gives stay.
- A simplified object (an artist or album named inside a track, a track in an
  album's page, a playlist in a list of playlists) is never written over the full
  row: within a load the full object wins; a table that only got simplified objects
  in a load is written ``insert_missing`` (new keys inserted, existing rows left as
  they are), so a later playlist file does not erase the genres, popularity or label
  an earlier "several artists/albums" file loaded. A streaming history's placeholder
  track is replaced all the same, by a simplified track as by a full one.
- ``users`` rows are only ever inserted when the tenant lacks them (``insert_missing``):
  a Spotify object names a user but says nothing of the account the tenant keeps.
- A standalone page of playlist items is loaded into ``playlist_tracks`` only when
  ``options["playlist_id"]`` names its playlist (which must exist; a whole-list page
  prunes it as above); otherwise (saved tracks look the same) only its tracks go to
  the catalogue.
- Recently played items become ``listening_events`` of ``options["user_id"]`` (required
  for them; the user is created from ``user_id`` and ``display_name`` when missing).
  The API gives no play length, so ``ms_played`` is the track's ``duration_ms``.
  ``context_uri`` is kept for playlist/album/artist/show contexts; a "liked songs"
  context (``spotify:user:<u>:collection``), which the column cannot hold, becomes
  NULL. A second play by the same user at the same ``played_at`` (the table's key) is
  skipped as a duplicate: the first one of the load is kept, whichever format read it
  (a streaming-history export of the same listener, say).
- Top items only feed the catalogue.
- Local files (``is_local`` true), unavailable tracks (a ``null`` track or id, a
  ``null`` in a "several" response) and episodes are skipped, counted in
  :attr:`SpotifyApiFormat.skipped` and logged.

An object of the wrong ``type`` where another is expected (an album in
``{"tracks": [...]}``), a bad id or URI, or a missing required field is a
:class:`~tenancy_fixtures.errors.RecordError` naming the file, the document and the
field's path; nothing is written (a lenient load sets the document aside, with what
it staged, and loads the rest).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, ClassVar

from sqlalchemy import Float, Integer

from tenancy_fixtures.loading.data_loader import TableMode
from tenancy_fixtures.loading.listed_links import ListedLinks
from tenancy_fixtures.loading.sources import Origin, RowSink, SourceFormat
from tenancy_fixtures.spotify.formats.values import Fields, SkipCounts, listener_row
from tenancy_fixtures.spotify.schema import spotify_metadata
from tenancy_fixtures.spotify.spotify_ids import parse_uri
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.store.base import TENANT_SCHEMA, TenantSession

_FEATURES = spotify_metadata().tables[f"{TENANT_SCHEMA}.audio_features"]
#: The audio-features measures, as the schema declares them: numbers, then integers.
_FEATURE_NUMBERS = tuple(str(c.name) for c in _FEATURES.columns if isinstance(c.type, Float))
_FEATURE_INTEGERS = tuple(str(c.name) for c in _FEATURES.columns if isinstance(c.type, Integer))

__all__ = ["SpotifyApiFormat"]

_RULE = "format:spotify_object"
#: Object types a document may have at the top level or inside a response.
_OBJECT_TYPES = frozenset({"track", "artist", "album", "playlist", "audio_features"})
#: Types of items that are not music: skipped and counted as episodes.
_SPOKEN_TYPES = frozenset({"episode", "show", "audiobook", "chapter"})
#: Keys of "get several" responses (and of search responses, holding a page).
_WRAPPERS = {"tracks": "track", "artists": "artist", "albums": "album"}
#: Contexts whose URIs the ``listening_events.context_uri`` column accepts.
_CONTEXT_KINDS = frozenset({"playlist", "album", "artist", "show", "track", "episode"})
_UNKNOWN_ADDED_AT = "1970-01-01T00:00:00+00:00"
# Fields only a full object has: a simplified one (an artist named by a track, a
# track in an album's page...) must not overwrite the full row a tenant may hold.
_FULL_ARTIST = ("genres", "popularity", "followers")
_FULL_ALBUM = ("label", "tracks", "copyrights", "genres", "popularity")
_FULL_TRACK = ("album",)
_FULL_PLAYLIST = ("followers",)
_UNKNOWN_RELEASE = "0000"


def _looks_like_object(value: Any, kinds: frozenset[str]) -> bool:
    return isinstance(value, dict) and _type_of(value) in kinds


def _type_of(document: dict[str, Any]) -> str | None:
    """The document's ``type`` if it is text (hostile input may put a list there)."""
    kind = document.get("type")
    return kind if isinstance(kind, str) else None


def _is_full(obj: Fields, markers: tuple[str, ...]) -> bool:
    return any(marker in obj.value for marker in markers)


def _is_entry(value: Any) -> bool:
    """Whether a page's item is an entry of a playlist or saved tracks (or ``null``)."""
    if value is None:
        return True
    return (
        isinstance(value, dict)
        and "added_at" in value
        and "played_at" not in value
        and ("track" in value or "item" in value)
    )


def _first(values: Any) -> Any:
    if isinstance(values, dict):
        values = values.get("items")
    if isinstance(values, list):
        return next((v for v in values if v is not None), None)
    return None


#: The table an object of each type fills.
_TABLE_OF = {
    "track": "tracks",
    "artist": "artists",
    "album": "albums",
    "playlist": "playlists",
    "audio_features": "audio_features",
}


class SpotifyApiFormat(SourceFormat):
    """Spotify Web API objects and responses into the catalogue, playlists and plays."""

    name = "spotify-api"
    option_names = frozenset({"playlist_id", "user_id", "display_name"})
    loader = "spotify"
    tables = frozenset(
        {
            "users",
            "artists",
            "albums",
            "tracks",
            "audio_features",
            "playlists",
            "playlist_tracks",
            "listening_events",
        }
    )
    derived_modes: ClassVar[Mapping[str, TableMode]] = {
        "users": "insert_missing",
        "artists": "insert_missing",
        "albums": "insert_missing",
        "tracks": "insert_missing",
        "playlists": "insert_missing",
    }

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        #: Items read but not loaded, by reason.
        self.skipped = SkipCounts()
        #: The positions each playlist's pages give: a whole list's others go after the load.
        self.links = ListedLinks()

    @classmethod
    def sniff(cls, document: Any) -> bool:
        if not isinstance(document, dict):
            return False
        if _type_of(document) in _OBJECT_TYPES:
            return "id" in document
        for key, kind in (*_WRAPPERS.items(), ("audio_features", "audio_features")):
            if key in document:
                return _looks_like_object(_first(document[key]), frozenset({kind}))
        items = document.get("items")
        if not isinstance(items, list):
            return False
        first = _first(items)
        if not isinstance(first, dict):
            return False
        if "played_at" in first or "added_at" in first:
            return isinstance(first.get("track") or first.get("item"), dict)
        return _type_of(first) in _OBJECT_TYPES

    def normalize(self, document: Any, sink: RowSink) -> None:
        doc = Fields(document, sink, rule=_RULE)
        kind = doc.text("type")
        if kind is not None:
            self._object(doc, sink, kind)
            return
        handled = False
        for key, expected in _WRAPPERS.items():
            if key in doc.value:
                self._each(doc, sink, key, expected)
                handled = True
        if "audio_features" in doc.value:
            for index, value in enumerate(doc.items("audio_features")):
                if value is None:
                    self.skipped["unavailable"] += 1
                    continue
                self._audio_features(doc.element("audio_features", index, value), sink)
            handled = True
        if isinstance(doc.raw("playlists"), dict):
            self._each(doc, sink, "playlists", "playlist")
            handled = True
        if handled:
            return
        if "items" in doc.value:
            self._page(doc, sink)
            return
        raise doc.refuse(
            "not a Spotify Web API object (no 'type') or response "
            "('tracks', 'artists', 'albums', 'audio_features', 'playlists' or 'items')",
            None,
        )

    def finish(self, sink: RowSink) -> None:
        del sink
        self.skipped.report(self.name)

    def rows_refused(self, origins: Collection[Origin]) -> None:
        self.links.forget(origins)

    async def after_load(self, session: TenantSession, files: Sequence[Any]) -> None:
        """Delete the tracks of the load's playlists that a whole-list page of theirs no
        longer gives (:mod:`~tenancy_fixtures.loading.listed_links`)."""
        del files
        await self.links.prune(session, [("playlist_tracks", "playlist_id", "position", tuple)])

    def removed(self) -> list[control_plane.TableChecksum]:
        return self.links.purged

    def implied(self, document: Any) -> Mapping[str, Any]:
        """A page of plays holds the plays of the listener the options name."""
        user_id = self.options.get("user_id")
        if self.record_table(document) != "listening_events" or not isinstance(user_id, str):
            return {}
        return {"user_id": user_id}

    def record_table(self, document: Any) -> str | None:
        """The table of an object's type; a page of plays fills ``listening_events``;
        another response, many tables (``None``)."""
        if not isinstance(document, dict):
            return None
        kind = _type_of(document)
        if kind is not None:
            return _TABLE_OF.get(kind)
        first = _first(document.get("items"))
        return "listening_events" if isinstance(first, dict) and "played_at" in first else None

    # -- dispatch -------------------------------------------------------------------

    def _object(self, obj: Fields, sink: RowSink, kind: str) -> None:
        if kind == "track":
            self._track(obj, sink)
        elif kind == "artist":
            self._artist(obj, sink)
        elif kind == "album":
            self._album(obj, sink)
        elif kind == "playlist":
            self._playlist(obj, sink)
        elif kind == "audio_features":
            self._audio_features(obj, sink)
        elif kind in _SPOKEN_TYPES:
            self.skipped["episode"] += 1
        else:
            raise obj.refuse(
                f"unsupported Spotify object type {kind!r}; expected one of "
                f"{', '.join(sorted(_OBJECT_TYPES))}",
                "type",
            )

    def _each(self, doc: Fields, sink: RowSink, key: str, kind: str) -> None:
        """A "get several" response (an array) or a search response (a page)."""
        holder, name = doc, key
        if isinstance(doc.raw(key), dict):
            page = doc.child(key)
            assert page is not None
            holder, name = page, "items"
        for index, value in enumerate(holder.items(name)):
            if value is None:
                self.skipped["unavailable"] += 1
                continue
            obj = holder.element(name, index, value)
            obj.expect_type(kind)
            self._object(obj, sink, kind)

    def _page(self, doc: Fields, sink: RowSink) -> None:
        """An ``items`` page: recently played, top items, saved or playlist items."""
        offset = doc.integer("offset", minimum=0) or 0
        playlist_id = self.options.get("playlist_id")
        if isinstance(playlist_id, str) and all(map(_is_entry, doc.items("items"))):
            self._playlist_page(doc, sink, playlist_id)
            return
        for index, value in enumerate(doc.items("items")):
            if value is None:
                self.skipped["unavailable"] += 1
                continue
            item = doc.element("items", index, value)
            if "played_at" in item.value:
                self._played(item, sink)
            elif "added_at" in item.value and ("track" in item.value or "item" in item.value):
                if isinstance(playlist_id, str):
                    self._entry(item, sink, playlist_id, offset + index)
                else:
                    self._entry_track(item, sink)
            else:
                kind = item.text("type")
                if kind is None:
                    raise item.refuse("an item needs a 'type', 'played_at' or 'added_at'", None)
                self._object(item, sink, kind)

    # -- catalogue ------------------------------------------------------------------

    def _artist(self, obj: Fields, sink: RowSink) -> str:
        obj.expect_type("artist")
        artist_id = obj.spotify_id("id", "artist", required=True)
        assert artist_id is not None
        genres = obj.items("genres")
        if any(not isinstance(g, str) for g in genres):
            raise obj.refuse("genres must be strings", "genres")
        followers = obj.child("followers")
        sink.merge(
            "artists",
            {
                "artist_id": artist_id,
                "name": obj.text("name", required=True),
                "genres": genres if "genres" in obj.value else None,
                "popularity": obj.integer("popularity"),
                "followers": followers.integer("total") if followers else None,
            },
            authoritative=_is_full(obj, _FULL_ARTIST),
        )
        return artist_id

    def _artists(self, obj: Fields, sink: RowSink) -> list[str]:
        return [
            self._artist(obj.element("artists", i, a), sink)
            for i, a in enumerate(obj.items("artists"))
        ]

    def _album(self, obj: Fields, sink: RowSink, *, fallback_artist: str | None = None) -> str:
        obj.expect_type("album")
        album_id = obj.spotify_id("id", "album", required=True)
        assert album_id is not None
        artists = self._artists(obj, sink)
        artist_id = artists[0] if artists else fallback_artist
        if artist_id is None:
            raise obj.refuse("an album needs at least one artist", "artists")
        album_type = obj.text("album_type")
        release_date = obj.text("release_date")
        total_tracks = obj.integer("total_tracks", minimum=0)
        sink.merge(
            "albums",
            {
                "album_id": album_id,
                "name": obj.text("name", required=True),
                "album_type": album_type.lower() if album_type else None,
                "artist_id": artist_id,
                "release_date": None if release_date == _UNKNOWN_RELEASE else release_date,
                "release_date_precision": obj.text("release_date_precision"),
                "total_tracks": total_tracks or None,
                "label": obj.text("label"),
            },
            authoritative=_is_full(obj, _FULL_ALBUM),
        )
        page = obj.child("tracks")
        if page is not None:
            for index, value in enumerate(page.items("items")):
                if value is None:
                    self.skipped["unavailable"] += 1
                    continue
                self._track(page.element("items", index, value), sink, album_id=album_id)
        return album_id

    def _track(self, obj: Fields, sink: RowSink, *, album_id: str | None = None) -> str | None:
        """Stage a track with its album and artists; ``None`` when it is skipped."""
        obj.expect_type("track")
        if obj.boolean("is_local"):
            self.skipped["local"] += 1
            return None
        if not obj.has("id"):
            self.skipped["unavailable"] += 1
            return None
        track_id = obj.spotify_id("id", "track", required=True)
        assert track_id is not None
        artists = self._artists(obj, sink)
        if not artists:
            raise obj.refuse("a track needs at least one artist", "artists")
        album = obj.child("album")
        if album is not None:
            album_id = self._album(album, sink, fallback_artist=artists[0])
        if album_id is None:
            raise obj.refuse("a track needs its album", "album")
        external = obj.child("external_ids")
        isrc = external.text("isrc") if external else None
        sink.merge(
            "tracks",
            {
                "track_id": track_id,
                "name": obj.text("name", required=True),
                "album_id": album_id,
                "artist_id": artists[0],
                "duration_ms": obj.integer("duration_ms", minimum=0) or None,
                "explicit": obj.boolean("explicit"),
                "popularity": obj.integer("popularity"),
                "track_number": obj.integer("track_number"),
                "isrc": isrc.replace("-", "").replace(" ", "").upper() if isrc else None,
            },
            authoritative=_is_full(obj, _FULL_TRACK),
        )
        return track_id

    def _audio_features(self, obj: Fields, sink: RowSink) -> None:
        obj.expect_type("audio_features")
        if obj.has("id"):
            track_id = obj.spotify_id("id", "track")
        else:
            track_id = obj.spotify_id("uri", "track", required=True)
        row: dict[str, Any] = {"track_id": track_id}
        for name in _FEATURE_NUMBERS:
            row[name] = obj.number(name)
        for name in _FEATURE_INTEGERS:
            row[name] = obj.integer(name)
        sink.merge("audio_features", row)

    # -- playlists ------------------------------------------------------------------

    def _user(self, obj: Fields, sink: RowSink, *, required: bool) -> str | None:
        user_id = obj.text("id", required=required)
        if not user_id:
            return None
        name = obj.text("display_name")
        sink.merge(
            "users",
            {"user_id": user_id, "display_name": name or user_id},
            authoritative=False,
        )
        return user_id

    def _playlist(self, obj: Fields, sink: RowSink) -> None:
        obj.expect_type("playlist")
        playlist_id = obj.spotify_id("id", "playlist", required=True)
        assert playlist_id is not None
        owner = obj.child("owner", required=True)
        assert owner is not None
        followers = obj.child("followers")
        sink.merge(
            "playlists",
            {
                "playlist_id": playlist_id,
                "owner_id": self._user(owner, sink, required=True),
                "name": obj.text("name", required=True),
                "description": obj.text("description"),
                "public": obj.boolean("public"),
                "collaborative": obj.boolean("collaborative"),
                "followers": followers.integer("total") if followers else None,
                "snapshot_id": obj.text("snapshot_id"),
                "created_at": None,
            },
            authoritative=_is_full(obj, _FULL_PLAYLIST),
        )
        for key in ("items", "tracks"):
            if isinstance(obj.raw(key), dict):
                page = obj.child(key)
                assert page is not None
                self._playlist_page(page, sink, playlist_id)
                return

    def _playlist_page(self, page: Fields, sink: RowSink, playlist_id: str) -> None:
        """Stage a page of the playlist's entries; note the positions it gives, and
        whether they are the playlist's whole list (:meth:`after_load` prunes the rest)."""
        offset = page.integer("offset", minimum=0) or 0
        items = page.items("items")
        positions = set()
        for index, value in enumerate(items):
            if value is None:
                self.skipped["unavailable"] += 1
                continue
            entry = page.element("items", index, value)
            if self._entry(entry, sink, playlist_id, offset + index):
                positions.add(offset + index)
        self.links.keep("playlist_tracks", playlist_id, positions)
        whole = "next" in page.value and page.raw("next") is None
        if whole and offset == 0 and page.integer("total", minimum=0) == len(items):
            listing = self.links.list("playlist_tracks", playlist_id, positions, sink.origin())
            sink.on_undo(listing)

    def _entry_item(self, entry: Fields) -> Fields | None:
        """The track of a playlist or saved-track entry (``item`` since 2026)."""
        return entry.child("item") or entry.child("track")

    def _playable(self, entry: Fields) -> Fields | None:
        """The entry's track, or ``None`` (counted) for a local file, a missing track
        or an episode."""
        track = self._entry_item(entry)
        if entry.boolean("is_local") or (track is not None and track.boolean("is_local")):
            self.skipped["local"] += 1
            return None
        if track is None:
            self.skipped["unavailable"] += 1
            return None
        if track.text("type") in _SPOKEN_TYPES:
            self.skipped["episode"] += 1
            return None
        return track

    def _entry_track(self, entry: Fields, sink: RowSink) -> None:
        track = self._playable(entry)
        if track is not None:
            self._track(track, sink)

    def _entry(self, entry: Fields, sink: RowSink, playlist_id: str, position: int) -> bool:
        """Stage the playlist's entry at ``position``; whether it was (else skipped)."""
        track = self._playable(entry)
        if track is None:
            return False
        track_id = self._track(track, sink)
        if track_id is None:
            return False
        added_at = entry.timestamp("added_at")
        added_by = entry.child("added_by")
        sink.merge(
            "playlist_tracks",
            {
                "playlist_id": playlist_id,
                "position": position,
                "track_id": track_id,
                "added_by": self._user(added_by, sink, required=False) if added_by else None,
                "added_at": None if added_at == _UNKNOWN_ADDED_AT else added_at,
            },
        )
        return True

    # -- plays ----------------------------------------------------------------------

    def _played(self, item: Fields, sink: RowSink) -> None:
        user_id = listener_row(self.options, sink, format_name=f"{self.name} (recently played)")
        played_at = item.timestamp("played_at", required=True)
        assert played_at is not None
        track = self._playable(item)
        if track is None:
            return
        track_id = self._track(track, sink)
        if track_id is None:
            return
        if not sink.take("listening_events", user_id, played_at):
            self.skipped["duplicate_play"] += 1
            return
        sink.add(
            "listening_events",
            {
                "user_id": user_id,
                "played_at": played_at,
                "track_id": track_id,
                "ms_played": track.integer("duration_ms", minimum=0) or 0,
                "context_uri": self._context(item),
            },
        )

    def _context(self, item: Fields) -> str | None:
        context = item.child("context")
        uri = context.text("uri") if context else None
        if uri is None or context is None:
            return None
        try:
            ref = parse_uri(uri)
        except ValueError as exc:
            raise context.refuse(str(exc), "uri") from None
        if ref.kind not in _CONTEXT_KINDS:
            self.skipped["context_dropped"] += 1
            return None
        return f"spotify:{ref.kind}:{ref.id}"
