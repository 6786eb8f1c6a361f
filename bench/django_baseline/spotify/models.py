"""The Spotify tables of ``tenancy_fixtures.spotify.schema`` as Django models.

Same table and column names, types, nullability, defaults, check constraints and
indexes as the SQLAlchemy schema, so ``loaddata`` works against the same shape of
database our loader does. Tables with a single-column primary key keep it as the
natural key (``CharField(primary_key=True)``); every foreign key names the same column
with ``db_column``. Django cannot declare a composite primary key before 5.2 (and
``loaddata`` of ``CompositePrimaryKey`` models is still limited), so the four tables
with one — playlist_tracks, listening_events, workspace_members and
workspace_playlists — get an auto ``id`` plus a ``UniqueConstraint`` on the natural
key columns instead. Django also adds, by its own design, a ``varchar_pattern_ops``
(``_like``) index next to every indexed character column on PostgreSQL; that is what a
Django user gets, so it is kept.
"""

from __future__ import annotations

from django.db import models

from bench.django_baseline.spotify.compat import check_constraint

_SPOTIFY_ID = 22
_UNIT_INTERVAL = (
    "danceability",
    "energy",
    "valence",
    "acousticness",
    "instrumentalness",
    "liveness",
    "speechiness",
)


class User(models.Model):
    user_id = models.CharField(primary_key=True, max_length=64)
    display_name = models.CharField(max_length=200)
    email = models.CharField(max_length=320)
    country = models.CharField(max_length=2, null=True)
    product = models.CharField(max_length=16, default="free", db_default="free")
    created_at = models.DateTimeField()

    class Meta:
        db_table = "users"
        constraints = [  # noqa: RUF012 - Django reads Meta lists
            models.UniqueConstraint(fields=["email"], name="uq_users_email"),
            check_constraint(
                models.Q(product__in=["free", "premium", "family", "student"]),
                "ck_users_product",
            ),
        ]


class Artist(models.Model):
    artist_id = models.CharField(primary_key=True, max_length=_SPOTIFY_ID)
    name = models.CharField(max_length=400)
    genres = models.JSONField(null=True)
    popularity = models.IntegerField(null=True)
    followers = models.BigIntegerField(null=True)

    class Meta:
        db_table = "artists"
        constraints = [  # noqa: RUF012
            check_constraint(
                models.Q(popularity__gte=0, popularity__lte=100), "ck_artists_popularity"
            ),
            check_constraint(models.Q(followers__gte=0), "ck_artists_followers"),
        ]


class Album(models.Model):
    album_id = models.CharField(primary_key=True, max_length=_SPOTIFY_ID)
    name = models.CharField(max_length=400)
    album_type = models.CharField(max_length=16)
    artist = models.ForeignKey(Artist, models.PROTECT, db_column="artist_id")
    release_date = models.CharField(max_length=10, null=True)
    release_date_precision = models.CharField(max_length=5, null=True)
    total_tracks = models.IntegerField()
    label = models.CharField(max_length=400, null=True)

    class Meta:
        db_table = "albums"
        constraints = [  # noqa: RUF012
            check_constraint(
                models.Q(album_type__in=["album", "single", "compilation"]),
                "ck_albums_album_type",
            ),
            check_constraint(
                models.Q(release_date_precision__in=["year", "month", "day"]),
                "ck_albums_precision",
            ),
            check_constraint(models.Q(total_tracks__gt=0), "ck_albums_total_tracks"),
        ]


class Track(models.Model):
    track_id = models.CharField(primary_key=True, max_length=_SPOTIFY_ID)
    name = models.CharField(max_length=400)
    album = models.ForeignKey(Album, models.PROTECT, db_column="album_id")
    artist = models.ForeignKey(Artist, models.PROTECT, db_column="artist_id")
    duration_ms = models.IntegerField()
    explicit = models.BooleanField(default=False, db_default=False)
    popularity = models.IntegerField(null=True)
    track_number = models.IntegerField(null=True)
    isrc = models.CharField(max_length=12, null=True)

    class Meta:
        db_table = "tracks"
        constraints = [  # noqa: RUF012
            check_constraint(models.Q(duration_ms__gt=0), "ck_tracks_duration_ms"),
            check_constraint(
                models.Q(popularity__gte=0, popularity__lte=100), "ck_tracks_popularity"
            ),
            check_constraint(models.Q(track_number__gt=0), "ck_tracks_track_number"),
        ]


class AudioFeatures(models.Model):
    # The primary key is also the foreign key to tracks, as in the SQLAlchemy schema.
    track = models.OneToOneField(
        Track, models.CASCADE, primary_key=True, db_column="track_id", related_name="features"
    )
    danceability = models.FloatField()
    energy = models.FloatField()
    valence = models.FloatField()
    acousticness = models.FloatField()
    instrumentalness = models.FloatField()
    liveness = models.FloatField()
    speechiness = models.FloatField()
    loudness = models.FloatField()
    tempo = models.FloatField()
    key = models.IntegerField()
    mode = models.IntegerField()
    time_signature = models.IntegerField()

    class Meta:
        db_table = "audio_features"
        constraints = [  # noqa: RUF012
            *(
                check_constraint(
                    models.Q(**{f"{c}__gte": 0, f"{c}__lte": 1}), f"ck_audio_features_{c}_unit"
                )
                for c in _UNIT_INTERVAL
            ),
            check_constraint(models.Q(tempo__gt=0), "ck_audio_features_tempo"),
            check_constraint(models.Q(key__gte=-1, key__lte=11), "ck_audio_features_key"),
            check_constraint(models.Q(mode__in=[0, 1]), "ck_audio_features_mode"),
            check_constraint(
                models.Q(time_signature__gte=3, time_signature__lte=7),
                "ck_audio_features_time_signature",
            ),
        ]


class Playlist(models.Model):
    playlist_id = models.CharField(primary_key=True, max_length=_SPOTIFY_ID)
    owner = models.ForeignKey(User, models.PROTECT, db_column="owner_id")
    name = models.CharField(max_length=400)
    description = models.TextField(null=True)
    public = models.BooleanField(default=True, db_default=True)
    collaborative = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "playlists"


class PlaylistTrack(models.Model):
    # Composite primary key (playlist_id, position) in the SQLAlchemy schema: an auto id
    # here, plus a UniqueConstraint on the natural key (whose index also serves the
    # playlist_id foreign key, hence db_index=False on it).
    playlist = models.ForeignKey(Playlist, models.CASCADE, db_column="playlist_id", db_index=False)
    position = models.IntegerField()
    track = models.ForeignKey(Track, models.PROTECT, db_column="track_id")
    added_by = models.ForeignKey(
        User, models.PROTECT, db_column="added_by", null=True, related_name="+"
    )
    added_at = models.DateTimeField()

    class Meta:
        db_table = "playlist_tracks"
        constraints = [  # noqa: RUF012
            models.UniqueConstraint(
                fields=["playlist", "position"], name="uq_playlist_tracks_natural_key"
            ),
            check_constraint(models.Q(position__gte=0), "ck_playlist_tracks_position"),
        ]


class ListeningEvent(models.Model):
    # Composite primary key (user_id, played_at) in the SQLAlchemy schema: an auto id
    # here, plus a UniqueConstraint on the natural key. The schema indexes track_id only
    # together with played_at, so the foreign keys get no index of their own.
    user = models.ForeignKey(User, models.CASCADE, db_column="user_id", db_index=False)
    played_at = models.DateTimeField()
    track = models.ForeignKey(Track, models.PROTECT, db_column="track_id", db_index=False)
    ms_played = models.IntegerField()
    context_uri = models.CharField(max_length=200, null=True)
    platform = models.CharField(max_length=64, null=True)
    reason_start = models.CharField(max_length=32, null=True)
    reason_end = models.CharField(max_length=32, null=True)
    shuffle = models.BooleanField(null=True)
    skipped = models.BooleanField(null=True)

    class Meta:
        db_table = "listening_events"
        constraints = [  # noqa: RUF012
            models.UniqueConstraint(
                fields=["user", "played_at"], name="uq_listening_events_natural_key"
            ),
            check_constraint(models.Q(ms_played__gte=0), "ck_listening_events_ms_played"),
        ]
        indexes = [  # noqa: RUF012
            models.Index(fields=["track", "played_at"], name="ix_listening_track_played"),
        ]


class AiModel(models.Model):
    model_id = models.CharField(primary_key=True, max_length=64)
    provider = models.CharField(max_length=64)
    model_name = models.CharField(max_length=128)
    version = models.CharField(max_length=64)
    task = models.CharField(max_length=32)
    parameters = models.JSONField()
    enabled = models.BooleanField(default=True, db_default=True)
    is_default = models.BooleanField(default=False, db_default=False)

    class Meta:
        db_table = "ai_models"
        constraints = [  # noqa: RUF012
            check_constraint(
                models.Q(
                    task__in=["recommendation", "playlist_generation", "audio_analysis", "chat"]
                ),
                "ck_ai_models_task",
            ),
            models.UniqueConstraint(
                fields=["task"],
                condition=models.Q(is_default=True),
                name="uq_ai_models_default_per_task",
            ),
        ]


class Workspace(models.Model):
    workspace_id = models.CharField(primary_key=True, max_length=64)
    name = models.CharField(max_length=200)
    owner = models.ForeignKey(User, models.PROTECT, db_column="owner_id")
    created_at = models.DateTimeField()

    class Meta:
        db_table = "workspaces"


class WorkspaceMember(models.Model):
    # Composite primary key (workspace_id, user_id) in the SQLAlchemy schema: an auto id
    # here, plus a UniqueConstraint on the natural key.
    workspace = models.ForeignKey(
        Workspace, models.CASCADE, db_column="workspace_id", db_index=False
    )
    user = models.ForeignKey(User, models.CASCADE, db_column="user_id", related_name="+")
    role = models.CharField(max_length=16)
    joined_at = models.DateTimeField()

    class Meta:
        db_table = "workspace_members"
        constraints = [  # noqa: RUF012
            models.UniqueConstraint(
                fields=["workspace", "user"], name="uq_workspace_members_natural_key"
            ),
            check_constraint(
                models.Q(role__in=["owner", "editor", "viewer"]), "ck_workspace_members_role"
            ),
        ]


class WorkspacePlaylist(models.Model):
    # Composite primary key (workspace_id, playlist_id) in the SQLAlchemy schema: an auto
    # id here, plus a UniqueConstraint on the natural key.
    workspace = models.ForeignKey(
        Workspace, models.CASCADE, db_column="workspace_id", db_index=False
    )
    playlist = models.ForeignKey(Playlist, models.CASCADE, db_column="playlist_id")
    added_by = models.ForeignKey(
        User, models.PROTECT, db_column="added_by", db_index=False, related_name="+"
    )
    added_at = models.DateTimeField()

    class Meta:
        db_table = "workspace_playlists"
        constraints = [  # noqa: RUF012
            models.UniqueConstraint(
                fields=["workspace", "playlist"], name="uq_workspace_playlists_natural_key"
            ),
        ]
