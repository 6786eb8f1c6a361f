"""What the tables of a generated fixture set refer to, recomputed from a row's index.

A later table of :mod:`tenancy_fixtures.spotify.generator` names rows of earlier ones
(a listening event its user, track and album; a workspace its members and shared
playlists). :class:`SetReferences` computes each such id and attribute from the seed
and the row's index (:class:`~tenancy_fixtures.spotify.indexed_streams.IndexedStream`)
instead of keeping the rows, so the generator's memory does not grow with the scale.

Albums and their tracks are laid out by
:class:`~tenancy_fixtures.spotify.album_layout.AlbumLayout`, so the album of any track
is found from its index alone.
"""

from __future__ import annotations

import random
from typing import NamedTuple

from tenancy_fixtures.spotify.album_layout import ALBUMS_PER_GROUP, TRACKS_PER_GROUP, AlbumLayout
from tenancy_fixtures.spotify.indexed_streams import IndexedStream

__all__ = ["Album", "Member", "Playlist", "SetReferences", "Shared", "Workspace"]

_DAY = 24 * 60 * 60


class Album(NamedTuple):
    album_id: str
    artist: int
    year: int
    album_type: str
    tracks: int
    #: Index of the album's first track.
    first_track: int


class Playlist(NamedTuple):
    playlist_id: str
    owner: int
    created: int
    collaborative: bool


class Member(NamedTuple):
    user: int
    role: str
    joined: int


class Shared(NamedTuple):
    playlist: int
    added_by: int
    added: int


class Workspace(NamedTuple):
    workspace_id: str
    created: int
    members: tuple[Member, ...]
    shared: tuple[Shared, ...]


class SetReferences:
    """Ids and attributes of the users, artists, albums, tracks, playlists and
    workspaces of a set of ``scale``, derived from ``seed`` and each row's index."""

    def __init__(self, seed: int, scale: int) -> None:
        self.users = 20 * scale
        self.artists = 10 * scale
        self.albums = ALBUMS_PER_GROUP * 5 * scale
        self.tracks = TRACKS_PER_GROUP * 5 * scale
        self.playlists = 10 * scale
        self.workspaces = 2 * scale
        self._user = IndexedStream(seed, "user")
        self._user_created = IndexedStream(seed, "user.created_at")
        self._artist = IndexedStream(seed, "artist")
        self._album = IndexedStream(seed, "album")
        self._album_traits = IndexedStream(seed, "album.traits")
        self._layout = AlbumLayout(IndexedStream(seed, "album.group"))
        self._track = IndexedStream(seed, "track")
        self._track_duration = IndexedStream(seed, "track.duration_ms")
        self._playlist = IndexedStream(seed, "playlist")
        self._playlist_owner = IndexedStream(seed, "playlist.owner")
        self._playlist_traits = IndexedStream(seed, "playlist.traits")
        self._workspace = IndexedStream(seed, "workspace")
        self._comment = IndexedStream(seed, "comment")
        self._event = IndexedStream(seed, "product_event")

    def user_id(self, user: int) -> str:
        return self._user.uuid4(user)

    def user_created(self, user: int) -> int:
        """Seconds after the set's base instant (within its first 120 days)."""
        return self._user_created.bits(user) % (120 * _DAY)

    def artist_id(self, artist: int) -> str:
        return self._artist.base62(artist)

    def album(self, album: int) -> Album:
        slot = self._layout.album(album)
        traits, artist = divmod(self._album_traits.bits(album), self.artists)
        return Album(
            self._album.base62(album),
            artist,
            1968 + traits % 58,
            slot.album_type,
            slot.tracks,
            slot.first_track,
        )

    def album_id(self, album: int) -> str:
        return self._album.base62(album)

    def album_of_track(self, track: int) -> int:
        return self._layout.album_of_track(track)

    def album_artist(self, album: int) -> int:
        return self._album_traits.bits(album) % self.artists

    def track_id(self, track: int) -> str:
        return self._track.base62(track)

    def track_duration(self, track: int) -> int:
        """Milliseconds, 90 s to 7 min."""
        return 90_000 + self._track_duration.bits(track) % 330_001

    def playlist_id(self, playlist: int) -> str:
        return self._playlist.base62(playlist)

    def playlist(self, playlist: int) -> Playlist:
        """Owned by a random user, created within 30 days of the owner; 10 % are
        collaborative."""
        owner = self._playlist_owner.bits(playlist) % self.users
        traits, since = divmod(self._playlist_traits.bits(playlist), 30 * _DAY)
        return Playlist(
            self._playlist.base62(playlist),
            owner,
            self.user_created(owner) + since,
            traits % 10 == 0,
        )

    def workspace(self, workspace: int) -> Workspace:
        """An owner and 2-4 editors or viewers who join later; 2-4 playlists shared by
        the owner or an editor."""
        rng = random.Random(self._workspace.bits(workspace))  # noqa: S311 - fixtures
        owner = rng.randrange(self.users)
        created = self.user_created(owner) + rng.randrange(14 * _DAY)
        others = [u for u in rng.sample(range(self.users), min(5, self.users)) if u != owner]
        members = [Member(owner, "owner", created)]
        for user in others[: rng.randint(2, 4)]:
            role = "editor" if rng.random() < 0.4 else "viewer"
            members.append(Member(user, role, created + rng.randrange(30 * _DAY)))
        adders = [m for m in members if m.role in ("owner", "editor")]
        shared = []
        for index in rng.sample(range(self.playlists), min(rng.randint(2, 4), self.playlists)):
            adder = rng.choice(adders)
            since = max(adder.joined, self.playlist(index).created)
            shared.append(Shared(index, adder.user, since + rng.randrange(10 * _DAY)))
        workspace_id = f"ws_{self._workspace.base62(workspace, 16)}"
        return Workspace(workspace_id, created, tuple(members), tuple(shared))

    def comment_id(self, comment: int) -> str:
        return f"cm_{self._comment.base62(comment, 16)}"

    def product_event_id(self, event: int) -> str:
        return self._event.uuid4(event)
