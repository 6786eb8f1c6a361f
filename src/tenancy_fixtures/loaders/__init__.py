"""Data fixtures: readers for each file format, the generic DataLoader and domain loaders."""

from __future__ import annotations

# Source formats register themselves on import (mpd first: detection tries it on a
# slice's first streamed playlist before any format reads the whole file; the domain
# loaders below register theirs after these).
from tenancy_fixtures.loaders import mpd as _mpd  # noqa: F401
from tenancy_fixtures.loaders import spotify_api as _spotify_api  # noqa: F401
from tenancy_fixtures.loaders import streaming_history as _streaming_history  # noqa: F401
from tenancy_fixtures.loaders.ai_models import AIModelLoader
from tenancy_fixtures.loaders.analytics import AnalyticsLoader
from tenancy_fixtures.loaders.collaboration import CollaborationLoader
from tenancy_fixtures.loaders.data_loader import DataLoader
from tenancy_fixtures.loaders.spotify import SpotifyDataLoader

__all__ = [
    "LOADERS",
    "AIModelLoader",
    "AnalyticsLoader",
    "CollaborationLoader",
    "DataLoader",
    "SpotifyDataLoader",
]

#: Loader classes by the name fixture templates use for them.
LOADERS: dict[str, type[DataLoader]] = {
    cls.loader_name: cls
    for cls in (DataLoader, SpotifyDataLoader, AnalyticsLoader, AIModelLoader, CollaborationLoader)
}
