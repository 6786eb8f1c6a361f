"""SpotifyDataLoader: the tenant's catalogue and library (users, music, playlists)."""

from __future__ import annotations

from tenancy_fixtures.loading.data_loader import DataLoader

__all__ = ["SpotifyDataLoader"]


class SpotifyDataLoader(DataLoader):
    """Loads users, artists, albums, tracks, audio features, playlists and their tracks."""

    loader_name = "spotify"
    domain_tables = frozenset(
        {"users", "artists", "albums", "tracks", "audio_features", "playlists", "playlist_tracks"}
    )
