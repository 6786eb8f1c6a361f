"""Count streams in the daily aggregates: plays of at least 30 seconds.

A play counts as a stream (for charts and royalties) once 30 seconds of it were
played. ``track_daily_stats`` and ``daily_stats`` gain ``streams``, backfilled from
``listening_events`` a range of days at a time: each range is one ``UPDATE`` the
database works out itself, so memory stays flat however many events a tenant holds.

Revision ID: 0003_daily_streams
Revises: 0002_retention_indexes
Create Date: 2026-12-05
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from alembic import op

from tenancy_fixtures.store.functions import utc_date

revision = "0003_daily_streams"
down_revision: str | None = "0002_retention_indexes"
branch_labels = None
depends_on = None

#: Milliseconds a play must last to count as a stream.
STREAM_MS = 30_000
#: Days backfilled per statement.
DAYS_PER_BATCH = 31
_AGGREGATES = ("track_daily_stats", "daily_stats")


def upgrade() -> None:
    for table in _AGGREGATES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("streams", sa.BigInteger(), server_default="0", nullable=False)
            )
            batch.create_check_constraint(f"ck_{table}_streams", "streams >= 0")
    _backfill()


def downgrade() -> None:
    for table in _AGGREGATES:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"ck_{table}_streams", type_="check")
            batch.drop_column("streams")


def _tables() -> tuple[sa.Table, sa.Table, sa.Table]:
    md = sa.MetaData()
    events = sa.Table(
        "listening_events",
        md,
        sa.Column("track_id", sa.String),
        sa.Column("played_at", sa.DateTime(timezone=True)),
        sa.Column("ms_played", sa.Integer),
    )
    per_track = sa.Table(
        "track_daily_stats",
        md,
        sa.Column("track_id", sa.String),
        sa.Column("day", sa.Date),
        sa.Column("streams", sa.BigInteger),
    )
    per_day = sa.Table(
        "daily_stats", md, sa.Column("day", sa.Date), sa.Column("streams", sa.BigInteger)
    )
    return events, per_track, per_day


def _backfill() -> None:
    events, per_track, per_day = _tables()
    connection = op.get_bind()
    last: date | None = None
    while True:
        days = sa.select(per_day.c.day).order_by(per_day.c.day).limit(DAYS_PER_BATCH)
        if last is not None:
            days = days.where(per_day.c.day > last)
        batch = connection.execute(days).scalars().all()
        if not batch:
            return
        first, last = batch[0], batch[-1]
        start = datetime.combine(first, time(), tzinfo=UTC)
        end = datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC)
        day = utc_date(events.c.played_at)
        counted = (
            sa.select(events.c.track_id, day.label("day"), sa.func.count().label("streams"))
            .where(
                events.c.ms_played >= STREAM_MS,
                events.c.played_at >= start,
                events.c.played_at < end,
            )
            .group_by(events.c.track_id, day)
            .subquery()
        )
        connection.execute(
            sa.update(per_track)
            .values(streams=counted.c.streams)
            .where(per_track.c.track_id == counted.c.track_id, per_track.c.day == counted.c.day)
        )
        total = (
            sa.select(sa.func.coalesce(sa.func.sum(per_track.c.streams), 0))
            .where(per_track.c.day == per_day.c.day)
            .scalar_subquery()
        )
        connection.execute(
            sa.update(per_day).values(streams=total).where(per_day.c.day.between(first, last))
        )
