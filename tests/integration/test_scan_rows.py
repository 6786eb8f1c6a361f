"""Reading a table's rows for its checksum: streamed in batches, read at once when the
caller counted few, not read at all when it counted none; the same rows either way."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, insert

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


async def _batches(
    manager: FixtureManager, batch: int, rows: int | None, *, streamed: list[int] | None = None
) -> list[list[str]]:
    """The batches ``scan_rows`` yields; ``streamed`` gets one entry per streaming read."""
    async with manager.store.session(TENANT, readonly=True) as session:
        if streamed is not None:

            def record(*args: Any) -> None:
                if args[4].execution_options.get("stream_results"):
                    streamed.append(1)

            event.listen(session.connection.sync_connection, "before_cursor_execute", record)
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
    seven_artists: FixtureManager, backend: str
) -> None:
    streamed: list[int] = []
    batches = await _batches(seven_artists, 10, 7, streamed=streamed)

    assert batches == [[a["artist_id"] for a in ARTISTS]]
    if backend == "sqlite":  # PostgreSQL reads through the driver's cursor either way
        assert streamed == []


async def test_rows_not_counted_are_streamed(seven_artists: FixtureManager, backend: str) -> None:
    streamed: list[int] = []
    await _batches(seven_artists, 10, None, streamed=streamed)

    assert streamed == ([1] if backend == "sqlite" else [])


async def test_rows_counted_past_a_batch_are_still_streamed(
    seven_artists: FixtureManager,
) -> None:
    batches = await _batches(seven_artists, 3, 7)

    assert [len(b) for b in batches] == [3, 3, 1]


async def test_a_table_counted_empty_is_not_read(seven_artists: FixtureManager) -> None:
    assert await _batches(seven_artists, 10, 0) == []
