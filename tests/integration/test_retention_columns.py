"""Retention of a user's schema on both backends: an event time declared on a timestamp
without a time zone, or with one, expires at the same instant, whatever zone ``now``
is given in; a column that holds no time is refused naming it; rows of other tables
referring to expired events go with them, or lose the pointer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, DateTime, ForeignKey, Integer, MetaData, String, Table, select

from tenancy_fixtures import FixtureManager, Settings, TenantFixture
from tenancy_fixtures.errors import ConfigError
from tenancy_fixtures.store.base import TENANT_SCHEMA
from tests.cleanup import drop_every_tenant

TENANT = "expiring"
EVENT_TIME = {"retention": "event_time"}
#: Noon at UTC+5, 07:00 UTC: with 30 days kept, what happened before 2024-05-02 07:00
#: UTC has expired.
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=5)))


def _events() -> MetaData:
    metadata = MetaData()
    Table(
        "visits",
        metadata,
        Column("visit_id", Integer, primary_key=True),
        Column("at", DateTime, nullable=False, info=EVENT_TIME),
    )
    Table(
        "logins",
        metadata,
        Column("login_id", Integer, primary_key=True),
        Column("at", DateTime(timezone=True), nullable=False, info=EVENT_TIME),
    )
    return metadata


def _write(directory: Path, table: str, rows: list[dict[str, object]]) -> None:
    directory.mkdir(exist_ok=True)
    text = "".join(json.dumps(row) + "\n" for row in rows)
    (directory / f"{table}.jsonl").write_text(text, encoding="utf-8")


@pytest.fixture
async def events(settings: Settings, tmp_path: Path) -> AsyncIterator[FixtureManager]:
    """A tenant keeping 30 days, with an event an hour either side of the cutoff in a
    timestamp column without a time zone (UTC wall times) and in one with a zone."""
    rows = tmp_path / "rows"
    early, late = "2024-05-02T06:00:00", "2024-05-02T08:00:00"
    _write(rows, "visits", [{"visit_id": 1, "at": early}, {"visit_id": 2, "at": late}])
    zoned = [{"login_id": 1, "at": f"{early}+00:00"}, {"login_id": 2, "at": f"{late}+00:00"}]
    _write(rows, "logins", zoned)
    async with FixtureManager(settings, metadata=_events()) as manager:
        await drop_every_tenant(manager)
        await manager.create_tenant(
            TenantFixture(tenant_id=TENANT, settings={"retention_days": 30})
        )
        await manager.load_fixtures(TENANT, rows)
        yield manager
        await drop_every_tenant(manager)


async def _ids(manager: FixtureManager) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    async with manager.store.session(TENANT, readonly=True) as session:
        for name in ("visits", "logins"):
            table = manager.store.metadata.tables[f"{TENANT_SCHEMA}.{name}"]
            (key,) = table.primary_key.columns
            rows = await session.connection.execute(select(key).order_by(key))
            found[name] = list(rows.scalars())
    return found


async def test_naive_and_zoned_event_times_expire_at_the_same_instant(
    events: FixtureManager,
) -> None:
    """The event an hour before the cutoff goes from each table, the one an hour after
    stays, on both backends. On PostgreSQL the naive column failed every purge, dry runs
    too (its driver refused the aware cutoff: a StorageError); on SQLite ``now``'s offset
    was dropped, so the cutoff was five hours late and both logins went."""
    dry = (await events.purge_expired([TENANT], dry_run=True, now=NOW))[0]
    done = (await events.purge_expired([TENANT], now=NOW))[0]

    assert {"visits": 1, "logins": 1} == dry.purged == done.purged
    assert {"visits": [2], "logins": [2]} == await _ids(events)
    assert done.cutoff == datetime(2024, 5, 2, 7, 0, tzinfo=UTC)
    validation = await events.validate_tenant(TENANT)
    assert validation.ok, validation.problems


async def test_an_event_time_declared_on_a_column_holding_no_time_is_refused_naming_it(
    settings: Settings, tmp_path: Path
) -> None:
    """A text column declared the event time: a configuration error naming it, nothing
    purged (it was a StorageError from the driver on PostgreSQL, a comparison of the
    text with a time's text on SQLite)."""
    metadata = MetaData()
    Table(
        "notes",
        metadata,
        Column("note_id", Integer, primary_key=True),
        Column("written", String(40), info=EVENT_TIME),
    )
    rows = tmp_path / "notes"
    _write(rows, "notes", [{"note_id": 1, "written": "2020-01-01T00:00:00Z"}])
    async with FixtureManager(settings, metadata=metadata) as manager:
        await drop_every_tenant(manager)
        await manager.create_tenant(
            TenantFixture(tenant_id=TENANT, settings={"retention_days": 30})
        )
        await manager.load_fixtures(TENANT, rows)
        for dry_run in (True, False):
            with pytest.raises(ConfigError) as refused:
                await manager.purge_expired([TENANT], dry_run=dry_run, now=NOW)
            assert "notes.written is declared the event time" in str(refused.value)
        async with manager.store.session(TENANT, readonly=True) as session:
            notes = manager.store.metadata.tables[f"{TENANT_SCHEMA}.notes"]
            kept = await session.connection.execute(select(notes.c.note_id))
            assert [1] == list(kept.scalars())
        await drop_every_tenant(manager)


def _orders() -> MetaData:
    """Orders (the events), their items and the items' notes (keys that cannot be
    NULL), and reviews (a key that may be NULL)."""
    metadata = MetaData()
    Table(
        "orders",
        metadata,
        Column("order_id", Integer, primary_key=True),
        Column("placed_at", DateTime(timezone=True), nullable=False, info=EVENT_TIME),
    )
    Table(
        "order_items",
        metadata,
        Column("item_id", Integer, primary_key=True),
        Column("order_id", Integer, ForeignKey("orders.order_id"), nullable=False),
    )
    Table(
        "item_notes",
        metadata,
        Column("note_id", Integer, primary_key=True),
        Column("item_id", Integer, ForeignKey("order_items.item_id"), nullable=False),
    )
    Table(
        "reviews",
        metadata,
        Column("review_id", Integer, primary_key=True),
        Column("order_id", Integer, ForeignKey("orders.order_id")),
    )
    return metadata


async def test_rows_referring_to_expired_events_go_with_them_or_lose_the_pointer(
    settings: Settings, tmp_path: Path
) -> None:
    """The old order goes with its item and the item's note (their keys cannot be
    NULL), as the dry run counted; its review stays without the pointer; the new order
    keeps everything; the tenant still validates. The purge failed on the foreign key every time (a
    StorageError), and with ON DELETE CASCADE the database would have removed them
    unrecorded, failing validate-data."""
    rows = tmp_path / "orders"
    old, new = "2024-01-01T00:00:00+00:00", "2024-05-31T00:00:00+00:00"
    _write(rows, "orders", [{"order_id": 1, "placed_at": old}, {"order_id": 2, "placed_at": new}])
    _write(rows, "order_items", [{"item_id": 10, "order_id": 1}, {"item_id": 11, "order_id": 2}])
    _write(rows, "item_notes", [{"note_id": 100, "item_id": 10}, {"note_id": 101, "item_id": 11}])
    _write(rows, "reviews", [{"review_id": 7, "order_id": 1}, {"review_id": 8, "order_id": 2}])
    async with FixtureManager(settings, metadata=_orders()) as manager:
        await drop_every_tenant(manager)
        await manager.create_tenant(
            TenantFixture(tenant_id=TENANT, settings={"retention_days": 30})
        )
        await manager.load_fixtures(TENANT, rows)

        dry = (await manager.purge_expired([TENANT], dry_run=True, now=NOW))[0]
        report = (await manager.purge_expired([TENANT], now=NOW))[0]

        assert {"orders": 1, "order_items": 1, "item_notes": 1} == dry.purged == report.purged
        assert {
            "orders": [(2,)],
            "order_items": [(11, 2)],
            "item_notes": [(101, 11)],
            "reviews": [(7, None), (8, 2)],
        } == await _rows_of(manager, ["orders", "order_items", "item_notes", "reviews"])
        validation = await manager.validate_tenant(TENANT, recompute_checksums=True)
        assert validation.ok, validation.problems
        await drop_every_tenant(manager)


async def _rows_of(manager: FixtureManager, names: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    found: dict[str, list[tuple[Any, ...]]] = {}
    async with manager.store.session(TENANT, readonly=True) as session:
        for name in names:
            table = manager.store.metadata.tables[f"{TENANT_SCHEMA}.{name}"]
            columns = [c for c in table.columns if c.name != "placed_at"]
            query = select(*columns).order_by(*table.primary_key.columns)
            found[name] = [tuple(row) for row in await session.connection.execute(query)]
    return found
