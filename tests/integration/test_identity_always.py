"""A key PostgreSQL generates ``ALWAYS`` (``Identity(always=True)``, what SQLAlchemy's
documentation suggests for new schemas) loads, reloads and merges as a loaded key on both
backends: the load gives every key, and on PostgreSQL a merge's ``INSERT ... SELECT``
overrides the generator as ``COPY`` does (before, a reload failed there: cannot insert a
non-DEFAULT value)."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Identity, Integer, MetaData, String, Table, insert, select

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.store.base import TENANT_SCHEMA
from tests.cleanup import drop_every_tenant


def _metadata() -> MetaData:
    metadata = MetaData()
    Table(
        "tickets",
        metadata,
        Column("id", Integer, Identity(always=True), primary_key=True),
        Column("title", String(20), nullable=False),
    )
    return metadata


def _fixture_set(directory: Path, *files: list[dict[str, Any]]) -> Path:
    """A set whose files all fill ``tickets``, in the order given."""
    directory.mkdir(parents=True)
    entries = []
    for number, rows in enumerate(files):
        name = f"tickets_{number}.jsonl"
        (directory / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
        entries.append({"table": "tickets", "path": name})
    (directory / "fixtures.json").write_text(json.dumps({"files": entries}))
    return directory


async def _tickets(manager: FixtureManager) -> list[tuple[Any, ...]]:
    table = manager.store.metadata.tables[f"{TENANT_SCHEMA}.tickets"]
    async with manager.store.session("desk", readonly=True) as session:
        return [tuple(r) for r in await session.connection.execute(select(table).order_by("id"))]


async def test_a_generated_always_key_reloads_and_merges_as_loaded(
    settings: Settings, load_path: str, tmp_path: Path
) -> None:
    first = [{"id": 1, "title": "printer"}, {"id": 4, "title": "vpn"}]
    second = [{"id": 9, "title": "badge"}]
    async with FixtureManager(settings, metadata=_metadata()) as manager:
        try:
            await drop_every_tenant(manager)
            await manager.create_tenant("desk")
            # Two files of one table: the second adds to what the first wrote.
            await manager.load_fixtures("desk", _fixture_set(tmp_path / "a", first, second))
            assert [(1, "printer"), (4, "vpn"), (9, "badge")] == await _tickets(manager)

            changed = [{"id": 1, "title": "printer fixed"}, {"id": 12, "title": "laptop"}]
            report = await manager.load_fixtures(
                "desk", _fixture_set(tmp_path / "b", changed), force=True
            )

            assert 2 == report.rows
            assert [(1, "printer fixed"), (4, "vpn"), (9, "badge"), (12, "laptop")] == (
                await _tickets(manager)
            )
            assert (await manager.validate_tenant("desk", recompute_checksums=True)).ok
            table = manager.store.metadata.tables[f"{TENANT_SCHEMA}.tickets"]
            async with manager.store.session("desk") as session:
                added = await session.connection.execute(
                    insert(table).values(title="app").returning(table.c.id)
                )
                assert 13 == added.scalar_one()  # the application's inserts still generate
        finally:
            await drop_every_tenant(manager)
