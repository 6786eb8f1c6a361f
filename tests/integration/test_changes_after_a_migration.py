"""Retention and erasure after a migration added a column to a loaded table: the
checksums they record cover the columns the table's loads covered, so validation
still compares the table instead of giving up on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, timedelta

import pytest
from sqlalchemy import Column, Integer, select, text

from tenancy_fixtures import FixtureManager, Settings, TenantFixture
from tenancy_fixtures.spotify.schema import spotify_metadata
from tenancy_fixtures.store import control_plane
from tests.cleanup import drop_every_tenant, drop_shared_tenants
from tests.integration.subject_data import SUBJECT, loaded_tenant

TENANT = "migrated"


@pytest.fixture
async def widened(settings: Settings) -> AsyncIterator[FixtureManager]:
    """A manager whose schema gives ``listening_events`` a column ``volume``; the test
    adds it to its tenant's table once loaded (as a migration would)."""
    metadata = spotify_metadata()
    metadata.tables["tenant.listening_events"].append_column(Column("volume", Integer))
    async with FixtureManager(settings, metadata=metadata) as manager:
        await drop_shared_tenants(manager)
        yield manager
        await drop_shared_tenants(manager)


async def _add_the_column(manager: FixtureManager) -> None:
    async with manager.store.session(TENANT) as session:
        await session.connection.execute(
            text(f"ALTER TABLE {session.schema_name}.listening_events ADD COLUMN volume INTEGER")
        )


async def _loaded_before_the_column(settings: Settings, tenant: TenantFixture) -> None:
    async with FixtureManager(settings) as before:
        await drop_every_tenant(before)
        await before.create_tenant(tenant)
        await before.load_fixtures(TENANT)


async def _purge_columns(manager: FixtureManager, fixture: str) -> list[tuple[str, ...] | None]:
    async with manager.store.control(readonly=True) as conn:
        writes = await control_plane.table_checksums(conn, TENANT)
    return [w.columns for w in writes if w.fixture == fixture and w.table == "listening_events"]


async def test_retention_after_a_column_was_added_keeps_the_table_comparable(
    settings: Settings, widened: FixtureManager
) -> None:
    await _loaded_before_the_column(
        settings, TenantFixture(tenant_id=TENANT, settings={"retention_days": 30})
    )
    await _add_the_column(widened)
    events = widened.store.metadata.tables["tenant.listening_events"]
    async with widened.store.session(TENANT, readonly=True) as session:
        times = sorted((await session.connection.execute(select(events.c.played_at))).scalars())
    middle = times[len(times) // 2]
    now = (middle if middle.tzinfo else middle.replace(tzinfo=UTC)) + timedelta(days=30)

    purged = (await widened.purge_expired([TENANT], now=now))[0]
    report = await widened.validate_tenant(TENANT, recompute_checksums=True)
    recorded = await _purge_columns(widened, "retention")

    assert purged.purged["listening_events"] > 0
    assert report.ok, report.problems
    assert report.checksums["listening_events"].status == "match"
    assert recorded
    assert all(c is not None and "volume" not in c for c in recorded)


async def test_erasure_after_a_column_was_added_keeps_the_tables_comparable(
    settings: Settings, widened: FixtureManager
) -> None:
    async with FixtureManager(settings) as before:
        await drop_every_tenant(before)
        await loaded_tenant(before, TENANT)
    await _add_the_column(widened)

    erased = await widened.erase_subject(TENANT, SUBJECT)
    report = await widened.validate_tenant(TENANT, recompute_checksums=True)
    recorded = await _purge_columns(widened, "erasure")

    assert erased.deleted["listening_events"] > 0
    assert report.ok, report.problems
    assert {report.checksums[t].status for t in ("listening_events", "users")} == {"match"}
    assert recorded
    assert all(c is not None and "volume" not in c for c in recorded)
