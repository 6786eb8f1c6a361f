"""Daily listening aggregates, computed in the database from ``listening_events``.

``track_daily_stats`` (per track and UTC day) and ``daily_stats`` (per UTC day) hold
plays, distinct listeners, milliseconds played and skips. :func:`refresh_daily_stats`
recomputes them for given days in the caller's transaction; :class:`RefreshesDailyStats`
is a DataLoader that calls it for the days of the listening events it wrote.

The days touched are rewritten whole (delete, then ``INSERT ... SELECT ... GROUP BY``)
rather than upserted: on a never-loaded PostgreSQL tenant the load runs with primary
keys dropped, so there is no key an ``ON CONFLICT`` could name; rewriting a day needs
none and gives the same rows on every run.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, Table, case, delete, false, func, insert, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from tenancy_fixtures.fixtures.context import LoadContext
from tenancy_fixtures.loading.data_loader import DataLoader
from tenancy_fixtures.store.base import TENANT_SCHEMA, TenantSession

__all__ = ["RefreshesDailyStats", "refresh_daily_stats", "utc_day"]

_EVENTS = "listening_events"


class utc_day(FunctionElement[date]):
    """The UTC calendar date of a timestamp column, on every backend.

    PostgreSQL stores ``timestamptz``; SQLite stores SQLAlchemy's UTC text
    (``2026-01-01 12:00:00.000000``), which ``date()`` reads (and an explicit offset,
    if some other writer left one, is applied).
    """

    type = Date()
    inherit_cache = True
    name = "utc_day"


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(({compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC') AS DATE)"


@compiles(utc_day, "sqlite")
def _utc_day_sqlite(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(utc_day)
def _utc_day_default(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS DATE)"


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
    with ``skipped`` true); ``daily_stats`` the same over all tracks. Running it again
    gives the same rows. Returns the rows written per table.
    """
    events = _table(session, _EVENTS)
    per_track = _table(session, "track_daily_stats")
    per_day = _table(session, "daily_stats")
    day = utc_day(events.c.played_at)
    spans = None if days is None else _spans(days)
    if spans is not None and not spans:
        return {per_track.name: 0, per_day.name: 0}
    measures = (
        func.count().label("plays"),
        func.count(events.c.user_id.distinct()).label("listeners"),
        func.coalesce(func.sum(events.c.ms_played), 0).label("ms_played"),
        func.coalesce(func.sum(case((events.c.skipped.is_(True), 1), else_=0)), 0).label("skips"),
    )
    written: dict[str, int] = {}
    for target, keys in ((per_track, (events.c.track_id, day)), (per_day, (day,))):
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


class RefreshesDailyStats(DataLoader):
    """A DataLoader that, after writing ``listening_events``, recomputes the daily
    aggregates of the days those events fall on (all days on a first load or a
    replacement). Source loaders that produce listening events can derive from it."""

    #: What the last ``apply`` recomputed: rows per aggregate table.
    refreshed: dict[str, int]
    #: UTC days of the listening events being written (``None``: all days are redone).
    _days: set[date] | None = None
    #: Position of ``played_at`` in the rows the store receives.
    _played_at = 0

    async def apply(self, session: TenantSession, context: LoadContext) -> Mapping[str, int]:
        """Write the rows, then refresh the aggregates of the days the events touch."""
        self.refreshed = {}
        self._days = None
        loads_events = any(f.table == _EVENTS for f in self.files)
        if loads_events:
            events = _table(session, _EVENTS)
            self._played_at = [c.name for c in events.columns].index("played_at")
            mode = self.modes.get(_EVENTS, "auto")
            if mode == "skip" and not await session.is_empty(events):
                loads_events = False
            # A first load (or a replacement) touches every day there is: recompute all.
            elif mode != "replace" and not await session.is_empty(events):
                self._days = set()
        counts = await super().apply(session, context)
        if loads_events:
            days = self._days
            if days is not None and not days and counts.get(_EVENTS):
                # Rows went in but no day was seen on their way: never leave stale days.
                days = None
            self.refreshed = await refresh_daily_stats(session, days)
        return counts

    def _reporting(
        self, table: str, batches: AsyncIterator[Sequence[tuple[Any, ...]]]
    ) -> AsyncGenerator[Sequence[tuple[Any, ...]], None]:
        if table == _EVENTS and self._days is not None:
            batches = self._noting_days(batches)
        return super()._reporting(table, batches)

    async def _noting_days(
        self, batches: AsyncIterator[Sequence[tuple[Any, ...]]]
    ) -> AsyncGenerator[Sequence[tuple[Any, ...]], None]:
        days, position = self._days, self._played_at
        assert days is not None
        async for batch in batches:
            days.update({_utc_date(row[position]) for row in batch})
            yield batch
