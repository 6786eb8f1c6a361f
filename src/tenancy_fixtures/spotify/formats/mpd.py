"""Format ``mpd``: slices of Spotify's Million Playlist Dataset (``mpd.slice.*.json``).

A slice is ``{"info": {...}, "playlists": [...]}``; its playlists are streamed one at a
time (``stream = "playlists.item"``), so a slice of any size is read in constant
memory apart from the catalogue keys seen. Each playlist has ``pid``, ``name``,
``collaborative`` (the strings ``"true"``/``"false"``), ``modified_at`` (epoch
seconds), ``num_followers``, an optional ``description`` and ``tracks`` of
``{pos, track_uri, track_name, artist_uri, artist_name, album_uri, album_name,
duration_ms}``; the counts (``num_tracks``, ``num_albums``, ``num_edits``...) are
derived values and are ignored. A file holding playlists as a JSON array or JSON
Lines reads the same way.

Mapping decisions:

- ``playlists.playlist_id`` is ``"mpd"`` followed by the ``pid`` zero-padded to 19
  digits (22 characters, like a Spotify id; ``pid`` 5 is ``mpd0000000000000000005``).
  The dataset has no owners: every playlist belongs to ``options["owner_id"]``
  (default ``"mpd"``, display name ``options["owner_name"]`` or "Million Playlist
  Dataset"), a ``users`` row inserted when the tenant lacks it. ``created_at`` is
  ``modified_at`` (the only time the dataset gives); ``followers`` is
  ``num_followers``; ``public`` is true (the dataset holds public playlists only).
  A playlist without a ``name`` (the challenge set has some) is named ``"mpd <pid>"``.
- ``playlist_tracks.position`` is ``pos`` (the index in ``tracks`` when missing);
  ``added_at`` and ``added_by`` are NULL.
- Tracks, albums and artists keep their real ids from the URIs, with the names and
  ``duration_ms`` the dataset gives (0 becomes NULL). ``albums.artist_id`` is the
  artist of the first track naming the album (the dataset has no album artist). As
  the dataset is a 2017 snapshot with a few fields per item, these catalogue rows are
  written ``insert_missing``: rows the tenant already has are left as they are, but
  for a streaming history's placeholder track, which the entry's track replaces.
- A playlist reloaded keeps the tracks its list now gives alone: the positions the
  tenant holds past them are deleted after the load (a playlist the load does not
  name keeps its tracks).
- A ``pid`` seen twice in one load is skipped after the first (counted as
  ``duplicate_playlist``), as are local files (``spotify:local:...``, counted).

A missing ``pid``, a bad URI, a repeated ``pos`` within a playlist, a value of the
wrong type, or a number its column cannot hold (``num_followers`` past 64 bits, ``pos``
or ``duration_ms`` past 32) is a :class:`~tenancy_fixtures.errors.RecordError` naming
the file, the playlist's place in the slice and the field; nothing is written (a
lenient load sets the playlist aside, with what it staged, and loads the rest).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from tenancy_fixtures.loading.data_loader import TableMode
from tenancy_fixtures.loading.listed_links import ListedLinks
from tenancy_fixtures.loading.sources import Origin, RowSink, SourceFormat
from tenancy_fixtures.spotify.formats.values import Fields, SkipCounts, iso_utc
from tenancy_fixtures.spotify.spotify_ids import parse_uri
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.store.base import TenantSession

__all__ = ["DEFAULT_OWNER", "MillionPlaylistFormat", "mpd_playlist_id"]

_RULE = "format:mpd"
#: The user owning MPD playlists unless ``options["owner_id"]`` names another.
DEFAULT_OWNER = "mpd"
_DEFAULT_OWNER_NAME = "Million Playlist Dataset"
_PID_DIGITS = 19
#: The last epoch second a timestamp holds (9999-12-31 23:59:59 UTC).
_LAST_SECOND = 253_402_300_799
_USER_ID_LENGTH = 64
#: The largest values the columns of ``num_followers`` (BIGINT), ``pos`` and
#: ``duration_ms`` (INTEGER) hold.
_BIGINT_MAX = 2**63 - 1
_INTEGER_MAX = 2**31 - 1


def mpd_playlist_id(pid: int) -> str:
    """The ``playlists.playlist_id`` of MPD playlist ``pid``."""
    if pid < 0 or pid >= 10**_PID_DIGITS:
        raise ValueError(f"pid must be between 0 and {10**_PID_DIGITS - 1}, found {pid}")
    return "mpd" + str(pid).zfill(_PID_DIGITS)


class MillionPlaylistFormat(SourceFormat):
    """Million Playlist Dataset slices into playlists, their tracks and the catalogue."""

    name = "mpd"
    option_names = frozenset({"owner_id", "owner_name"})
    loader = "spotify"
    tables = frozenset({"users", "artists", "albums", "tracks", "playlists", "playlist_tracks"})
    stream = "playlists.item"
    derived_modes: ClassVar[Mapping[str, TableMode]] = {
        "users": "insert_missing",
        "artists": "insert_missing",
        "albums": "insert_missing",
        "tracks": "insert_missing",
    }

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        #: Playlists and tracks read but not loaded, by reason.
        self.skipped = SkipCounts()
        #: The positions each playlist lists: the tenant's others go after the load.
        self.links = ListedLinks()
        self._owner: str | None = None

    @classmethod
    def sniff(cls, document: Any) -> bool:
        return (
            isinstance(document, dict)
            and "pid" in document
            and isinstance(document.get("tracks"), list)
            and "type" not in document
        )

    def normalize(self, document: Any, sink: RowSink) -> None:
        playlist = Fields(document, sink, rule=_RULE)
        pid = playlist.integer("pid", required=True, minimum=0)
        assert pid is not None
        try:
            playlist_id = mpd_playlist_id(pid)
        except ValueError as exc:
            raise playlist.refuse(str(exc), "pid") from None
        if sink.seen("playlists", playlist_id):
            self.skipped["duplicate_playlist"] += 1
            return
        modified_at = playlist.integer("modified_at", minimum=0, maximum=_LAST_SECOND)
        sink.merge(
            "playlists",
            {
                "playlist_id": playlist_id,
                "owner_id": self._owner_row(sink),
                "name": playlist.text("name") or f"mpd {pid}",
                "description": playlist.text("description"),
                "public": True,
                "collaborative": playlist.boolean("collaborative", strings=True),
                "followers": playlist.integer("num_followers", minimum=0, maximum=_BIGINT_MAX),
                "snapshot_id": None,
                "created_at": (
                    iso_utc(datetime.fromtimestamp(modified_at, UTC))
                    if modified_at is not None
                    else None
                ),
            },
        )
        positions: set[int] = set()
        staged = [
            self._entry(
                playlist.element("tracks", index, value), sink, playlist_id, index, positions
            )
            for index, value in enumerate(playlist.items("tracks", required=True))
        ]
        listed = (position for position in staged if position is not None)
        sink.on_undo(self.links.list("playlist_tracks", playlist_id, listed, sink.origin()))

    def rows_refused(self, origins: Collection[Origin]) -> None:
        self.links.forget(origins)

    async def after_load(self, session: TenantSession, files: Sequence[Any]) -> None:
        """Delete the tracks of the load's playlists that their lists no longer give: a
        slice lists a playlist's tracks whole (:mod:`~tenancy_fixtures.loading.listed_links`)."""
        del files
        await self.links.prune(session, [("playlist_tracks", "playlist_id", "position", tuple)])

    def removed(self) -> list[control_plane.TableChecksum]:
        return self.links.purged

    def finish(self, sink: RowSink) -> None:
        del sink
        self.skipped.report(self.name)

    def record_table(self, document: Any) -> str | None:
        del document
        return "playlists"

    def implied(self, document: Any) -> Mapping[str, Any]:
        """Every playlist is the owner's the options name."""
        del document
        owner = self.options.get("owner_id", DEFAULT_OWNER)
        return {"owner_id": owner} if isinstance(owner, str) else {}

    def _forget_owner(self) -> None:
        """The owner's row was taken back with the playlist that staged it."""
        self._owner = None

    def _owner_row(self, sink: RowSink) -> str:
        if self._owner is not None:
            return self._owner
        owner = self.options.get("owner_id", DEFAULT_OWNER)
        if not isinstance(owner, str) or not owner.strip() or len(owner) > _USER_ID_LENGTH:
            raise sink.refuse(
                f"options 'owner_id' must be a user id of 1 to {_USER_ID_LENGTH} characters, "
                f"found {owner!r:.40}",
                column="owner_id",
                rule="option:owner_id",
            )
        name = self.options.get("owner_name")
        if not isinstance(name, str) or not name.strip():
            name = _DEFAULT_OWNER_NAME if owner == DEFAULT_OWNER else owner
        sink.merge("users", {"user_id": owner, "display_name": name}, authoritative=False)
        self._owner = owner
        sink.on_undo(self._forget_owner)
        return owner

    @staticmethod
    def _catalogue(track: Fields, sink: RowSink, track_id: str) -> None:
        """Stage the track's catalogue rows (once per track of the load)."""
        artist_id = track.spotify_id("artist_uri", "artist", required=True)
        album_id = track.spotify_id("album_uri", "album", required=True)
        if not sink.seen("tracks", track_id):
            sink.merge(
                "artists",
                {"artist_id": artist_id, "name": track.text("artist_name", required=True)},
                authoritative=False,
            )
            sink.merge(
                "albums",
                {
                    "album_id": album_id,
                    "name": track.text("album_name", required=True),
                    "artist_id": artist_id,
                },
                authoritative=False,
            )
            name = track.text("track_name", required=True)
            duration_ms = track.integer("duration_ms", minimum=0, maximum=_INTEGER_MAX)
            sink.merge(
                "tracks",
                {
                    "track_id": track_id,
                    "name": name,
                    "album_id": album_id,
                    "artist_id": artist_id,
                    "duration_ms": duration_ms or None,
                },
                authoritative=False,
            )

    def _entry(
        self, track: Fields, sink: RowSink, playlist_id: str, index: int, positions: set[int]
    ) -> int | None:
        """Stage the playlist's track at ``index``; its position (``None``: a local
        file, skipped)."""
        position = track.integer("pos", minimum=0, maximum=_INTEGER_MAX)
        if position is None:
            position = index
        if position in positions:
            raise track.refuse(f"position {position} is given twice in this playlist", "pos")
        positions.add(position)
        uri = track.text("track_uri", required=True)
        try:
            ref = parse_uri(uri)
        except ValueError as exc:
            raise track.refuse(str(exc), "track_uri") from None
        if ref.kind == "local":
            self.skipped["local"] += 1
            return None
        if ref.kind != "track":
            raise track.refuse(f"expected a track URI, found a {ref.kind} URI", "track_uri")
        self._catalogue(track, sink, ref.id)
        sink.add(
            "playlist_tracks",
            {
                "playlist_id": playlist_id,
                "position": position,
                "track_id": ref.id,
                "added_by": None,
                "added_at": None,
            },
        )
        return position
