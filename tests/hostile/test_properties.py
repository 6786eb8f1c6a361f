"""Property-based hostile input: random records against the schema, random corruptions.

Whatever hypothesis writes, a load either succeeds, and then the rows read back are
the typed values written, or raises a :class:`TenancyFixturesError` and leaves the
tenant without a row. Nothing else may escape (no ``ValueError``, ``RecursionError``,
driver error...), and ``FixtureValidator`` must not crash on the same files. SQLite
runs the full number of examples, PostgreSQL a smaller run.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import JSON, Table

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.errors import TenancyFixturesError, TenantNotFoundError
from tenancy_fixtures.loading.fixture_sets import open_fixture_set
from tenancy_fixtures.spotify.schema import spotify_metadata
from tenancy_fixtures.validation import FixtureValidator
from tests.cleanup import drop_every_tenant
from tests.hostile.hostile_checks import assert_untouched, read_rows
from tests.hostile.hostile_corpus import ARTISTS, as_csv, as_json, as_jsonl, csv_cell
from tests.hostile.hostile_strategies import UNKNOWN, Pair, json_equal, records_for

METADATA = spotify_metadata()
TABLES = list(METADATA.sorted_tables)
SQLITE_EXAMPLES = 40
POSTGRES_EXAMPLES = 10
#: No deadline: a load's time depends on the machine's load, not on the example.
SQLITE = settings(
    max_examples=SQLITE_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
POSTGRES = settings(
    max_examples=POSTGRES_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# --- writing records in each format ---------------------------------------------------


def _csv(records: Sequence[Mapping[str, Any]]) -> bytes:
    columns = list(dict.fromkeys(k for r in records for k in r))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns or ["_"])
    for record in records:
        writer.writerow([csv_cell(record.get(c)) for c in columns])
    return out.getvalue().encode()


def _yaml(records: Sequence[Mapping[str, Any]]) -> bytes:
    # Escaped, not raw: PyYAML reads a raw NEL (U+0085) or LINE SEPARATOR in a quoted
    # scalar as a line break and folds it to a space, so raw text would not round-trip.
    return yaml.safe_dump(list(records), allow_unicode=False).encode()


WRITERS: Mapping[str, Callable[[Sequence[Mapping[str, Any]]], bytes]] = {
    "json": lambda records: json.dumps(list(records)).encode(),
    "jsonl": lambda records: b"".join(json.dumps(r).encode() + b"\n" for r in records),
    "csv": _csv,
    "yaml": _yaml,
    "jsonl.gz": lambda records: gzip.compress(WRITERS["jsonl"](records), mtime=0),
}
#: Formats whose values keep their JSON type (CSV holds text only).
TYPED_FORMATS = {"json", "jsonl", "yaml", "jsonl.gz"}


# --- managers and the tenant ----------------------------------------------------------


async def _manager(url: str) -> AsyncIterator[FixtureManager]:
    """A manager whose tenants are dropped after the module (the database outlives it)."""
    async with FixtureManager(Settings(database_url=url, actor="pytest")) as manager:
        yield manager
        await drop_every_tenant(manager)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sqlite_manager(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FixtureManager]:
    """A manager on SQLite for the module."""
    async for manager in _manager(f"sqlite:///{tmp_path_factory.mktemp('props') / 'data'}"):
        yield manager


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def postgres_manager(postgres_url: str) -> AsyncIterator[FixtureManager]:
    """A manager on this run's PostgreSQL database for the module."""
    async for manager in _manager(postgres_url):
        yield manager


async def empty_tenant(manager: FixtureManager, tenant_id: str) -> None:
    """Make ``tenant_id`` exist and hold nothing (drop and create it again if it does)."""
    try:
        status = await manager.tenant_status(tenant_id)
    except TenantNotFoundError:
        await manager.create_tenant(tenant_id)
        return
    if status.total_rows or {"schema", "config"} != set(status.fixtures):
        await manager.drop_tenant(tenant_id)
        await manager.create_tenant(tenant_id)


@pytest.fixture(scope="module")
def tenant_id() -> str:
    """The tenant every example of the module loads into (emptied between examples)."""
    return f"prop_{uuid.uuid4().hex[:12]}"


# --- the properties -------------------------------------------------------------------


def _raw(records: Sequence[Mapping[str, Pair]]) -> list[dict[str, Any]]:
    return [{column: pair[0] for column, pair in record.items()} for record in records]


def _expected_value(table: Table, column: str, expected: Any, actual: Any) -> bool:
    if isinstance(table.columns[column].type, JSON):
        return json_equal(expected, actual)
    return bool(expected == actual)


async def _check_read_back(
    manager: FixtureManager, tenant: str, table: Table, records: Sequence[Mapping[str, Pair]]
) -> None:
    """Every record whose key and values are known reads back with those values."""
    rows = await read_rows(manager, tenant, table.name)
    assert len(records) == len(rows)
    keys = [c.name for c in table.primary_key.columns]
    for record in records:
        key = {k: record.get(k, (None, UNKNOWN))[1] for k in keys}
        if any(v is UNKNOWN for v in key.values()):
            continue
        matching = [r for r in rows if all(r[k] == v for k, v in key.items())]
        assert 1 == len(matching), (key, rows)
        row = matching[0]
        for column in table.columns:
            expected = record.get(column.name, (None, None))[1]
            if (column.name in record or column.nullable) and expected is not UNKNOWN:
                assert _expected_value(table, column.name, expected, row[column.name]), (
                    column.name,
                    expected,
                    row[column.name],
                )


async def check_random_records(
    manager: FixtureManager, tenant: str, table: Table, records: list[dict[str, Pair]], fmt: str
) -> None:
    """Load the records: a clean load reads back as written, a refusal is typed and
    leaves no row; the validator reads the same set without crashing."""
    await empty_tenant(manager, tenant)
    with tempfile.TemporaryDirectory() as directory:
        source = Path(directory)
        (source / f"{table.name}.{fmt}").write_bytes(WRITERS[fmt](_raw(records)))
        FixtureValidator(METADATA).validate(open_fixture_set(source, metadata=METADATA))
        try:
            await manager.load_fixtures(tenant, source=source)
        except TenancyFixturesError as exc:
            event(f"refused: {type(exc).__name__}")
            await assert_untouched(manager, tenant)
            return
    event("loaded")
    if fmt in TYPED_FORMATS:
        await _check_read_back(manager, tenant, table, records)


@pytest.mark.asyncio(loop_scope="module")
@SQLITE
@given(drawn=records_for(TABLES), fmt=st.sampled_from(sorted(WRITERS)))
async def test_random_records_load_as_written_or_are_refused_whole_on_sqlite(
    sqlite_manager: FixtureManager,
    tenant_id: str,
    drawn: tuple[Table, list[dict[str, Pair]]],
    fmt: str,
) -> None:
    """Records drawn from the schema's columns: typed rows back, or a typed refusal."""
    await check_random_records(sqlite_manager, tenant_id, *drawn, fmt)


@pytest.mark.postgres
@pytest.mark.asyncio(loop_scope="module")
@POSTGRES
@given(drawn=records_for(TABLES), fmt=st.sampled_from(sorted(WRITERS)))
async def test_random_records_load_as_written_or_are_refused_whole_on_postgresql(
    postgres_manager: FixtureManager,
    tenant_id: str,
    drawn: tuple[Table, list[dict[str, Pair]]],
    fmt: str,
) -> None:
    """The same property on PostgreSQL (COPY, jsonb, timestamptz), fewer examples."""
    await check_random_records(postgres_manager, tenant_id, *drawn, fmt)


# --- corruptions of a valid file ------------------------------------------------------

VALID_FILES: Mapping[str, bytes] = {
    "artists.json": as_json(ARTISTS),
    "artists.jsonl": as_jsonl(ARTISTS),
    "artists.csv": as_csv(ARTISTS),
    "artists.jsonl.gz": gzip.compress(as_jsonl(ARTISTS), mtime=0),
}


@st.composite
def corrupted(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` after one to three random cuts, byte flips, insertions or deletions."""
    for _ in range(draw(st.integers(1, 3))):
        size = len(data)
        kind = draw(st.sampled_from(["truncate", "flip", "insert", "delete"]))
        at = draw(st.integers(0, max(size - 1, 0)))
        if kind == "truncate":
            data = data[:at]
        elif kind == "flip" and size:
            data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
        elif kind == "insert":
            data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
        elif size:
            data = data[:at] + data[at + draw(st.integers(1, 16)) :]
    return data


@st.composite
def corrupted_file(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid artists file in one format, corrupted (a gzip file inside or outside)."""
    name = draw(st.sampled_from(sorted(VALID_FILES)))
    if name.endswith(".gz") and draw(st.booleans()):
        return name, gzip.compress(draw(corrupted(as_jsonl(ARTISTS))), mtime=0)
    return name, draw(corrupted(VALID_FILES[name]))


async def check_corrupted_file(
    manager: FixtureManager, tenant: str, name: str, data: bytes
) -> None:
    """A corrupted file loads cleanly or is refused by a typed error, leaving no row."""
    await empty_tenant(manager, tenant)
    with tempfile.TemporaryDirectory() as directory:
        source = Path(directory)
        (source / name).write_bytes(data)
        try:
            FixtureValidator(METADATA).validate(open_fixture_set(source, metadata=METADATA))
            report = await manager.load_fixtures(tenant, source=source)
        except TenancyFixturesError as exc:
            event(f"refused: {type(exc).__name__}")
            await assert_untouched(manager, tenant)
            return
    event("loaded")
    status = await manager.tenant_status(tenant)
    assert report.row_counts.get("artists", 0) == status.row_counts["artists"]
    assert status.total_rows == status.row_counts["artists"]


@pytest.mark.asyncio(loop_scope="module")
@SQLITE
@given(file=corrupted_file())
async def test_a_corrupted_file_loads_cleanly_or_is_refused_whole_on_sqlite(
    sqlite_manager: FixtureManager, tenant_id: str, file: tuple[str, bytes]
) -> None:
    """Cuts, flipped, inserted and deleted bytes: a clean load or a typed refusal."""
    await check_corrupted_file(sqlite_manager, tenant_id, *file)


@pytest.mark.postgres
@pytest.mark.asyncio(loop_scope="module")
@POSTGRES
@given(file=corrupted_file())
async def test_a_corrupted_file_loads_cleanly_or_is_refused_whole_on_postgresql(
    postgres_manager: FixtureManager, tenant_id: str, file: tuple[str, bytes]
) -> None:
    """The same property on PostgreSQL, fewer examples."""
    await check_corrupted_file(postgres_manager, tenant_id, *file)
