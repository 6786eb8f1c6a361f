"""Integers beyond 64 bits in a JSON column, loaded from JSON Lines and JSON arrays."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tenancy_fixtures import DataLoader, FixtureManager, Settings

TENANT = "long_integers"
#: Past the unsigned and signed 64-bit ranges (orjson read these as rounded floats), past
#: the float range (orjson refused the line), and inside them, for contrast.
LONG = {
    "past_u64": 2**64 + 1,
    "below_i64": -(2**63) - 1,
    "forty_digits": 10**40 + 7,
    "past_floats": 10**400 + 1,
    "past_i64": 2**63 + 5,
    "nested": [{"n": -(2**70) - 3}, 0.5],
}


def _events(demo_set: Path) -> list[dict[str, Any]]:
    """The demo set's product events, the first holding :data:`LONG` in its properties."""
    with gzip.open(demo_set / "product_events.jsonl.gz", "rt", encoding="utf-8") as lines:
        events = [json.loads(line) for line in lines]
    events[0]["properties"] = {**(events[0]["properties"] or {}), **LONG}
    return events


def _set_with_long_integers(demo_set: Path, directory: Path, file_format: str) -> Path:
    directory.mkdir()
    (directory / "users.csv").write_bytes((demo_set / "users.csv").read_bytes())
    events = _events(demo_set)
    if file_format == "jsonl":
        text = "".join(json.dumps(event) + "\n" for event in events)
    else:
        text = json.dumps(events, indent=1)
    (directory / f"product_events.{file_format}").write_text(text, encoding="utf-8")
    return directory


async def _loads_exactly_and_validates(
    manager: FixtureManager, source: Path, demo_set: Path
) -> None:
    await manager.create_tenant(TENANT)
    await manager.load_fixtures(TENANT, source=source)

    first = _events(demo_set)[0]
    async with manager.store.session(TENANT) as session:
        events = session.metadata.tables["tenant.product_events"]
        stored = await session.connection.execute(
            select(events.c.properties).where(events.c.event_id == first["event_id"])
        )
        properties = stored.scalar_one()
    assert first["properties"] == properties
    assert [int] * 5 == [type(properties[name]) for name in LONG if name != "nested"]
    report = await manager.validate_tenant(TENANT, recompute_checksums=True)
    assert [] == report.problems
    assert "match" == report.checksums["product_events"].status


@pytest.mark.parametrize("file_format", ["jsonl", "json"])
async def test_integers_beyond_64_bits_in_a_json_column_are_stored_and_read_back_exactly(
    manager: FixtureManager, demo_set: Path, tmp_path: Path, file_format: str
) -> None:
    """No integer is rounded through a float on the way in (orjson read a JSON Lines one
    past 2**64 as a float), and the checksum the load recorded is that of the rows stored."""
    source = _set_with_long_integers(demo_set, tmp_path / "set", file_format)

    await _loads_exactly_and_validates(manager, source, demo_set)


async def test_integers_beyond_64_bits_keep_exact_through_parse_workers_and_copy_text(
    settings: Settings, demo_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parse workers read the lines and, on PostgreSQL, encode them as ``COPY`` text
    (whose JSON writer refused an integer beyond 64 bits)."""
    monkeypatch.setattr(DataLoader, "parallel_min_bytes", 0)
    source = _set_with_long_integers(demo_set, tmp_path / "set", "jsonl")
    workers = settings.model_copy(
        update={"parse_workers": 2, "batch_size": 10, "bulk_load_min_bytes": 0}
    )

    async with FixtureManager(workers) as manager:
        try:
            await _loads_exactly_and_validates(manager, source, demo_set)
        finally:
            await manager.drop_tenant(TENANT)
