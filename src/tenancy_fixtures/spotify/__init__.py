"""The built-in domain: a Spotify-style AI agent platform's schema, loaders and formats.

It plugs into the engine the way a user's own domain would: :func:`register` adds its
loaders, source formats, value formats and derived tables to the engine's registries,
and :func:`spotify_metadata` is the schema a :class:`~tenancy_fixtures.FixtureManager`
uses when given none.
"""

from __future__ import annotations

from sqlalchemy import MetaData

__all__ = ["builtin_metadata", "register"]

_registered = False


def register() -> None:
    """Register the domain's loaders, source formats, value formats and derived tables
    with the engine (idempotent)."""
    global _registered
    if _registered:
        return
    from tenancy_fixtures.loading.derived import register_derivation
    from tenancy_fixtures.loading.registry import register_loader
    from tenancy_fixtures.loading.rules import register_value_format
    from tenancy_fixtures.loading.sources import register_format
    from tenancy_fixtures.spotify.ai_models import AIModelLoader, AIModelsFormat
    from tenancy_fixtures.spotify.analytics import AnalyticsLoader, ProductEventsFormat
    from tenancy_fixtures.spotify.catalogue import SpotifyDataLoader
    from tenancy_fixtures.spotify.collaboration import CollaborationLoader, WorkspacesFormat
    from tenancy_fixtures.spotify.daily_stats import DAILY_STATS
    from tenancy_fixtures.spotify.formats.mpd import MillionPlaylistFormat
    from tenancy_fixtures.spotify.formats.spotify_api import SpotifyApiFormat
    from tenancy_fixtures.spotify.formats.streaming_history import StreamingHistoryFormat
    from tenancy_fixtures.spotify.value_formats import VALUE_FORMATS

    for value_format in VALUE_FORMATS:
        register_value_format(value_format)

    # Detection tries formats in this order: the MPD first, on a slice's first
    # streamed playlist, before any format reads a whole file.
    for fmt in (
        MillionPlaylistFormat,
        SpotifyApiFormat,
        StreamingHistoryFormat,
        AIModelsFormat,
        ProductEventsFormat,
        WorkspacesFormat,
    ):
        register_format(fmt)
    for loader in (SpotifyDataLoader, AnalyticsLoader, AIModelLoader, CollaborationLoader):
        register_loader(loader)
    register_derivation(DAILY_STATS)
    _registered = True


def builtin_metadata() -> MetaData:
    """The built-in schema, with the domain registered so its templates can load."""
    from tenancy_fixtures.spotify.schema import spotify_metadata

    register()
    return spotify_metadata()
