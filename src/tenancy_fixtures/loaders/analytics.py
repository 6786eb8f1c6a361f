"""AnalyticsLoader: listening events, the high-volume table of every tenant."""

from __future__ import annotations

from tenancy_fixtures.loaders.data_loader import DataLoader

__all__ = ["AnalyticsLoader"]


class AnalyticsLoader(DataLoader):
    """Loads listening events (who played which track when, for how long)."""

    loader_name = "analytics"
    domain_tables = frozenset({"listening_events"})
