"""Daily listening aggregates, computed in the database from ``listening_events``.

``track_daily_stats`` (per track and UTC day) and ``daily_stats`` (per UTC day) hold
plays, distinct listeners, milliseconds played and skips. :func:`refresh_daily_stats`
recomputes them for given days in the caller's transaction; :data:`DAILY_STATS` is the
derivation :func:`tenancy_fixtures.spotify.register` registers with the engine, so
that loaders that derive (source files, the analytics loader) refresh the days of the
listening events they wrote.

The days touched are rewritten whole (delete, then ``INSERT ... SELECT ... GROUP BY``)
rather than upserted: on a never-loaded PostgreSQL tenant the load runs with primary
keys dropped, so there is no key an ``ON CONFLICT`` could name; rewriting a day needs
none and gives the same rows on every run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Table, case, delete, false, func, insert, or_, select
from sqlalchemy.sql.elements import ColumnElement

from tenancy_fixtures.loading.derived import Derivation
from tenancy_fixtures.store.base import TENANT_SCHEMA, TenantSession
from tenancy_fixtures.store.functions import bytewise, utc_date

__all__ = ["DAILY_STATS", "STREAM_MS", "refresh_daily_stats"]

_EVENTS = "listening_events"
#: Milliseconds a play must last to count as a stream.
STREAM_MS = 30_000


def _table(session: TenantSession, name: str) -> Table:
    return session.metadata.tables[f"{TENANT_SCHEMA}.{name}"]


def _spans(days: Iterable[date]) -> list[tuple[date, date]]:
    """Sorted days as inclusive runs of consecutive days."""
    runs: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _on_days(column: ColumnElement[date], spans: Sequence[tuple[date, date]]) -> Any:
    if not spans:
        return false()
    return or_(
        *(
            column.between(first, last) if first != last else column == first
            for first, last in spans
        )
    )


async def refresh_daily_stats(
    session: TenantSession, days: Iterable[date] | None = None
) -> dict[str, int]:
    """Recompute ``track_daily_stats`` and ``daily_stats`` from ``listening_events`` for
    ``days`` (UTC dates; ``None``: every day), in the session's transaction.

    Per track and day: plays, distinct listeners, milliseconds played, skips (events
    with ``skipped`` true), streams (plays of at least :data:`STREAM_MS`);
    ``daily_stats`` the same over all tracks. Running it again gives the same rows.
    Returns the rows written per table.
    """
    events = _table(session, _EVENTS)
    per_track = _table(session, "track_daily_stats")
    per_day = _table(session, "daily_stats")
    day = utc_date(events.c.played_at)
    spans = None if days is None else _spans(days)
    if spans is not None and not spans:
        return {per_track.name: 0, per_day.name: 0}
    measures = (
        func.count().label("plays"),
        func.count(bytewise(events.c.user_id).distinct()).label("listeners"),
        func.coalesce(func.sum(events.c.ms_played), 0).label("ms_played"),
        func.coalesce(func.sum(case((events.c.skipped.is_(True), 1), else_=0)), 0).label("skips"),
        func.coalesce(func.sum(case((events.c.ms_played >= STREAM_MS, 1), else_=0)), 0).label(
            "streams"
        ),
    )
    written: dict[str, int] = {}
    track = bytewise(events.c.track_id)
    for target, keys in ((per_track, (track, day)), (per_day, (day,))):
        clear = delete(target)
        query = select(*keys, *measures).select_from(events)
        if spans is not None:
            clear = clear.where(_on_days(target.c.day, spans))
            query = query.where(_on_days(day, spans))
        query = query.group_by(*keys)
        await session.connection.execute(clear)
        columns = [c.name for c in target.columns]
        result = await session.connection.execute(insert(target).from_select(columns, query))
        written[target.name] = max(result.rowcount, 0)
    return written


def _utc_date(value: Any) -> date:
    """The UTC date of a ``played_at`` value as the store receives it."""
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo is not None else value).date()
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    raise TypeError(f"played_at of unexpected type {type(value).__name__}")


#: The daily aggregates follow the listening events: each event touches its UTC day.
DAILY_STATS = Derivation(
    _EVENTS,
    refresh_daily_stats,
    column="played_at",
    part=_utc_date,
    tables=("track_daily_stats", "daily_stats"),
)
