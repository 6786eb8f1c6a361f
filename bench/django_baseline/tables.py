"""Which Django model holds which Spotify table (no imports: the child reads it too)."""

from __future__ import annotations

__all__ = ["BIG_TABLE", "TABLE_MODELS"]

#: The table ``max_rows`` takes a prefix of: the large one nothing refers to.
BIG_TABLE = "listening_events"

#: Django model label (``app_label.model_name``) per table, in foreign-key order.
TABLE_MODELS: dict[str, str] = {
    "users": "spotify.user",
    "artists": "spotify.artist",
    "albums": "spotify.album",
    "tracks": "spotify.track",
    "audio_features": "spotify.audiofeatures",
    "playlists": "spotify.playlist",
    "playlist_tracks": "spotify.playlisttrack",
    "listening_events": "spotify.listeningevent",
    "ai_models": "spotify.aimodel",
    "workspaces": "spotify.workspace",
    "workspace_members": "spotify.workspacemember",
    "workspace_playlists": "spotify.workspaceplaylist",
}
