"""Reading a table's rows for its checksum: streamed in batches, read at once when the
caller counted few, not read at all when it counted none; the same rows either way."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from tenancy_fixtures import FixtureManager

TENANT = "scan_rows_tenant"
ARTISTS = [{"artist_id": f"{n:022d}", "name": f"artist {n}"} for n in range(7)]


@pytest.fixture
async def seven_artists(manager: FixtureManager) -> FixtureManager:
    await manager.create_tenant(TENANT)
    async with manager.store.session(TENANT) as session:
        artists = session.metadata.tables["tenant.artists"]
        await session.connection.execute(insert(artists), ARTISTS)
    return manager


async def _batches(manager: FixtureManager, batch: int, rows: int | None) -> list[list[str]]:
    async with manager.store.session(TENANT, readonly=True) as session:
        artists = session.metadata.tables["tenant.artists"]
        return [
            sorted(str(row[0]) for row in found)
            async for found in session.scan_rows(artists, batch, rows=rows)
        ]


async def test_rows_are_streamed_in_batches_without_a_count(
    seven_artists: FixtureManager,
) -> None:
    batches = await _batches(seven_artists, 3, None)

    assert [len(b) for b in batches] == [3, 3, 1]
    assert sorted(i for b in batches for i in b) == [a["artist_id"] for a in ARTISTS]


async def test_rows_counted_within_a_batch_come_in_one_read(
    seven_artists: FixtureManager,
) -> None:
    batches = await _batches(seven_artists, 10, 7)

    assert batches == [[a["artist_id"] for a in ARTISTS]]


async def test_rows_counted_past_a_batch_are_still_streamed(
    seven_artists: FixtureManager,
) -> None:
    batches = await _batches(seven_artists, 3, 7)

    assert [len(b) for b in batches] == [3, 3, 1]


async def test_a_table_counted_empty_is_not_read(seven_artists: FixtureManager) -> None:
    assert await _batches(seven_artists, 10, 0) == []
