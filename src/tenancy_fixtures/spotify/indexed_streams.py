"""Values that are a pure function of a seed, a stream name and an index.

The fixture generator refers to rows of earlier tables (a listening event names a
track, a playlist its owner) without keeping those rows in memory: each id or
attribute a later table needs is recomputed from the row's index, so memory does not
grow with the scale. :meth:`IndexedStream.bits` hashes ``(seed, name, index)`` to 64
pseudo-random bits with SplitMix64's finaliser (a bijection on 64-bit integers, so
distinct indexes never share their bits). Ids built from them are unique by
construction: the last six characters of :meth:`IndexedStream.base62` encode a 35-bit
and the low 62 bits of :meth:`IndexedStream.uuid4` a 62-bit permutation of the index.
"""

from __future__ import annotations

import hashlib
import uuid

from tenancy_fixtures.spotify.spotify_ids import BASE62

__all__ = ["UNIQUE_INDEXES", "IndexedStream"]

# 2**35 < 62**6: a 35-bit number fits the six unique characters of a base-62 id.
_UNIQUE_BITS = 35
#: Indexes below this get distinct :meth:`IndexedStream.base62` ids.
UNIQUE_INDEXES = 1 << _UNIQUE_BITS

_UNIQUE_MASK = UNIQUE_INDEXES - 1
_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX_1 = 0xBF58476D1CE4E5B9
_MIX_2 = 0x94D049BB133111EB
_UNIQUE_CHARS = 6
_PAIRS = tuple(a + b for a in BASE62 for b in BASE62)
# Byte -> base-62 character: the id's random part, one character per byte.
_TO_BASE62 = bytes(ord(BASE62[b % 62]) for b in range(256))


def _mix(value: int) -> int:
    """SplitMix64's finaliser: a bijection on 64-bit integers that spreads every bit."""
    value = ((value ^ (value >> 30)) * _MIX_1) & _MASK64
    value = ((value ^ (value >> 27)) * _MIX_2) & _MASK64
    return value ^ (value >> 31)


def _scramble(value: int, width: int) -> int:
    """A bijection on ``width``-bit integers: xor-shifts and odd multipliers modulo
    ``2**width`` are each invertible."""
    mask = (1 << width) - 1
    half = width // 2
    value = ((value ^ (value >> half)) * _MIX_1) & mask
    value = ((value ^ (value >> (half - 1))) * _MIX_2) & mask
    return value ^ (value >> half)


class IndexedStream:
    """Pseudo-random values per index, the same for the same seed and name."""

    __slots__ = ("_key", "_offset")

    def __init__(self, seed: int, name: str) -> None:
        digest = hashlib.blake2b(f"{seed}:{name}".encode(), digest_size=16).digest()
        self._key = int.from_bytes(digest[:8], "little")
        self._offset = int.from_bytes(digest[8:], "little")

    def bits(self, index: int) -> int:
        """64 pseudo-random bits for ``index`` (``0 <= index < 2**64``)."""
        return _mix((self._key + index * _GOLDEN) & _MASK64)

    def base62(self, index: int, length: int = 22) -> str:
        """``length`` base-62 characters (7 to 22; 22 is a Spotify id), distinct for
        distinct indexes below :data:`UNIQUE_INDEXES`."""
        if not _UNIQUE_CHARS < length <= 22:
            raise ValueError(f"length must be 7 to 22, got {length}")
        # bits() and _scramble() written out: a listening event derives two ids.
        bits = (self._key + index * _GOLDEN) & _MASK64
        bits = ((bits ^ (bits >> 30)) * _MIX_1) & _MASK64
        bits = ((bits ^ (bits >> 27)) * _MIX_2) & _MASK64
        bits ^= bits >> 31
        unique = (self._offset + index) & _UNIQUE_MASK
        unique = ((unique ^ (unique >> 17)) * _MIX_1) & _UNIQUE_MASK
        unique = ((unique ^ (unique >> 16)) * _MIX_2) & _UNIQUE_MASK
        unique ^= unique >> 17
        unique, low = divmod(unique, 3844)
        high, middle = divmod(unique, 3844)
        # Sixteen bytes of noise: the bits, then the bits multiplied (cheaper than a mix).
        noise = ((((bits * _GOLDEN) & _MASK64) << 64) | bits).to_bytes(16, "little")
        head = noise[: length - _UNIQUE_CHARS].translate(_TO_BASE62).decode("ascii")
        return head + _PAIRS[high] + _PAIRS[middle] + _PAIRS[low]

    def uuid4(self, index: int) -> str:
        """A random-looking version-4 UUID, distinct for distinct indexes below 2**62."""
        unique = _scramble((self._offset + index) % (1 << 62), 62)
        return str(uuid.UUID(int=(self.bits(index) << 64) | unique, version=4))
