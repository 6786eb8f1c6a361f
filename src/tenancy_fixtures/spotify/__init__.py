"""The built-in domain: a Spotify-style AI agent platform's schema, loaders and formats.

It plugs into the engine the way a user's own domain would: :func:`register` adds its
loaders, source formats, value formats and derived tables to the engine's registries,
and :func:`spotify_metadata` is the schema a :class:`~tenancy_fixtures.FixtureManager`
uses when given none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import MetaData

__all__ = ["builtin_metadata", "register"]

_registered = False
_builtin: MetaData | None = None


def register() -> None:
    """Register the domain's loaders, source formats, value formats and derived tables
    with the engine (idempotent)."""
    global _registered
    if _registered:
        return
    # Imported on use: importing the package (for its schema, say) stays cheap.
    from tenancy_fixtures.spotify.registration import register_domain

    register_domain()
    _registered = True


def builtin_metadata() -> MetaData:
    """The built-in schema, with the domain registered so its templates can load.

    Built once per process and shared by every manager, as a ``MetaData`` named by
    ``TENANCY_METADATA`` is: nothing changes it, and building it costs tens of
    milliseconds per manager (a test suite makes thousands). A fresh, changeable copy
    comes from :func:`~tenancy_fixtures.spotify.schema.spotify_metadata`.
    """
    global _builtin
    register()
    if _builtin is None:
        from tenancy_fixtures.spotify.schema import spotify_metadata

        _builtin = spotify_metadata()
    return _builtin
