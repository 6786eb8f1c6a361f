"""The made-up catalogue the source files describe, each item derived from its index.

The artists, albums and tracks of :mod:`tenancy_fixtures.spotify.source_generator` are
computed from the seed and the item's index whenever a file names them, never kept, so
the generator's memory does not grow with the scale (10 artists, 20 albums and 100
tracks per unit of scale). Albums hold runs of tracks
(:class:`~tenancy_fixtures.spotify.album_layout.AlbumLayout`); every artist has an
album. Artist names are distinct: their words spell, in base 33, a permutation of the
artist indexes (a basic streaming-history export names artists only by name).
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from tenancy_fixtures.spotify.album_layout import ALBUMS_PER_GROUP, TRACKS_PER_GROUP, AlbumLayout
from tenancy_fixtures.spotify.indexed_streams import IndexedStream

__all__ = ["COUNTRIES", "WORDS", "Album", "Artist", "SourceCatalogue", "Track"]

WORDS = (
    "Amber", "Arrow", "Bloom", "Cinder", "Comet", "Coral", "Drift", "Ember", "Fable",
    "Fjord", "Glass", "Harbor", "Hollow", "Iris", "Juniper", "Lantern", "Meadow",
    "Mirage", "Nova", "Orbit", "Paper", "Prism", "Quartz", "Raven", "Ripple", "Saffron",
    "Signal", "Solace", "Static", "Tide", "Velvet", "Willow", "Zephyr",
)  # fmt: skip
COUNTRIES = ("SE", "GB", "US", "DE", "BR", "JP")
_FIRST = ("Ada", "Bo", "Cleo", "Dario", "Elin", "Femi", "Greta", "Hugo", "Ines", "Jun", "Kofi")
_GENRES = ("indie folk", "dream pop", "synthwave", "jazz", "techno", "soul", "k-pop", "ambient")
_LABELS = ("Saltwater Sound", "Paper Moon Recordings", "Copper Coast", "Glasshouse Audio")
_ISRC_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
# Artists and albums kept for reuse (most files name the same ones over and over),
# whatever the scale.
_CACHED = 4096
# Coprime with every power of 33 (3 * 11): steps through all names of a length.
_NAME_STEP = 7919


class Artist(NamedTuple):
    id: str
    name: str
    genres: list[str]
    popularity: int
    followers: int


class Album(NamedTuple):
    id: str
    name: str
    artist: int
    album_type: str
    release_date: str
    precision: str
    label: str
    popularity: int
    #: Indexes of the album's tracks, in track-number order.
    tracks: range


class Track(NamedTuple):
    id: str
    name: str
    album: int
    artists: tuple[int, ...]
    duration_ms: int
    explicit: bool
    popularity: int
    number: int
    isrc: str


def _words(value: int, length: int) -> str:
    """``value`` as ``length`` base-33 digits, a word per digit."""
    digits = []
    for _ in range(length):
        value, digit = divmod(value, len(WORDS))
        digits.append(WORDS[digit])
    return " ".join(reversed(digits))


class SourceCatalogue:
    """Artists, albums and tracks of a source set of ``scale``, derived from ``seed``."""

    def __init__(self, seed: int, scale: int) -> None:
        self.artists = 10 * scale
        self.albums = ALBUMS_PER_GROUP * 5 * scale
        self.tracks = TRACKS_PER_GROUP * 5 * scale
        # Artist i is named after (step * i + offset) % 33**words: a permutation.
        self._name_words = 2
        while len(WORDS) ** self._name_words < self.artists:
            self._name_words += 1
        self._names = len(WORDS) ** self._name_words
        self._name_offset = IndexedStream(seed, "sources.artist.name").bits(0) % self._names
        self._artist = IndexedStream(seed, "sources.artist")
        self._album = IndexedStream(seed, "sources.album")
        self._album_artist = IndexedStream(seed, "sources.album.artist")
        self._track = IndexedStream(seed, "sources.track")
        self._track_traits = IndexedStream(seed, "sources.track.traits")
        self._playlist = IndexedStream(seed, "sources.playlist")
        self._episode = IndexedStream(seed, "sources.episode")
        self._playlist_episode = IndexedStream(seed, "sources.playlist_episode")
        self._layout = AlbumLayout(IndexedStream(seed, "sources.album.group"))
        self._artists = lru_cache(maxsize=_CACHED)(self._derive_artist)
        self._albums = lru_cache(maxsize=_CACHED)(self._derive_album)

    def artist(self, index: int) -> Artist:
        return self._artists(index)

    def album(self, index: int) -> Album:
        return self._albums(index)

    def _derive_artist(self, index: int) -> Artist:
        """Of one of three name styles; 0-2 genres."""
        bits = self._artist.bits(index)
        bits, style = divmod(bits, 3)
        bits, first = divmod(bits, len(_FIRST))
        value = (_NAME_STEP * index + self._name_offset) % self._names
        words = _words(value, self._name_words)
        name = (f"The {words}s", words, f"{words} & {_FIRST[first]}")[style]
        bits, genre_count = divmod(bits, 3)
        bits, genre = divmod(bits, len(_GENRES))
        bits, step = divmod(bits, len(_GENRES) - 1)
        picked = [genre, (genre + 1 + step) % len(_GENRES)][:genre_count]
        bits, popularity = divmod(bits, 101)
        return Artist(
            self._artist.base62(index),
            name,
            sorted(_GENRES[g] for g in picked),
            popularity,
            bits % 2_000_001,
        )

    def album_artist(self, index: int) -> int:
        """The first albums go to every artist in turn, the rest to artists at random."""
        if index < self.artists:
            return index
        return self._album_artist.bits(index) % self.artists

    def _derive_album(self, index: int) -> Album:
        """Released to the day (80 %), month or year, 1995-2025."""
        slot = self._layout.album(index)
        bits = self._album.bits(index)
        bits, year = divmod(bits, 31)
        bits, roll = divmod(bits, 10)
        bits, month = divmod(bits, 12)
        bits, day = divmod(bits, 28)
        date = f"{1995 + year}-{month + 1:02d}-{day + 1:02d}"
        precision = "year" if roll == 9 else "month" if roll == 8 else "day"
        bits, first = divmod(bits, len(WORDS))
        bits, second = divmod(bits, len(WORDS))
        bits, label = divmod(bits, len(_LABELS))
        return Album(
            self._album.base62(index),
            f"{WORDS[first]} {WORDS[second]}",
            self.album_artist(index),
            slot.album_type,
            date[: {"day": 10, "month": 7, "year": 4}[precision]],
            precision,
            _LABELS[label],
            bits % 101,
            range(slot.first_track, slot.first_track + slot.tracks),
        )

    def track(self, index: int) -> Track:
        """Some (20 %) featuring a second artist."""
        album, number = self._layout.track(index)
        main = self.album_artist(album)
        bits = self._track.bits(index)
        bits, featuring = divmod(bits, 5)
        bits, featured = divmod(bits, self.artists)
        artists = (main, featured) if featuring == 0 and featured != main else (main,)
        bits, first = divmod(bits, len(WORDS))
        bits, second = divmod(bits, len(WORDS))
        bits, explicit = divmod(bits, 100)
        bits, popularity = divmod(bits, 101)
        traits = self._track_traits.bits(index)
        traits, duration = divmod(traits, 330_001)
        traits, country = divmod(traits, len(COUNTRIES))
        letters = ""
        for _ in range(3):
            traits, letter = divmod(traits, len(_ISRC_LETTERS))
            letters += _ISRC_LETTERS[letter]
        traits, year = divmod(traits, 100)
        return Track(
            self._track.base62(index),
            f"{WORDS[first]} {WORDS[second]}",
            album,
            artists,
            90_000 + duration,
            explicit < 15,
            popularity,
            number,
            f"{COUNTRIES[country]}{letters}{year:02d}{traits % 100_000:05d}",
        )

    def playlist_id(self, number: int) -> str:
        return self._playlist.base62(number)

    def episode_id(self, number: int) -> str:
        """Of the history's ``number``-th entry."""
        return self._episode.base62(number)

    def playlist_episode_id(self) -> str:
        """Of the episode in the first playlist."""
        return self._playlist_episode.base62(0)
