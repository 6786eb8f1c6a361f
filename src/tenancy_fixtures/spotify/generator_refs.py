"""What the tables of a generated fixture set refer to, recomputed from a row's index.

A later table of :mod:`tenancy_fixtures.spotify.generator` names rows of earlier ones
(a listening event its user, track and album; a workspace its members and shared
playlists). :class:`SetReferences` computes each such id and attribute from the seed
and the row's index (:class:`~tenancy_fixtures.spotify.indexed_streams.IndexedStream`)
instead of keeping the rows, so the generator's memory does not grow with the scale.

Albums come in groups of four that share twenty tracks (five per album on average):
album ``4g + k`` holds a run of tracks ``20g`` to ``20g + 19``, laid out by one of 1024
group shapes (made once, from a fixed stream) that ``g``'s bits pick, so the album of
any track is found from its index alone.
"""

from __future__ import annotations

import random
from functools import cache
from typing import NamedTuple

from tenancy_fixtures.spotify.indexed_streams import IndexedStream

__all__ = ["DAY", "Album", "Member", "Playlist", "SetReferences", "Shared", "Workspace"]

DAY = 24 * 60 * 60
_GROUP_ALBUMS = 4
_GROUP_TRACKS = 20
_GROUP_SHAPES = 1024


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


def _album_types(bits: int) -> tuple[list[str], int]:
    """Four album types (55 % single, 35 % album, 10 % compilation; never four
    singles) and the bits not used."""
    types = []
    for _ in range(_GROUP_ALBUMS):
        bits, roll = divmod(bits, 100)
        types.append("single" if roll < 55 else "album" if roll < 90 else "compilation")
    if all(t == "single" for t in types):
        types[-1] = "album"
    return types, bits


def _split_tracks(types: list[str], bits: int) -> list[int]:
    """Track counts for ``types`` adding up to the group's tracks: 1-3 per single, at
    least 4 otherwise."""
    counts = []
    for album_type in types:
        bits, extra = divmod(bits, 3)
        counts.append(1 + extra if album_type == "single" else 4)
    spare = _GROUP_TRACKS - sum(counts)
    longer = [k for k, t in enumerate(types) if t != "single"]
    cuts = []
    for _ in longer[1:]:
        bits, cut = divmod(bits, spare + 1)
        cuts.append(cut)
    bounds = [0, *sorted(cuts), spare]
    for position, album in enumerate(longer):
        counts[album] += bounds[position + 1] - bounds[position]
    return counts


class _GroupShape(NamedTuple):
    #: Type and track count of each album of the group.
    albums: tuple[tuple[str, int], ...]
    #: Offset of each album's first track in the group.
    firsts: tuple[int, ...]
    #: Position of the album of each of the group's tracks.
    album_of: tuple[int, ...]


@cache
def _group_shapes() -> tuple[_GroupShape, ...]:
    """The group shapes, the same for every seed (a seed picks among them per group)."""
    stream = IndexedStream(0, "album.group_shapes")
    shapes = []
    for index in range(_GROUP_SHAPES):
        types, bits = _album_types(stream.bits(index))
        counts = _split_tracks(types, bits)
        firsts = tuple(sum(counts[:position]) for position in range(_GROUP_ALBUMS))
        album_of = tuple(p for p, count in enumerate(counts) for _ in range(count))
        shapes.append(_GroupShape(tuple(zip(types, counts, strict=True)), firsts, album_of))
    return tuple(shapes)


class SetReferences:
    """Ids and attributes of the users, artists, albums, tracks, playlists and
    workspaces of a set of ``scale``, derived from ``seed`` and each row's index."""

    def __init__(self, seed: int, scale: int) -> None:
        self.users = 20 * scale
        self.artists = 10 * scale
        self.albums = _GROUP_ALBUMS * 5 * scale
        self.tracks = _GROUP_TRACKS * 5 * scale
        self.playlists = 10 * scale
        self.workspaces = 2 * scale
        self._user = IndexedStream(seed, "user")
        self._user_created = IndexedStream(seed, "user.created_at")
        self._artist = IndexedStream(seed, "artist")
        self._album = IndexedStream(seed, "album")
        self._album_traits = IndexedStream(seed, "album.traits")
        self._album_group = IndexedStream(seed, "album.group")
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
        return self._user_created.bits(user) % (120 * DAY)

    def artist_id(self, artist: int) -> str:
        return self._artist.base62(artist)

    def _shape(self, group: int) -> _GroupShape:
        return _group_shapes()[self._album_group.bits(group) % _GROUP_SHAPES]

    def album(self, album: int) -> Album:
        group, position = divmod(album, _GROUP_ALBUMS)
        shape = self._shape(group)
        traits, artist = divmod(self._album_traits.bits(album), self.artists)
        album_type, tracks = shape.albums[position]
        first = _GROUP_TRACKS * group + shape.firsts[position]
        return Album(
            self._album.base62(album), artist, 1968 + traits % 58, album_type, tracks, first
        )

    def album_id(self, album: int) -> str:
        return self._album.base62(album)

    def album_of_track(self, track: int) -> int:
        group, offset = divmod(track, _GROUP_TRACKS)
        return _GROUP_ALBUMS * group + self._shape(group).album_of[offset]

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
        traits, since = divmod(self._playlist_traits.bits(playlist), 30 * DAY)
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
        created = self.user_created(owner) + rng.randrange(14 * DAY)
        others = [u for u in rng.sample(range(self.users), min(5, self.users)) if u != owner]
        members = [Member(owner, "owner", created)]
        for user in others[: rng.randint(2, 4)]:
            role = "editor" if rng.random() < 0.4 else "viewer"
            members.append(Member(user, role, created + rng.randrange(30 * DAY)))
        adders = [m for m in members if m.role in ("owner", "editor")]
        shared = []
        for index in rng.sample(range(self.playlists), min(rng.randint(2, 4), self.playlists)):
            adder = rng.choice(adders)
            since = max(adder.joined, self.playlist(index).created)
            shared.append(Shared(index, adder.user, since + rng.randrange(10 * DAY)))
        workspace_id = f"ws_{self._workspace.base62(workspace, 16)}"
        return Workspace(workspace_id, created, tuple(members), tuple(shared))

    def comment_id(self, comment: int) -> str:
        return f"cm_{self._comment.base62(comment, 16)}"

    def product_event_id(self, event: int) -> str:
        return self._event.uuid4(event)
