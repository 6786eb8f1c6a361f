"""CollaborationLoader: shared workspaces, their members and playlists."""

from __future__ import annotations

from tenancy_fixtures.loaders.data_loader import DataLoader

__all__ = ["CollaborationLoader"]


class CollaborationLoader(DataLoader):
    """Loads workspaces, members with roles, and the playlists shared in them."""

    loader_name = "collaboration"
    domain_tables = frozenset({"workspaces", "workspace_members", "workspace_playlists"})
