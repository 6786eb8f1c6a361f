"""The music domain's value formats: Spotify ids and URIs, ISRCs, release dates.

:func:`tenancy_fixtures.spotify.register` adds them to the engine's value formats, so
the schema's columns can name them (``info={"format": "spotify_id"}``).
"""

from __future__ import annotations

import re
from datetime import date

from tenancy_fixtures.loading.value_formats import ValueFormat

__all__ = ["VALUE_FORMATS", "is_release_date"]

_ISRC = re.compile(r"[A-Z]{2}[0-9A-Z]{3}[0-9]{7}")
# Catalogue URIs carry a 22-character base-62 id; user ids are the account's own
# name (letters, digits, '.', '_', '-'), not base-62.
_SPOTIFY_URI = re.compile(
    r"spotify:(?:(?:track|album|artist|playlist|episode|show):[0-9A-Za-z]{22}"
    r"|user:[0-9A-Za-z._-]{1,64})"
)


def is_release_date(value: str) -> bool:
    """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``, naming a date that exists (year 1 on)."""
    if not value.isascii():
        return False
    size = len(value)
    if size == 10 and value[4] == "-" and value[7] == "-":
        text = value
    elif size == 7 and value[4] == "-":
        text = value + "-01"
    elif size == 4:
        text = value + "-01-01"
    else:
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


VALUE_FORMATS = (
    ValueFormat(
        "spotify_id",
        # ASCII and alphanumeric together are exactly base-62; str methods beat a regex.
        "(len(v) == 22 and v.isascii() and v.isalnum())",
        "a Spotify id (22 base-62 characters)",
        max_length=22,
    ),
    ValueFormat(
        "spotify_uri",
        "FORMAT_URI(v) is not None",
        "a Spotify URI (spotify:<track|album|artist|playlist|episode|show>:<id>"
        " or spotify:user:<user>)",
        {"FORMAT_URI": _SPOTIFY_URI.fullmatch},
        max_length=77,
    ),
    ValueFormat(
        "isrc",
        "FORMAT_ISRC(v) is not None",
        "an ISRC (12 characters: country, registrant, year, designation; no dashes)",
        {"FORMAT_ISRC": _ISRC.fullmatch},
        max_length=12,
    ),
    ValueFormat(
        "release_date",
        "FORMAT_RELEASE_DATE(v)",
        "a release date (YYYY, YYYY-MM or YYYY-MM-DD)",
        {"FORMAT_RELEASE_DATE": is_release_date},
        max_length=10,
    ),
)
