"""Albums and their tracks laid out so that each is found from the other's index.

Generated albums come in groups of four that share twenty tracks (five per album on
average): album ``4g + k`` holds a run of tracks ``20g`` to ``20g + 19``. Each group
takes one of 1024 group shapes (made once, from a fixed stream), picked by ``g``'s bits
of the layout's stream: the album of any track, and the tracks of any album, are then
computed from the index alone, with no table of albums kept.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

from tenancy_fixtures.spotify.indexed_streams import IndexedStream

__all__ = ["ALBUMS_PER_GROUP", "TRACKS_PER_GROUP", "AlbumLayout", "AlbumSlot"]

ALBUMS_PER_GROUP = 4
TRACKS_PER_GROUP = 20
_SHAPES = 1024


class AlbumSlot(NamedTuple):
    """Where an album's tracks are."""

    album_type: str
    tracks: int
    #: Index of the album's first track.
    first_track: int


def _album_types(bits: int) -> tuple[list[str], int]:
    """Four album types (55 % single, 35 % album, 10 % compilation; never four
    singles) and the bits not used."""
    types = []
    for _ in range(ALBUMS_PER_GROUP):
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
    spare = TRACKS_PER_GROUP - sum(counts)
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
    #: Each album of the group, its first track an offset in the group.
    albums: tuple[AlbumSlot, ...]
    #: Position of the album of each of the group's tracks.
    album_of: tuple[int, ...]


@cache
def _group_shapes() -> tuple[_GroupShape, ...]:
    """The group shapes, the same for every seed (a seed picks among them per group)."""
    stream = IndexedStream(0, "album.group_shapes")
    shapes = []
    for index in range(_SHAPES):
        types, bits = _album_types(stream.bits(index))
        counts = _split_tracks(types, bits)
        albums = tuple(
            AlbumSlot(album_type, count, sum(counts[:position]))
            for position, (album_type, count) in enumerate(zip(types, counts, strict=True))
        )
        album_of = tuple(p for p, count in enumerate(counts) for _ in range(count))
        shapes.append(_GroupShape(albums, album_of))
    return tuple(shapes)


class AlbumLayout:
    """Which tracks each album holds, the group shapes picked by ``stream``'s bits."""

    __slots__ = ("_stream",)

    def __init__(self, stream: IndexedStream) -> None:
        self._stream = stream

    def _shape(self, group: int) -> _GroupShape:
        return _group_shapes()[self._stream.bits(group) % _SHAPES]

    def album(self, album: int) -> AlbumSlot:
        group, position = divmod(album, ALBUMS_PER_GROUP)
        slot = self._shape(group).albums[position]
        return slot._replace(first_track=TRACKS_PER_GROUP * group + slot.first_track)

    def album_of_track(self, track: int) -> int:
        group, offset = divmod(track, TRACKS_PER_GROUP)
        return ALBUMS_PER_GROUP * group + self._shape(group).album_of[offset]

    def track(self, track: int) -> tuple[int, int]:
        """The album of ``track`` and the track's number on it (from 1)."""
        group, offset = divmod(track, TRACKS_PER_GROUP)
        shape = self._shape(group)
        position = shape.album_of[offset]
        number = offset - shape.albums[position].first_track + 1
        return ALBUMS_PER_GROUP * group + position, number
