"""Dates and timestamps at the ends of the calendar (``0001-01-01``, ``9999-12-31``):
sentinels many exports use ("valid until 9999-12-31", Go's zero time), stored as given on
both backends, not as PostgreSQL's ``-infinity`` and ``infinity``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Date, DateTime, MetaData, String, Table, select, text

from tenancy_fixtures import FixtureManager, Settings
from tests.cleanup import drop_every_tenant

TENANT = "calendar_ends"

#: Each row as written in the file, and the values it must read back as.
ROWS: list[tuple[dict[str, str], tuple[date, datetime, datetime]]] = [
    (
        {
            "period_id": "first",
            "day": "0001-01-01",
            "at": "0001-01-01T00:00:00",
            "at_utc": "0001-01-01T00:00:00Z",
        },
        (date(1, 1, 1), datetime(1, 1, 1), datetime(1, 1, 1, tzinfo=UTC)),
    ),
    (
        {
            "period_id": "last",
            "day": "9999-12-31",
            "at": "9999-12-31T23:59:59.999999",
            "at_utc": "9999-12-31T23:59:59.999999+00:00",
        },
        (
            date(9999, 12, 31),
            datetime(9999, 12, 31, 23, 59, 59, 999999),
            datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        ),
    ),
]


def _metadata() -> MetaData:
    metadata = MetaData()
    Table(
        "periods",
        metadata,
        Column("period_id", String(10), primary_key=True),
        Column("day", Date, nullable=False),
        Column("at", DateTime, nullable=False),
        Column("at_utc", DateTime(timezone=True), nullable=False),
    )
    return metadata


@pytest.fixture
async def periods(settings: Settings) -> AsyncIterator[FixtureManager]:
    async with FixtureManager(settings, metadata=_metadata()) as manager:
        await drop_every_tenant(manager)
        yield manager
        await drop_every_tenant(manager)


def _set(tmp_path: Path, rows: list[dict[str, str]]) -> Path:
    source = tmp_path / f"periods_{len(list(tmp_path.iterdir()))}"
    source.mkdir()
    (source / "periods.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return source


async def _stored(manager: FixtureManager) -> dict[str, tuple[Any, ...]]:
    async with manager.store.session(TENANT, readonly=True) as session:
        table = session.metadata.tables["tenant.periods"]
        rows = await session.connection.execute(
            select(table.c.period_id, table.c.day, table.c.at, table.c.at_utc)
        )
        return {row.period_id: tuple(row)[1:] for row in rows}


async def _infinite(manager: FixtureManager) -> list[str]:
    """The periods PostgreSQL holds an infinity for (none on SQLite, which has none)."""
    if manager.store.backend != "postgresql":
        return []
    async with manager.store.session(TENANT, readonly=True) as session:
        schema = session.connection.dialect.identifier_preparer.quote(
            manager.store.storage_name(TENANT)
        )
        found = await session.connection.execute(
            text(
                f"SELECT period_id FROM {schema}.periods "
                "WHERE NOT (isfinite(day) AND isfinite(at) AND isfinite(at_utc)) "
                "ORDER BY period_id"
            )
        )
        return list(found.scalars())


@pytest.mark.parametrize("load_path", ["keys-kept", "keys-deferred"], indirect=True)
async def test_the_calendars_first_and_last_day_load_as_given_not_as_infinities(
    periods: FixtureManager, tmp_path: Path, load_path: str
) -> None:
    """``0001-01-01`` and ``9999-12-31 23:59:59.999999`` (dates, naive and UTC timestamps)
    are stored as those values, read back as given (a UTC one stays aware), and a
    reload with a changed row (a merge) keeps them; validate-data agrees."""
    del load_path
    await periods.create_tenant(TENANT)
    await periods.load_fixtures(TENANT, _set(tmp_path, [given for given, _ in ROWS]))

    assert await _infinite(periods) == []
    assert await _stored(periods) == {given["period_id"]: want for given, want in ROWS}

    changed = [dict(ROWS[0][0], day="2024-01-02"), ROWS[1][0]]
    await periods.load_fixtures(TENANT, _set(tmp_path, changed), force=True)

    assert await _infinite(periods) == []
    assert (await _stored(periods))["last"] == ROWS[1][1]
    report = await periods.validate_tenant(TENANT, recompute_checksums=True)
    assert report.problems == []
