"""The built-in tenant schema: the Spotify-style AI agent platform's tables.

Tables are declared in the placeholder schema :data:`TENANT_SCHEMA`; every statement
is executed with a ``schema_translate_map`` that names the real tenant schema (or the
tenant's own SQLite file), so no statement ever relies on a ``search_path``.
Natural keys are primary keys: Spotify ids for the catalogue, the application's
own ids for users, models and workspaces.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from tenancy_fixtures.loading.rules import FORMAT_INFO
from tenancy_fixtures.store.base import TENANT_SCHEMA
from tenancy_fixtures.store.column_info import (
    ENCRYPTED_INFO,
    EVENT_TIME,
    PERSONAL_INFO,
    RETENTION_INFO,
    SUBJECT_INFO,
)
from tenancy_fixtures.store.types import JSONDocument

__all__ = ["FORMAT_INFO", "TENANT_SCHEMA", "is_spotify_table", "spotify_metadata"]


_NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_JSON = JSONDocument
_TS = DateTime(timezone=True)
_SPOTIFY_ID = 22


_SPOTIFY = {FORMAT_INFO: "spotify_id"}
#: When the event a row records happened: what retention_days is measured against.
_EVENT_TIME = {RETENTION_INFO: EVENT_TIME}
#: Personal data (pseudonymised in exports, erased with its subject); a user is the
#: data subject; a row holding a user's id is that user's, and a playlist's tracks
#: belong to whoever the playlist belongs to.
_PERSONAL = {PERSONAL_INFO: True}
_SUBJECT = {SUBJECT_INFO: "id"}
_SUBJECTS = {SUBJECT_INFO: "reference"}
_THROUGH = {SUBJECT_INFO: "through"}


def _format(name: str) -> dict[str, str]:
    return {FORMAT_INFO: name}


def _daily_measures() -> list[Column[int] | CheckConstraint]:
    """The measures of a daily aggregate: counts that are never negative.

    ``streams`` (plays of at least 30 s) came with revision 0003_daily_streams, which
    added it last with a default for the rows already there.
    """
    names = ("plays", "listeners", "ms_played", "skips")
    columns: list[Column[int] | CheckConstraint] = [
        Column(name, BigInteger, nullable=False) for name in names
    ]
    columns.append(Column("streams", BigInteger, nullable=False, default=0, server_default="0"))
    return columns + [CheckConstraint(f"{name} >= 0", name=name) for name in (*names, "streams")]


def _unit_interval(*columns: str) -> list[CheckConstraint]:
    return [CheckConstraint(f"{c} >= 0 AND {c} <= 1", name=f"{c}_unit") for c in columns]


# shape: the domain's table declarations, one Table(...) statement per table, no logic
def spotify_metadata() -> MetaData:
    """Build a fresh ``MetaData`` holding the tenant tables of the Spotify domain."""
    md = MetaData(schema=TENANT_SCHEMA, naming_convention=_NAMING)

    Table(
        "users",
        md,
        Column("user_id", String(64), primary_key=True, info=_SUBJECT),
        Column("display_name", String(200), nullable=False, info=_PERSONAL),
        # Nullable: users named by Spotify objects (playlist owners) carry no e-mail.
        Column("email", String(320), info={**_format("email"), **_PERSONAL}),
        Column("country", String(2), info=_format("country")),
        Column("product", String(16), nullable=False, default="free", server_default="free"),
        Column("created_at", _TS),
        UniqueConstraint("email"),
        CheckConstraint("product IN ('free', 'premium', 'family', 'student')", name="product"),
    )
    Table(
        "artists",
        md,
        Column("artist_id", String(_SPOTIFY_ID), primary_key=True, info=_SPOTIFY),
        Column("name", String(400), nullable=False),
        Column("genres", _JSON),
        Column("popularity", Integer),
        Column("followers", BigInteger),
        CheckConstraint("popularity >= 0 AND popularity <= 100", name="popularity"),
        CheckConstraint("followers >= 0", name="followers"),
    )
    Table(
        "albums",
        md,
        Column("album_id", String(_SPOTIFY_ID), primary_key=True, info=_SPOTIFY),
        Column("name", String(400), nullable=False),
        # Nullable: exports and playlist datasets name an album without these.
        Column("album_type", String(16)),
        Column("artist_id", ForeignKey("artists.artist_id"), nullable=False, index=True),
        Column("release_date", String(10), info=_format("release_date")),
        Column("release_date_precision", String(5)),
        Column("total_tracks", Integer),
        Column("label", String(400)),
        CheckConstraint("album_type IN ('album', 'single', 'compilation')", name="album_type"),
        CheckConstraint("release_date_precision IN ('year', 'month', 'day')", name="precision"),
        CheckConstraint("total_tracks > 0", name="total_tracks"),
    )
    Table(
        "tracks",
        md,
        Column("track_id", String(_SPOTIFY_ID), primary_key=True, info=_SPOTIFY),
        Column("name", String(400), nullable=False),
        Column("album_id", ForeignKey("albums.album_id"), nullable=False, index=True),
        Column("artist_id", ForeignKey("artists.artist_id"), nullable=False, index=True),
        # Nullable: a streaming-history export names a track without its duration.
        Column("duration_ms", Integer),
        Column("explicit", Boolean, nullable=False, default=False, server_default=text("false")),
        Column("popularity", Integer),
        Column("track_number", Integer),
        Column("isrc", String(12), info=_format("isrc")),
        CheckConstraint("duration_ms > 0", name="duration_ms"),
        CheckConstraint("popularity >= 0 AND popularity <= 100", name="popularity"),
        CheckConstraint("track_number > 0", name="track_number"),
    )
    Table(
        "audio_features",
        md,
        Column("track_id", ForeignKey("tracks.track_id", ondelete="CASCADE"), primary_key=True),
        Column("danceability", Float, nullable=False),
        Column("energy", Float, nullable=False),
        Column("valence", Float, nullable=False),
        Column("acousticness", Float, nullable=False),
        Column("instrumentalness", Float, nullable=False),
        Column("liveness", Float, nullable=False),
        Column("speechiness", Float, nullable=False),
        Column("loudness", Float, nullable=False),
        Column("tempo", Float, nullable=False),
        Column("key", Integer, nullable=False),
        Column("mode", Integer, nullable=False),
        Column("time_signature", Integer, nullable=False),
        *_unit_interval(
            "danceability",
            "energy",
            "valence",
            "acousticness",
            "instrumentalness",
            "liveness",
            "speechiness",
        ),
        CheckConstraint("tempo > 0", name="tempo"),
        CheckConstraint('"key" >= -1 AND "key" <= 11', name="key"),
        CheckConstraint('"mode" IN (0, 1)', name="mode"),
        CheckConstraint("time_signature >= 3 AND time_signature <= 7", name="time_signature"),
    )
    Table(
        "playlists",
        md,
        Column("playlist_id", String(_SPOTIFY_ID), primary_key=True, info=_SPOTIFY),
        Column("owner_id", ForeignKey("users.user_id"), nullable=False, index=True, info=_SUBJECTS),
        Column("name", String(400), nullable=False),
        Column("description", Text, info=_PERSONAL),
        Column("public", Boolean, nullable=False, default=True, server_default=text("true")),
        Column(
            "collaborative", Boolean, nullable=False, default=False, server_default=text("false")
        ),
        Column("followers", BigInteger),
        Column("snapshot_id", String(128)),
        # Nullable: the Web API does not say when a playlist was created.
        Column("created_at", _TS),
        CheckConstraint("followers >= 0", name="followers"),
    )
    Table(
        "playlist_tracks",
        md,
        Column(
            "playlist_id",
            ForeignKey("playlists.playlist_id", ondelete="CASCADE"),
            primary_key=True,
            info=_THROUGH,
        ),
        Column("position", Integer, primary_key=True),
        Column("track_id", ForeignKey("tracks.track_id"), nullable=False, index=True),
        Column("added_by", ForeignKey("users.user_id"), index=True, info=_SUBJECTS),
        # Nullable: the Web API returns null for tracks added long ago; datasets omit it.
        Column("added_at", _TS),
        CheckConstraint("position >= 0", name="position"),
    )
    Table(
        "listening_events",
        md,
        Column(
            "user_id",
            ForeignKey("users.user_id", ondelete="CASCADE"),
            primary_key=True,
            info=_SUBJECTS,
        ),
        Column("played_at", _TS, primary_key=True, info=_EVENT_TIME),
        Column("track_id", ForeignKey("tracks.track_id"), nullable=False),
        Column("ms_played", Integer, nullable=False),
        Column("context_uri", String(200), info=_format("spotify_uri")),
        Column("platform", String(64)),
        Column("reason_start", String(32)),
        Column("reason_end", String(32)),
        Column("shuffle", Boolean),
        Column("skipped", Boolean),
        CheckConstraint("ms_played >= 0", name="ms_played"),
        Index("ix_listening_events_track_id_played_at", "track_id", "played_at"),
        # Retention purges read events by age (revision 0002_retention_indexes).
        Index("ix_listening_events_played_at", "played_at"),
    )
    Table(
        "ai_models",
        md,
        Column("model_id", String(64), primary_key=True),
        Column("provider", String(64), nullable=False),
        Column("model_name", String(128), nullable=False),
        Column("version", String(64), nullable=False),
        Column("task", String(32), nullable=False),
        Column("parameters", _JSON, nullable=False),
        # A reference ({"env": NAME} or {"secret": NAME}) or {"encrypted": Fernet token};
        # never a plain key. The token is stored re-encrypted with the tenant's data key.
        Column("credentials", _JSON, info={ENCRYPTED_INFO: "reference"}),
        # Tiers and features that enable the model; NULL: every tier, no feature needed.
        Column("tiers", _JSON),
        Column("features", _JSON),
        Column("enabled", Boolean, nullable=False, default=True, server_default=text("true")),
        Column("is_default", Boolean, nullable=False, default=False, server_default=text("false")),
        CheckConstraint(
            "task IN ('recommendation', 'playlist_generation', 'audio_analysis', 'chat')",
            name="task",
        ),
        Index(
            "uq_ai_models_default_per_task",
            "task",
            unique=True,
            postgresql_where=text("is_default"),
            sqlite_where=text("is_default"),
        ),
    )
    Table(
        "workspaces",
        md,
        Column("workspace_id", String(64), primary_key=True),
        Column("name", String(200), nullable=False),
        Column("owner_id", ForeignKey("users.user_id"), nullable=False, index=True, info=_SUBJECTS),
        Column("created_at", _TS, nullable=False),
    )
    Table(
        "workspace_members",
        md,
        Column(
            "workspace_id",
            ForeignKey("workspaces.workspace_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column(
            "user_id",
            ForeignKey("users.user_id", ondelete="CASCADE"),
            primary_key=True,
            info=_SUBJECTS,
        ),
        Column("role", String(16), nullable=False),
        Column("joined_at", _TS, nullable=False),
        CheckConstraint("role IN ('owner', 'editor', 'viewer')", name="role"),
        Index("ix_workspace_members_user_id", "user_id"),
    )
    Table(
        "workspace_playlists",
        md,
        Column(
            "workspace_id",
            ForeignKey("workspaces.workspace_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column(
            "playlist_id",
            ForeignKey("playlists.playlist_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column("added_by", ForeignKey("users.user_id"), nullable=False, info=_SUBJECTS),
        Column("added_at", _TS, nullable=False),
        Index("ix_workspace_playlists_playlist_id", "playlist_id"),
    )
    Table(
        "comments",
        md,
        Column("comment_id", String(64), primary_key=True),
        Column(
            "workspace_id",
            ForeignKey("workspaces.workspace_id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        Column("playlist_id", ForeignKey("playlists.playlist_id", ondelete="CASCADE"), index=True),
        Column(
            "author_id",
            ForeignKey("users.user_id", ondelete="CASCADE"),
            nullable=False,
            info=_SUBJECTS,
        ),
        Column("body", Text, nullable=False, info=_PERSONAL),
        Column("created_at", _TS, nullable=False),
        Index("ix_comments_author_id", "author_id"),
    )
    Table(
        "product_events",
        md,
        Column("event_id", String(64), primary_key=True),
        Column(
            "user_id",
            ForeignKey("users.user_id", ondelete="CASCADE"),
            nullable=False,
            info=_SUBJECTS,
        ),
        Column("occurred_at", _TS, nullable=False, info=_EVENT_TIME),
        Column("event_type", String(64), nullable=False),
        Column("properties", _JSON, info=_PERSONAL),
        Index("ix_product_events_user_id_occurred_at", "user_id", "occurred_at"),
        Index("ix_product_events_occurred_at", "occurred_at"),
    )
    Table(
        "track_daily_stats",
        md,
        Column("track_id", ForeignKey("tracks.track_id", ondelete="CASCADE"), primary_key=True),
        Column("day", Date, primary_key=True),
        *_daily_measures(),
    )
    Table(
        "daily_stats",
        md,
        Column("day", Date, primary_key=True),
        *_daily_measures(),
    )
    return md


@cache
def _columns() -> Mapping[str, frozenset[str]]:
    """The columns of each table of the domain (built once)."""
    return {t.name: frozenset(t.columns.keys()) for t in spotify_metadata().sorted_tables}


def is_spotify_table(table: Table) -> bool:
    """Whether ``table`` is this domain's table of its name (it has every column of
    it), not another schema's table that happens to share the name."""
    columns = _columns().get(table.name)
    return columns is not None and columns <= set(table.columns.keys())
