"""Rows parse workers hand over as COPY text (PostgreSQL) store exactly what typed rows
store: every column type a loader reads, text that COPY must escape, NULLs, defaults,
JSON holding backslashes and quotes; the checksums agree and ``validate-data`` passes.
On SQLite workers hand over rows, and the same test holds."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    Uuid,
    select,
)

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.loading.data_loader import DataLoader
from tenancy_fixtures.store import control_plane
from tests.user_schema import NAMING

HOSTILE_TEXT = [
    "tab\there",
    "line\nbreak",
    "carriage\rreturn",
    "back\\slash",
    "\\N",
    "\\.",
    "quote \" and ' apostrophe",
    "comma, semicolon; pipe |",
    "unicode: é ß 漢字 🎵",
    "",
    " leading and trailing ",
]


def _metadata() -> MetaData:
    md = MetaData(naming_convention=NAMING)
    Table(
        "everything",
        md,
        Column("id", Integer, primary_key=True),
        Column("label", String(100)),
        Column("body", Text),
        Column("big", BigInteger),
        Column("ratio", Float),
        Column("price", Numeric(10, 2)),
        Column("amount", Numeric),
        Column("flag", Boolean),
        Column("at", DateTime(timezone=True)),
        Column("local_at", DateTime(timezone=False)),
        Column("day", Date),
        Column("ref", Uuid),
        Column("doc", JSON),
        Column("kind", Enum("a", "b\\c", native_enum=False)),
        Column("note", String(40), nullable=False, default="tab\tand\\slash"),
    )
    return md


def _record(i: int) -> dict[str, Any]:
    text = HOSTILE_TEXT[i % len(HOSTILE_TEXT)]
    record: dict[str, Any] = {
        "id": i,
        "label": text,
        "body": f"{text} #{i}",
        "big": 2**62 + i if i % 2 else -(2**62) - i,
        "ratio": [0.1, 1e-300, -2.5, 1e300, 3.0][i % 5],
        "price": ["12.30", 0.5, "99999999.99", -1][i % 4],
        "amount": ["1E+2", "0.000001", 7, "12345678901.5"][i % 4],
        "flag": [True, False, None][i % 3],
        "at": ["2026-01-01T12:00:00+02:00", "2026-06-30T23:59:59.123456Z"][i % 2],
        "local_at": "2026-03-04T05:06:07",
        "day": "2024-02-29",
        "ref": str(uuid.UUID(int=i + 1)),
        "doc": [{"k": text, "n": [1, 2.5, None]}, json.dumps("a \\ b"), 42, {"q": '"'}][i % 4],
        "kind": ["a", "b\\c"][i % 2],
    }
    if i % 7 == 0:
        record = {k: (v if k in ("id", "note") else None) for k, v in record.items()}
    if i % 3 == 0:
        record["note"] = text
    return record


@pytest.fixture
def hostile_set(tmp_path: Path) -> Path:
    """A one-table fixture set of JSON Lines records built to trip a text encoder."""
    directory = tmp_path / "set"
    directory.mkdir()
    lines = "".join(json.dumps(_record(i)) + "\n" for i in range(1, 400))
    (directory / "everything.jsonl").write_text(lines, encoding="utf-8")
    (directory / "fixtures.json").write_text(
        json.dumps(
            {"name": "hostile", "files": [{"table": "everything", "path": "everything.jsonl"}]}
        ),
        encoding="utf-8",
    )
    return directory


async def _rows(manager: FixtureManager, tenant: str) -> list[tuple[Any, ...]]:
    async with manager.store.session(tenant, readonly=True) as session:
        table = next(t for t in session.metadata.sorted_tables if t.name == "everything")
        found = await session.connection.execute(select(table).order_by(table.c.id))
        return [tuple(row) for row in found]


async def _checksum(manager: FixtureManager, tenant: str) -> tuple[int, str]:
    async with manager.store.control(readonly=True) as conn:
        writes = await control_plane.table_checksums(conn, tenant)
    return next((w.rows, w.checksum) for w in writes if w.table == "everything")


async def test_rows_handed_over_by_workers_are_stored_as_rows_parsed_in_process_are(
    settings: Settings, hostile_set: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(DataLoader, "parallel_min_bytes", 0)
    in_process = settings.model_copy(update={"parse_workers": 0})
    async with FixtureManager(in_process, metadata=_metadata()) as manager:
        await manager.create_tenant("typed")
        await manager.load_fixtures("typed", source=hostile_set)
        expected_rows = await _rows(manager, "typed")
        expected_checksum = await _checksum(manager, "typed")
    in_workers = settings.model_copy(update={"parse_workers": 2, "batch_size": 37})
    async with FixtureManager(in_workers, metadata=_metadata()) as manager:
        await manager.create_tenant("encoded")
        report = await manager.load_fixtures("encoded", source=hostile_set)
        if settings.database_url.startswith("postgresql"):
            assert "encode" in report.stages  # the rows did travel as COPY text
        assert expected_rows == await _rows(manager, "encoded")
        assert expected_checksum == await _checksum(manager, "encoded")
        assert [] == (await manager.validate_tenant("encoded")).problems
        await manager.drop_tenant("encoded")
    async with FixtureManager(in_process, metadata=_metadata()) as manager:
        await manager.drop_tenant("typed")
