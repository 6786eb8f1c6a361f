"""A column a record leaves out stores its server default, as an INSERT leaving it out
would (a load names every column, so without this it stored NULL), on both backends,
in the loading process and in the parse workers; a default only the database can
compute is a refusal naming the column."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Identity,
    Integer,
    MetaData,
    Sequence,
    String,
    Table,
    false,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.engine import make_url

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.errors import RecordError
from tenancy_fixtures.loading import data_loader, parse_workers
from tenancy_fixtures.loading.data_loader import DataLoader
from tenancy_fixtures.store.base import TENANT_SCHEMA
from tests.cleanup import drop_every_tenant

TENANT = "defaults"
ON_POSTGRESQL = pytest.param("postgresql", marks=pytest.mark.postgres)


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


async def _rows(manager: FixtureManager, name: str = "things") -> dict[str, tuple[Any, ...]]:
    table = manager.store.metadata.tables[f"{TENANT_SCHEMA}.{name}"]
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


def _timed_metadata() -> MetaData:
    """Two tables of current-time defaults: one time must reach both."""
    metadata = MetaData()
    for name in ("things", "others"):
        Table(
            name,
            metadata,
            Column("thing_id", String(10), primary_key=True),
            Column("made_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
            Column("seen_at", DateTime(timezone=True), server_default=text("CURRENT_TIMESTAMP")),
            Column("day", Date, server_default=text("CURRENT_DATE")),
        )
    return metadata


@pytest.mark.parametrize("workers", [0, 2], ids=["in-process", "parse-workers"])
async def test_a_current_time_server_default_gives_every_row_the_loads_time(
    things: Any,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    workers: int,
) -> None:
    """``func.now()`` / ``CURRENT_TIMESTAMP`` / ``CURRENT_DATE``: one time for every row
    of every table of the load, as the database gives one per transaction, in the parse
    workers too (on PostgreSQL they hand over ``COPY`` text)."""
    monkeypatch.setattr(DataLoader, "parallel_min_bytes", 0)
    sent: list[str] = []
    real = parse_workers.parse_in_workers

    def spy(workers: Any, files: Any, table: Table, **kwargs: Any) -> Any:
        sent.append(table.name)
        return real(workers, files, table, **kwargs)

    monkeypatch.setattr(data_loader, "parse_in_workers", spy)
    manager = await things(
        _timed_metadata(), settings.model_copy(update={"parse_workers": workers, "batch_size": 50})
    )
    source = _source(tmp_path, *({"thing_id": str(i)} for i in range(400)))
    (source / "others.jsonl").write_text((source / "things.jsonl").read_text())

    before = datetime.now(UTC)
    await manager.load_fixtures(TENANT, source)
    after = datetime.now(UTC)

    assert (["others", "things"] if workers else []) == sorted(sent)
    rows = [*(await _rows(manager)).values(), *(await _rows(manager, "others")).values()]
    assert 800 == len(rows)
    ((made, seen, day),) = set(rows)
    assert before <= made == seen <= after
    assert made.date() == day
    report = await manager.validate_tenant(TENANT, recompute_checksums=True)
    assert report.ok, report.problems


@pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
async def test_a_column_without_a_time_zone_gets_the_sessions_wall_time_as_an_insert_does(
    things: Any, tmp_path: Path, admin: asyncpg.Connection, postgres_url: str
) -> None:
    """PostgreSQL converts ``now()`` to the session's time zone for a ``TIMESTAMP``
    column; a load does the same (found with a server five hours off UTC), and takes
    ``timezone('utc', now())`` as the UTC wall time."""
    database = make_url(postgres_url).database
    await admin.execute(f"ALTER DATABASE \"{database}\" SET timezone = 'America/New_York'")
    try:
        manager = await things(
            _metadata(
                Column("seen_at", DateTime, server_default=func.now(), nullable=False),
                Column("utc_at", DateTime, server_default=text("timezone('utc', now())")),
            )
        )
        await manager.load_fixtures(TENANT, _source(tmp_path, {"thing_id": "loaded"}))
        table = manager.store.metadata.tables[f"{TENANT_SCHEMA}.things"]
        async with manager.store.session(TENANT) as session:
            await session.connection.execute(insert(table).values(thing_id="inserted"))
        rows = await _rows(manager)
    finally:
        await admin.execute(f'ALTER DATABASE "{database}" RESET timezone')

    (loaded, loaded_utc), (inserted, inserted_utc) = rows["loaded"], rows["inserted"]
    assert abs(inserted - loaded) < timedelta(minutes=1)
    assert abs(datetime.now(UTC).replace(tzinfo=None) - loaded) > timedelta(hours=4)
    assert abs(inserted_utc - loaded_utc) < timedelta(minutes=1)
    assert abs(datetime.now(UTC).replace(tzinfo=None) - loaded_utc) < timedelta(minutes=1)


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


async def test_a_columns_sequence_is_the_tenants_own_and_a_load_must_give_its_values(
    things: Any, tmp_path: Path, backend: str
) -> None:
    """``Sequence("ticket_no")`` on a column: each PostgreSQL tenant (a spare's too) gets
    the sequence in its schema, so the application's inserts draw from it (the tenant
    DDL left it out: ``relation "t.ticket_no" does not exist``); the validation's check
    for undeclared objects accepts it. A record leaving the column out is refused, rule
    ``default``; given, the value loads."""
    manager = await things(_metadata(Column("number", Integer, Sequence("ticket_no"))))
    table = manager.store.metadata.tables[f"{TENANT_SCHEMA}.things"]

    async def app_insert(tenant: str) -> None:
        async with manager.store.session(tenant) as session:
            await session.connection.execute(insert(table).values(thing_id="app"))

    with pytest.raises(RecordError) as refused:
        await manager.load_fixtures(TENANT, _source(tmp_path, {"thing_id": "loaded"}))
    assert ("number", "default") == (refused.value.column, refused.value.rule)
    assert "drawn from a sequence" in str(refused.value)
    (tmp_path / "things" / "things.jsonl").write_text('{"thing_id": "loaded", "number": 7}\n')
    await manager.load_fixtures(TENANT, tmp_path / "things")
    report = await manager.validate_tenant(TENANT)
    assert report.ok, report.problems
    await app_insert(TENANT)
    # Past the loaded 7 (SQLite has no sequences).
    drawn = (8,) if backend == "postgresql" else (None,)
    assert {"loaded": (7,), "app": drawn} == await _rows(manager)
    if backend == "postgresql":
        await manager.warm_up(1)
        try:
            await manager.create_tenant("from_spare")
            await app_insert("from_spare")
            async with manager.store.session("from_spare", readonly=True) as session:
                assert [1] == list(
                    (await session.connection.execute(select(table.c.number))).scalars()
                )
        finally:
            await manager.warm_up(0)


def _keyed_metadata(backend: str) -> MetaData:
    """A ``serial`` key, an identity key and (on PostgreSQL) a ``Sequence`` column."""
    metadata = MetaData()
    Table("serials", metadata, Column("id", Integer, primary_key=True), Column("t", String(5)))
    Table(
        "identities",
        metadata,
        Column("id", Integer, Identity(), primary_key=True),
        Column("t", String(5)),
    )
    if backend == "postgresql":  # SQLite has no sequences
        Table(
            "numbered",
            metadata,
            Column("key", String(5), primary_key=True),
            Column("number", Integer, Sequence("numbered_no"), nullable=False),
        )
    return metadata


async def test_after_a_load_the_applications_inserts_take_keys_past_the_loaded_ones(
    things: Any, tmp_path: Path, backend: str
) -> None:
    """A load gives every key; the sequences behind them are moved past the highest
    (as Django's loaddata resets them), never back: before, the application's first
    insert into a loaded PostgreSQL table took key 1 again and failed."""
    manager = await things(_keyed_metadata(backend))
    source = tmp_path / "keyed"
    source.mkdir()
    rows = {
        "serials": [{"id": 1, "t": "a"}, {"id": 10, "t": "b"}],
        "identities": [{"id": 1, "t": "a"}, {"id": 3, "t": "b"}],
        "numbered": [{"key": "a", "number": 5}, {"key": "b", "number": 7}],
    }
    for name in manager.store.metadata.tables.values():
        (source / f"{name.name}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rows[name.name])
        )

    async def app_inserts() -> dict[str, Any]:
        drawn = {}
        async with manager.store.session(TENANT) as session:
            for table in manager.store.metadata.sorted_tables:
                if table.name == "numbered":
                    values: dict[str, Any] = {"key": uuid.uuid4().hex[:5]}
                    column = table.c.number
                else:
                    values, column = {"t": "app"}, table.c.id
                added = await session.connection.execute(
                    insert(table).values(values).returning(column)
                )
                drawn[table.name] = added.scalar_one()
        return drawn

    await manager.load_fixtures(TENANT, source)
    first = await app_inserts()
    (source / "serials.jsonl").write_text('{"id": 2, "t": "c"}\n')
    await manager.load_fixtures(TENANT, source)
    second = await app_inserts()

    expected = {"serials": 11, "identities": 4, "numbered": 8}
    assert {name: expected[name] for name in first} == first
    assert {name: value + 1 for name, value in first.items()} == second


@pytest.mark.parametrize("backend", [ON_POSTGRESQL], indirect=True)
async def test_a_sequence_columns_share_is_the_tenants_and_belongs_to_no_one_column(
    things: Any, admin: asyncpg.Connection
) -> None:
    """Owned by the first column, it went with that table (``DROP TABLE``, a migration
    dropping it) while the other still drew from it; unowned, validation still takes it
    as declared. A sequence in another schema is left to that schema, as before."""
    shared = Sequence("shared_no")
    metadata = MetaData()
    for name in ("first", "second"):
        Table(name, metadata, Column("n", Integer, shared, primary_key=True))
    Table(
        "elsewhere",
        metadata,
        Column("n", Integer, Sequence("kept_no", schema="public"), primary_key=True),
    )
    manager = await things(metadata)
    schema = manager.store.checked(TENANT)
    report = await manager.validate_tenant(TENANT)
    assert report.ok, report.problems

    await admin.execute(f'DROP TABLE "{schema}"."first"')
    second = manager.store.metadata.tables[f"{TENANT_SCHEMA}.second"]
    async with manager.store.session(TENANT) as session:
        drawn = await session.connection.execute(insert(second).returning(second.c.n))
    assert 1 == drawn.scalar_one()
    found = await admin.fetch(
        "SELECT relname FROM pg_class WHERE relkind = 'S' AND relnamespace = $1::regnamespace",
        schema,
    )
    assert ["shared_no"] == [r["relname"] for r in found]


@pytest.mark.parametrize("backend", [ON_POSTGRESQL], indirect=True)
async def test_sequences_move_in_their_direction_within_their_bounds_and_a_forced_reload_repairs(
    things: Any, tmp_path: Path, admin: asyncpg.Connection
) -> None:
    """A serial in a composite key, a descending sequence (below the lowest value), a
    sequence that cannot reach the values written (left alone: before, ``setval`` failed
    the load), and a tenant whose sequence lags from before loads moved them (a forced
    reload of the same rows moves it)."""
    metadata = MetaData()
    Table(
        "parts",
        metadata,
        Column("grp", Integer, primary_key=True, autoincrement=False),
        Column("n", Integer, primary_key=True, autoincrement=True),
    )
    down = Sequence("down_no", start=-1, increment=-1)
    Table("downs", metadata, Column("n", Integer, down, primary_key=True))
    capped = Sequence("capped_no", maxvalue=100)
    Table("capped", metadata, Column("n", Integer, capped, primary_key=True))
    manager = await things(metadata)
    rows = {"parts": [{"grp": 1, "n": 3}], "downs": [{"n": -3}], "capped": [{"n": 500}]}
    source = tmp_path / "keyed"
    source.mkdir()
    for name, records in rows.items():
        (source / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    schema = manager.store.checked(TENANT)

    async def next_values() -> dict[str, int]:
        found = {}
        for sequence in ("parts_n_seq", "down_no", "capped_no"):
            found[sequence] = await admin.fetchval(f"SELECT nextval('\"{schema}\".{sequence}')")
        return found

    await manager.load_fixtures(TENANT, source)
    assert {"parts_n_seq": 4, "down_no": -4, "capped_no": 1} == await next_values()

    await admin.execute(f"SELECT setval('\"{schema}\".parts_n_seq', 1, false)")  # lagging
    await manager.load_fixtures(TENANT, source, force=True)
    assert 4 == (await next_values())["parts_n_seq"]
