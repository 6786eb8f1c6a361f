"""Data fixtures: readers for each file format, the generic DataLoader and domain loaders."""

from __future__ import annotations

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
