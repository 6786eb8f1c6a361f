"""Spotify identifiers: parsing URIs and links, checking ids, deriving ids from names.

A Spotify id is 22 base-62 characters (a 128-bit number); a URI names its kind
(``spotify:track:<id>``) and an ``open.spotify.com`` link says the same as a URL.
Some sources name an artist, album or track only by its name (a basic streaming
history export); :func:`derived_id` turns such names into a stable **derived** id of
the same shape, so the rows they imply can be keyed like real ones. A derived id is
base-62 of the first 128 bits of a SHA-256 of the kind and the normalised names: the
same names always give the same id, and it is not a real Spotify id (it will not
match the catalogue's own row for that artist or track).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import urlsplit

__all__ = [
    "BASE62",
    "SPOTIFY_ID_LENGTH",
    "SpotifyRef",
    "derived_id",
    "id_of",
    "is_spotify_id",
    "normalise_name",
    "parse_uri",
    "to_base62",
]

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SPOTIFY_ID_LENGTH = 22
#: Kinds whose URIs carry a 22-character base-62 id.
CATALOGUE_KINDS = frozenset({"track", "album", "artist", "playlist", "episode", "show"})
_LINK_HOSTS = frozenset({"open.spotify.com", "play.spotify.com"})
_LOCALE = re.compile(r"intl-[a-z]{2}(?:-[a-z]{2,4})?", re.IGNORECASE)
_USER = re.compile(r"[0-9A-Za-z._-]{1,64}")
_SPACES = re.compile(r"\s+")


class SpotifyRef(NamedTuple):
    """What a URI or link names: its kind (``track``, ``user``, ``local``...) and id."""

    kind: str
    id: str


def is_spotify_id(value: object) -> bool:
    """Whether ``value`` is a Spotify id: a string of 22 base-62 characters."""
    return (
        isinstance(value, str)
        and len(value) == SPOTIFY_ID_LENGTH
        and value.isascii()
        and value.isalnum()
    )


def parse_uri(value: object) -> SpotifyRef:
    """The kind and id a Spotify URI (``spotify:track:<id>``) or link names.

    Links (``https://open.spotify.com/track/<id>?si=...``, with or without a locale
    segment) are accepted too, and the older ``spotify:user:<owner>:playlist:<id>``.
    Local files (``spotify:local:...``) come back as kind ``local`` with the rest of the
    URI as id, a user's saved tracks (``spotify:user:<user>:collection``) as kind
    ``collection`` with the user as id. Raises :class:`ValueError` saying why
    anything else is refused.
    """
    if not isinstance(value, str):
        raise ValueError(f"expected a Spotify URI, found {type(value).__name__}")
    if value.startswith("spotify:"):
        return _from_uri(value)
    if value.startswith(("https://", "http://")):
        return _from_link(value)
    raise ValueError(f"not a Spotify URI: {value!r:.80}")


def _from_uri(value: str) -> SpotifyRef:
    """What a ``spotify:`` URI names."""
    parts = value.split(":")
    if len(parts) >= 3 and parts[1] == "local":
        return SpotifyRef("local", value[len("spotify:local:") :])
    if len(parts) == 5 and parts[1] == "user" and parts[3] == "playlist":
        # The older form of a playlist URI, which named its owner.
        return _checked("playlist", parts[4])
    if len(parts) == 4 and parts[1] == "user" and parts[3] == "collection":
        return SpotifyRef("collection", parts[2])
    if len(parts) != 3:
        raise ValueError(f"not a Spotify URI: {value!r:.80}")
    return _checked(parts[1], parts[2])


def _from_link(value: str) -> SpotifyRef:
    """What an ``open.spotify.com`` (or ``play.spotify.com``) link names."""
    link = urlsplit(value)
    if link.hostname not in _LINK_HOSTS:
        raise ValueError(f"not a Spotify link: {value!r:.80}")
    segments = [s for s in link.path.split("/") if s]
    if segments and _LOCALE.fullmatch(segments[0]):
        segments = segments[1:]
    if len(segments) != 2:
        raise ValueError(f"not a link to one Spotify item: {value!r:.80}")
    kind, ident = segments
    return _checked(kind, ident)


def _checked(kind: str, ident: str) -> SpotifyRef:
    """``kind`` and ``ident``, refused unless the kind is one with an id and ``ident``
    is a well-formed id of it."""
    if kind in CATALOGUE_KINDS:
        if not is_spotify_id(ident):
            raise ValueError(f"a {kind} id must be 22 base-62 characters, found {ident!r:.40}")
    elif kind == "user":
        if _USER.fullmatch(ident) is None:
            raise ValueError(f"not a Spotify user name: {ident!r:.80}")
    else:
        raise ValueError(f"unknown Spotify URI kind {kind!r:.20}")
    return SpotifyRef(kind, ident)


def id_of(value: object, kind: str) -> str:
    """The id of a ``kind`` item given as a bare id, a URI or a link.

    Raises :class:`ValueError` for anything else, or for a URI of another kind.
    """
    if is_spotify_id(value):
        assert isinstance(value, str)
        return value
    ref = parse_uri(value)
    if ref.kind != kind:
        raise ValueError(f"expected a {kind} URI, found a {ref.kind} URI")
    return ref.id


def normalise_name(name: str) -> str:
    """A name as it is compared: Unicode-compatible form, case folded, spaces collapsed."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return _SPACES.sub(" ", folded).strip()


def to_base62(number: int, length: int = SPOTIFY_ID_LENGTH) -> str:
    """``number`` in base 62, left-padded with ``0`` to ``length`` characters."""
    if number < 0:
        raise ValueError("a base-62 number cannot be negative")
    digits: list[str] = []
    rest = number
    while rest:
        rest, digit = divmod(rest, 62)
        digits.append(BASE62[digit])
    text = "".join(reversed(digits)).rjust(length, "0")
    if len(text) > length:
        raise ValueError(f"{number} does not fit in {length} base-62 characters")
    return text


# A history names the same few thousand tracks over and over.
@lru_cache(maxsize=1 << 16)
def derived_id(kind: str, *names: str) -> str:
    """A stable 22-character base-62 id for the ``kind`` item known only by ``names``.

    ``derived_id("artist", "Nina Simone")`` and ``derived_id("artist", "nina  simone")``
    are equal; the kind keeps an artist and an album of the same name apart.
    """
    key = "\x1f".join((kind, *(normalise_name(n) for n in names)))
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return to_base62(int.from_bytes(digest[:16], "big"))
