"""A column a record leaves out stores its server default, as an INSERT leaving it out
would (a load names every column, so without this it stored NULL), on both backends,
in the loading process and in the parse workers; a default only the database can
compute is a refusal naming the column."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    false,
    func,
    insert,
    select,
    text,
)

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.errors import RecordError
from tenancy_fixtures.loading import data_loader, parse_workers
from tenancy_fixtures.loading.data_loader import DataLoader
from tenancy_fixtures.store.base import TENANT_SCHEMA
from tests.cleanup import drop_every_tenant

TENANT = "defaults"


def _metadata(*columns: Column[Any]) -> MetaData:
    metadata = MetaData()
    Table("things", metadata, Column("thing_id", String(10), primary_key=True), *columns)
    return metadata


def _source(tmp_path: Path, *records: dict[str, Any]) -> Path:
    source = tmp_path / "things"
    source.mkdir()
    (source / "things.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return source


@pytest.fixture
async def things(settings: Settings, tmp_path: Path) -> AsyncIterator[FixtureManager]:
    """Makes a manager of the schema a test passes in, tenant ``defaults`` created."""
    managers: list[FixtureManager] = []

    async def make(metadata: MetaData, settings_: Settings = settings) -> FixtureManager:
        manager = FixtureManager(settings_, metadata=metadata)
        await manager.__aenter__()
        managers.append(manager)
        await drop_every_tenant(manager)
        await manager.create_tenant(TENANT)
        return manager

    yield make  # type: ignore[misc]
    for manager in managers:
        await drop_every_tenant(manager)
        await manager.__aexit__(None, None, None)


async def _rows(manager: FixtureManager) -> dict[str, tuple[Any, ...]]:
    table = manager.store.metadata.tables[f"{TENANT_SCHEMA}.things"]
    async with manager.store.session(TENANT, readonly=True) as session:
        rows = (await session.connection.execute(select(table))).all()
    return {row[0]: tuple(row[1:]) for row in rows}


async def test_a_left_out_column_stores_what_an_insert_leaving_it_out_stores(
    things: Any, tmp_path: Path
) -> None:
    """Literal server defaults (a string, ``text("0")``, ``false()``, a quoted text)
    fill left-out columns; an explicit null stays null; given values stay given. The
    oracle: a row inserted through SQLAlchemy without those columns."""
    manager = await things(
        _metadata(
            Column("tier", String(10), server_default="free", nullable=False),
            Column("plays", Integer, server_default=text("0")),
            Column("hidden", Boolean, server_default=false(), nullable=False),
            Column("note", String(10), server_default=text("'n/a'")),
        )
    )
    source = _source(
        tmp_path,
        {"thing_id": "left_out"},
        {"thing_id": "nulls", "plays": None, "note": None},
        {"thing_id": "given", "tier": "pro", "plays": 3, "hidden": True, "note": "x"},
    )

    await manager.load_fixtures(TENANT, source)
    report = await manager.validate_tenant(TENANT, recompute_checksums=True)
    assert report.ok, report.problems
    table = manager.store.metadata.tables[f"{TENANT_SCHEMA}.things"]
    async with manager.store.session(TENANT) as session:
        await session.connection.execute(insert(table).values(thing_id="inserted"))

    rows = await _rows(manager)
    assert rows["inserted"] == rows["left_out"] == ("free", 0, False, "n/a")
    assert ("free", None, False, None) == rows["nulls"]
    assert ("pro", 3, True, "x") == rows["given"]


@pytest.mark.parametrize("workers", [0, 2], ids=["in-process", "parse-workers"])
async def test_a_current_time_server_default_gives_every_row_the_runs_time(
    things: Any,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    workers: int,
) -> None:
    """``func.now()`` / ``CURRENT_TIMESTAMP`` / ``CURRENT_DATE``: one time for the whole
    load, as the database gives one per transaction, in the parse workers too."""
    monkeypatch.setattr(DataLoader, "parallel_min_bytes", 0)
    sent: list[str] = []
    real = parse_workers.parse_in_workers

    def spy(workers: Any, files: Any, table: Table, **kwargs: Any) -> Any:
        sent.append(table.name)
        return real(workers, files, table, **kwargs)

    monkeypatch.setattr(data_loader, "parse_in_workers", spy)
    manager = await things(
        _metadata(
            Column("made_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
            Column("seen_at", DateTime, server_default=text("CURRENT_TIMESTAMP")),
            Column("day", Date, server_default=text("CURRENT_DATE")),
        ),
        settings.model_copy(update={"parse_workers": workers, "batch_size": 50}),
    )
    source = _source(tmp_path, *({"thing_id": str(i)} for i in range(400)))

    before = datetime.now(UTC)
    await manager.load_fixtures(TENANT, source)
    after = datetime.now(UTC)

    assert (["things"] if workers else []) == sent
    made, seen, day = zip(*(await _rows(manager)).values(), strict=True)
    assert 1 == len(set(made)) == len(set(seen)) == len(set(day))
    assert before <= made[0] <= after
    assert made[0].replace(tzinfo=None) == seen[0]
    assert made[0].date() == day[0]
    report = await manager.validate_tenant(TENANT, recompute_checksums=True)
    assert report.ok, report.problems


async def test_leaving_out_a_column_the_database_computes_is_refused_naming_it(
    things: Any, tmp_path: Path
) -> None:
    """A server default that is an expression (here ``length('abc')``) is computed per
    row by the database: a record leaving its column out is refused, naming the file,
    line, column and expression, and nothing is loaded; given a value, it loads."""
    manager = await things(
        _metadata(Column("size", Integer, server_default=text("length('abc')"))),
    )
    source = _source(tmp_path, {"thing_id": "given", "size": 1}, {"thing_id": "left_out"})

    with pytest.raises(RecordError) as refused:
        await manager.load_fixtures(TENANT, source)

    error = refused.value
    assert ("things.jsonl", 2, "size", "default") == (
        Path(str(error.path)).name,
        error.line,
        error.column,
        error.rule,
    )
    assert "length('abc')" in str(error)
    assert {} == await _rows(manager)
    (source / "things.jsonl").write_text('{"thing_id": "given", "size": 1}\n')
    await manager.load_fixtures(TENANT, source)
    assert {"given": (1,)} == await _rows(manager)
