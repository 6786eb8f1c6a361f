"""The schema as it was when the history began (tenancy-fixtures 0.1.0).

Tenants registered before migrations were recorded are at this revision.

Revision ID: 0001_baseline
Revises:
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tenancy_fixtures.store.types import JSONDocument

revision = "0001_baseline"
down_revision: str | None = None
branch_labels = None
depends_on = None


# shape: the first revision declares every table, one operation per table or index
def upgrade() -> None:
    op.create_table(
        "ai_models",
        sa.Column("model_id", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("task", sa.String(length=32), nullable=False),
        sa.Column("parameters", JSONDocument, nullable=False),
        sa.Column("credentials", JSONDocument, nullable=True),
        sa.Column("tiers", JSONDocument, nullable=True),
        sa.Column("features", JSONDocument, nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.CheckConstraint(
            "task IN ('recommendation', 'playlist_generation', 'audio_analysis', 'chat')",
            name=op.f("ck_ai_models_task"),
        ),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_ai_models")),
    )
    op.create_index(
        "uq_ai_models_default_per_task",
        "ai_models",
        ["task"],
        unique=True,
        postgresql_where=sa.text("is_default"),
        sqlite_where=sa.text("is_default"),
    )
    op.create_table(
        "artists",
        sa.Column("artist_id", sa.String(length=22), nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("genres", JSONDocument, nullable=True),
        sa.Column("popularity", sa.Integer(), nullable=True),
        sa.Column("followers", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("followers >= 0", name=op.f("ck_artists_followers")),
        sa.CheckConstraint(
            "popularity >= 0 AND popularity <= 100", name=op.f("ck_artists_popularity")
        ),
        sa.PrimaryKeyConstraint("artist_id", name=op.f("pk_artists")),
    )
    op.create_table(
        "daily_stats",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("plays", sa.BigInteger(), nullable=False),
        sa.Column("listeners", sa.BigInteger(), nullable=False),
        sa.Column("ms_played", sa.BigInteger(), nullable=False),
        sa.Column("skips", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("listeners >= 0", name=op.f("ck_daily_stats_listeners")),
        sa.CheckConstraint("ms_played >= 0", name=op.f("ck_daily_stats_ms_played")),
        sa.CheckConstraint("plays >= 0", name=op.f("ck_daily_stats_plays")),
        sa.CheckConstraint("skips >= 0", name=op.f("ck_daily_stats_skips")),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_daily_stats")),
    )
    op.create_table(
        "users",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("product", sa.String(length=16), server_default="free", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "product IN ('free', 'premium', 'family', 'student')", name=op.f("ck_users_product")
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "albums",
        sa.Column("album_id", sa.String(length=22), nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("album_type", sa.String(length=16), nullable=True),
        sa.Column("artist_id", sa.String(length=22), nullable=False),
        sa.Column("release_date", sa.String(length=10), nullable=True),
        sa.Column("release_date_precision", sa.String(length=5), nullable=True),
        sa.Column("total_tracks", sa.Integer(), nullable=True),
        sa.Column("label", sa.String(length=400), nullable=True),
        sa.CheckConstraint(
            "album_type IN ('album', 'single', 'compilation')", name=op.f("ck_albums_album_type")
        ),
        sa.CheckConstraint(
            "release_date_precision IN ('year', 'month', 'day')", name=op.f("ck_albums_precision")
        ),
        sa.CheckConstraint("total_tracks > 0", name=op.f("ck_albums_total_tracks")),
        sa.ForeignKeyConstraint(
            ["artist_id"], ["artists.artist_id"], name=op.f("fk_albums_artist_id_artists")
        ),
        sa.PrimaryKeyConstraint("album_id", name=op.f("pk_albums")),
    )
    op.create_index(op.f("ix_albums_artist_id"), "albums", ["artist_id"], unique=False)
    op.create_table(
        "playlists",
        sa.Column("playlist_id", sa.String(length=22), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("public", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("collaborative", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("followers", sa.BigInteger(), nullable=True),
        sa.Column("snapshot_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("followers >= 0", name=op.f("ck_playlists_followers")),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.user_id"], name=op.f("fk_playlists_owner_id_users")
        ),
        sa.PrimaryKeyConstraint("playlist_id", name=op.f("pk_playlists")),
    )
    op.create_index(op.f("ix_playlists_owner_id"), "playlists", ["owner_id"], unique=False)
    op.create_table(
        "product_events",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("properties", JSONDocument, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.user_id"],
            name=op.f("fk_product_events_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_product_events")),
    )
    op.create_index(
        "ix_product_events_user_id_occurred_at",
        "product_events",
        ["user_id", "occurred_at"],
        unique=False,
    )
    op.create_table(
        "workspaces",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.user_id"], name=op.f("fk_workspaces_owner_id_users")
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_workspaces")),
    )
    op.create_index(op.f("ix_workspaces_owner_id"), "workspaces", ["owner_id"], unique=False)
    op.create_table(
        "comments",
        sa.Column("comment_id", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("playlist_id", sa.String(length=22), nullable=True),
        sa.Column("author_id", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["users.user_id"],
            name=op.f("fk_comments_author_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["playlist_id"],
            ["playlists.playlist_id"],
            name=op.f("fk_comments_playlist_id_playlists"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.workspace_id"],
            name=op.f("fk_comments_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("comment_id", name=op.f("pk_comments")),
    )
    op.create_index("ix_comments_author_id", "comments", ["author_id"], unique=False)
    op.create_index(op.f("ix_comments_playlist_id"), "comments", ["playlist_id"], unique=False)
    op.create_index(op.f("ix_comments_workspace_id"), "comments", ["workspace_id"], unique=False)
    op.create_table(
        "tracks",
        sa.Column("track_id", sa.String(length=22), nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("album_id", sa.String(length=22), nullable=False),
        sa.Column("artist_id", sa.String(length=22), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("explicit", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("popularity", sa.Integer(), nullable=True),
        sa.Column("track_number", sa.Integer(), nullable=True),
        sa.Column("isrc", sa.String(length=12), nullable=True),
        sa.CheckConstraint("duration_ms > 0", name=op.f("ck_tracks_duration_ms")),
        sa.CheckConstraint(
            "popularity >= 0 AND popularity <= 100", name=op.f("ck_tracks_popularity")
        ),
        sa.CheckConstraint("track_number > 0", name=op.f("ck_tracks_track_number")),
        sa.ForeignKeyConstraint(
            ["album_id"], ["albums.album_id"], name=op.f("fk_tracks_album_id_albums")
        ),
        sa.ForeignKeyConstraint(
            ["artist_id"], ["artists.artist_id"], name=op.f("fk_tracks_artist_id_artists")
        ),
        sa.PrimaryKeyConstraint("track_id", name=op.f("pk_tracks")),
    )
    op.create_index(op.f("ix_tracks_album_id"), "tracks", ["album_id"], unique=False)
    op.create_index(op.f("ix_tracks_artist_id"), "tracks", ["artist_id"], unique=False)
    op.create_table(
        "workspace_members",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role IN ('owner', 'editor', 'viewer')", name=op.f("ck_workspace_members_role")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.user_id"],
            name=op.f("fk_workspace_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.workspace_id"],
            name=op.f("fk_workspace_members_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "user_id", name=op.f("pk_workspace_members")),
    )
    op.create_index("ix_workspace_members_user_id", "workspace_members", ["user_id"], unique=False)
    op.create_table(
        "workspace_playlists",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("playlist_id", sa.String(length=22), nullable=False),
        sa.Column("added_by", sa.String(length=64), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["added_by"], ["users.user_id"], name=op.f("fk_workspace_playlists_added_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["playlist_id"],
            ["playlists.playlist_id"],
            name=op.f("fk_workspace_playlists_playlist_id_playlists"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.workspace_id"],
            name=op.f("fk_workspace_playlists_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "playlist_id", name=op.f("pk_workspace_playlists")),
    )
    op.create_index(
        "ix_workspace_playlists_playlist_id", "workspace_playlists", ["playlist_id"], unique=False
    )
    op.create_table(
        "audio_features",
        sa.Column("track_id", sa.String(length=22), nullable=False),
        sa.Column("danceability", sa.Float(), nullable=False),
        sa.Column("energy", sa.Float(), nullable=False),
        sa.Column("valence", sa.Float(), nullable=False),
        sa.Column("acousticness", sa.Float(), nullable=False),
        sa.Column("instrumentalness", sa.Float(), nullable=False),
        sa.Column("liveness", sa.Float(), nullable=False),
        sa.Column("speechiness", sa.Float(), nullable=False),
        sa.Column("loudness", sa.Float(), nullable=False),
        sa.Column("tempo", sa.Float(), nullable=False),
        sa.Column("key", sa.Integer(), nullable=False),
        sa.Column("mode", sa.Integer(), nullable=False),
        sa.Column("time_signature", sa.Integer(), nullable=False),
        sa.CheckConstraint('"key" >= -1 AND "key" <= 11', name=op.f("ck_audio_features_key")),
        sa.CheckConstraint('"mode" IN (0, 1)', name=op.f("ck_audio_features_mode")),
        sa.CheckConstraint(
            "acousticness >= 0 AND acousticness <= 1",
            name=op.f("ck_audio_features_acousticness_unit"),
        ),
        sa.CheckConstraint(
            "danceability >= 0 AND danceability <= 1",
            name=op.f("ck_audio_features_danceability_unit"),
        ),
        sa.CheckConstraint(
            "energy >= 0 AND energy <= 1", name=op.f("ck_audio_features_energy_unit")
        ),
        sa.CheckConstraint(
            "instrumentalness >= 0 AND instrumentalness <= 1",
            name=op.f("ck_audio_features_instrumentalness_unit"),
        ),
        sa.CheckConstraint(
            "liveness >= 0 AND liveness <= 1", name=op.f("ck_audio_features_liveness_unit")
        ),
        sa.CheckConstraint(
            "speechiness >= 0 AND speechiness <= 1", name=op.f("ck_audio_features_speechiness_unit")
        ),
        sa.CheckConstraint("tempo > 0", name=op.f("ck_audio_features_tempo")),
        sa.CheckConstraint(
            "time_signature >= 3 AND time_signature <= 7",
            name=op.f("ck_audio_features_time_signature"),
        ),
        sa.CheckConstraint(
            "valence >= 0 AND valence <= 1", name=op.f("ck_audio_features_valence_unit")
        ),
        sa.ForeignKeyConstraint(
            ["track_id"],
            ["tracks.track_id"],
            name=op.f("fk_audio_features_track_id_tracks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("track_id", name=op.f("pk_audio_features")),
    )
    op.create_table(
        "listening_events",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("played_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("track_id", sa.String(length=22), nullable=False),
        sa.Column("ms_played", sa.Integer(), nullable=False),
        sa.Column("context_uri", sa.String(length=200), nullable=True),
        sa.Column("platform", sa.String(length=64), nullable=True),
        sa.Column("reason_start", sa.String(length=32), nullable=True),
        sa.Column("reason_end", sa.String(length=32), nullable=True),
        sa.Column("shuffle", sa.Boolean(), nullable=True),
        sa.Column("skipped", sa.Boolean(), nullable=True),
        sa.CheckConstraint("ms_played >= 0", name=op.f("ck_listening_events_ms_played")),
        sa.ForeignKeyConstraint(
            ["track_id"], ["tracks.track_id"], name=op.f("fk_listening_events_track_id_tracks")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.user_id"],
            name=op.f("fk_listening_events_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "played_at", name=op.f("pk_listening_events")),
    )
    op.create_index(
        "ix_listening_events_track_id_played_at",
        "listening_events",
        ["track_id", "played_at"],
        unique=False,
    )
    op.create_table(
        "playlist_tracks",
        sa.Column("playlist_id", sa.String(length=22), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("track_id", sa.String(length=22), nullable=False),
        sa.Column("added_by", sa.String(length=64), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("position >= 0", name=op.f("ck_playlist_tracks_position")),
        sa.ForeignKeyConstraint(
            ["added_by"], ["users.user_id"], name=op.f("fk_playlist_tracks_added_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["playlist_id"],
            ["playlists.playlist_id"],
            name=op.f("fk_playlist_tracks_playlist_id_playlists"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["track_id"], ["tracks.track_id"], name=op.f("fk_playlist_tracks_track_id_tracks")
        ),
        sa.PrimaryKeyConstraint("playlist_id", "position", name=op.f("pk_playlist_tracks")),
    )
    op.create_index(
        op.f("ix_playlist_tracks_added_by"), "playlist_tracks", ["added_by"], unique=False
    )
    op.create_index(
        op.f("ix_playlist_tracks_track_id"), "playlist_tracks", ["track_id"], unique=False
    )
    op.create_table(
        "track_daily_stats",
        sa.Column("track_id", sa.String(length=22), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("plays", sa.BigInteger(), nullable=False),
        sa.Column("listeners", sa.BigInteger(), nullable=False),
        sa.Column("ms_played", sa.BigInteger(), nullable=False),
        sa.Column("skips", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("listeners >= 0", name=op.f("ck_track_daily_stats_listeners")),
        sa.CheckConstraint("ms_played >= 0", name=op.f("ck_track_daily_stats_ms_played")),
        sa.CheckConstraint("plays >= 0", name=op.f("ck_track_daily_stats_plays")),
        sa.CheckConstraint("skips >= 0", name=op.f("ck_track_daily_stats_skips")),
        sa.ForeignKeyConstraint(
            ["track_id"],
            ["tracks.track_id"],
            name=op.f("fk_track_daily_stats_track_id_tracks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("track_id", "day", name=op.f("pk_track_daily_stats")),
    )


def downgrade() -> None:
    raise NotImplementedError("the first revision is not undone: drop the tenant instead")
