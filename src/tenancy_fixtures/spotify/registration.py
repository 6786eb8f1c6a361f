"""What the built-in domain adds to the engine's registries, added in one call."""

from __future__ import annotations

from tenancy_fixtures.loading.derived import register_derivation
from tenancy_fixtures.loading.registry import register_loader
from tenancy_fixtures.loading.sources import register_format
from tenancy_fixtures.loading.value_formats import register_value_format
from tenancy_fixtures.monitoring.usage import LimitCounter, register_limit_counter
from tenancy_fixtures.spotify.ai_models import AIModelLoader, AIModelsFormat
from tenancy_fixtures.spotify.analytics import AnalyticsLoader, ProductEventsFormat
from tenancy_fixtures.spotify.catalogue import SpotifyDataLoader
from tenancy_fixtures.spotify.collaboration import CollaborationLoader, WorkspacesFormat
from tenancy_fixtures.spotify.daily_stats import DAILY_STATS
from tenancy_fixtures.spotify.formats.mpd import MillionPlaylistFormat
from tenancy_fixtures.spotify.formats.spotify_api import SpotifyApiFormat
from tenancy_fixtures.spotify.formats.streaming_history import StreamingHistoryFormat
from tenancy_fixtures.spotify.value_formats import VALUE_FORMATS

__all__ = ["register_domain"]


def register_domain() -> None:
    """Register the value formats, source formats, loaders, derived tables and the
    tables the tier limits count."""
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
    # The tier limits `users` and `workspaces` count rows of these tables (`storage` is
    # the engine's own: bytes of the tenant's storage).
    register_limit_counter(LimitCounter("users", "users"))
    register_limit_counter(LimitCounter("workspaces", "workspaces"))
