"""App config of the bench-only Spotify app."""

from __future__ import annotations

from django.apps import AppConfig


class SpotifyConfig(AppConfig):
    """The Spotify tables, mirrored from ``tenancy_fixtures.spotify.schema``."""

    name = "bench.django_baseline.spotify"
    label = "spotify"
    default_auto_field = "django.db.models.BigAutoField"
