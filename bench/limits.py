"""The physical limits: ``psql \\copy`` of the set's CSV export in one transaction.

(a) into tables that already carry every constraint and index
    (``render_schema_ddl``), tables in foreign-key order;
(b) into bare tables (the columns with their types and NOT NULL; no primary, unique,
    check or foreign keys, no indexes), then, in the same transaction, the same primary
    keys, unique constraints, checks, indexes and foreign keys.

Both DDL halves of (b) are derived from the SQLAlchemy metadata (``CreateTable`` of a
constraint-free copy, then ``AddConstraint`` / ``CreateIndex``), and the first run
checks that (b) ends with exactly the constraints and indexes of (a).
Each run gets a fresh schema, created before the clock starts and dropped after.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
from sqlalchemy import (
    CheckConstraint,
    Column,
    MetaData,
    Table,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import AddConstraint, CreateIndex, CreateTable, ExecutableDDLElement

from bench.database import BenchDatabase, quote_ident
from bench.dataset import CsvSet
from bench.ddl import render_schema_ddl
from tenancy_fixtures.store.base import TENANT_SCHEMA

__all__ = ["CopyLimits", "bare_table_ddl", "constraint_ddl"]


def _compile(elements: list[ExecutableDDLElement], schema: str) -> list[str]:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    translate = {TENANT_SCHEMA: schema}
    return [
        str(
            element.compile(
                dialect=dialect, schema_translate_map=translate, render_schema_translate=True
            )
        ).strip()
        for element in elements
    ]


def bare_table_ddl(metadata: MetaData, schema: str) -> list[str]:
    """``CREATE TABLE`` for a copy of every table with its columns only."""
    bare = MetaData(schema=TENANT_SCHEMA)
    elements: list[ExecutableDDLElement] = []
    for table in metadata.sorted_tables:
        copy = Table(
            table.name,
            bare,
            *(Column(c.name, c.type, nullable=c.nullable) for c in table.columns),
        )
        elements.append(CreateTable(copy))
    return _compile(elements, schema)


def constraint_ddl(metadata: MetaData, schema: str) -> list[str]:
    """What turns the bare tables into the real ones, in an order PostgreSQL accepts.

    Per table: primary key, unique constraints, checks, indexes; then every foreign
    key (they need the referenced tables' keys in place). Works on a copy: SQLAlchemy's
    ``AddConstraint`` marks a constraint as no longer part of its ``CREATE TABLE``.
    """
    copy = MetaData(schema=metadata.schema, naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(copy)
    elements: list[ExecutableDDLElement] = []
    for table in copy.sorted_tables:
        by_name = sorted(table.constraints, key=lambda c: str(c.name))
        elements.append(AddConstraint(table.primary_key))
        elements.extend(AddConstraint(c) for c in by_name if isinstance(c, UniqueConstraint))
        elements.extend(AddConstraint(c) for c in by_name if isinstance(c, CheckConstraint))
        elements.extend(CreateIndex(ix) for ix in sorted(table.indexes, key=lambda i: str(i.name)))
    for table in copy.sorted_tables:
        fks = sorted(table.foreign_key_constraints, key=lambda c: str(c.name))
        elements.extend(AddConstraint(fk) for fk in fks)
    return _compile(elements, schema)


def _copy_lines(csv_set: CsvSet, metadata: MetaData, schema: str) -> list[str]:
    lines = []
    for table in metadata.sorted_tables:
        if table.name not in csv_set.columns:
            continue
        columns = ", ".join(quote_ident(c) for c in csv_set.columns[table.name])
        path = str(csv_set.path(table.name).resolve()).replace("'", "''")
        lines.append(
            f"\\copy {quote_ident(schema)}.{quote_ident(table.name)} ({columns}) "
            f"FROM '{path}' WITH (FORMAT csv, HEADER true)"
        )
    return lines


async def _signature(db: BenchDatabase, schema: str) -> list[tuple[str, str, str]]:
    """Constraints (name, type, definition) and indexes (name, definition) of a schema."""
    conn: asyncpg.Connection = await db.connect()
    try:
        constraints = await conn.fetch(
            "SELECT c.conname, c.contype::text, pg_get_constraintdef(c.oid) FROM pg_constraint c "
            "JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = $1",
            schema,
        )
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1",
            schema,
        )
        columns = await conn.fetch(
            "SELECT table_name || '.' || column_name, data_type, is_nullable "
            "FROM information_schema.columns WHERE table_schema = $1",
            schema,
        )
    finally:
        await conn.close()

    def unqualified(definition: str) -> str:
        return definition.replace(quote_ident(schema) + ".", "").replace(schema + ".", "")

    rows = [(r[0], r[1], unqualified(r[2])) for r in constraints]
    rows += [(r[0], "index", unqualified(r[1])) for r in indexes]
    rows += [(r[0], r[1], r[2]) for r in columns]
    return sorted(rows)


class CopyLimits:
    """Runs limit (a) and limit (b) on one CSV export, a fresh schema per run."""

    def __init__(self, db: BenchDatabase, csv_set: CsvSet, metadata: MetaData, work: Path) -> None:
        self.db = db
        self.csv_set = csv_set
        self.metadata = metadata
        self.work = work
        self.rows = sum(csv_set.rows.values())
        self._checked = False
        work.mkdir(parents=True, exist_ok=True)

    def _script(self, name: str, lines: list[str]) -> Path:
        path = self.work / f"{name}.sql"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    async def constrained(self, run: int) -> float:
        """Limit (a): ``\\copy`` into the fully constrained tables; seconds of psql."""
        schema = f"bench_limit_a_{run}"
        ddl = render_schema_ddl(self.metadata, schema)
        await self.db.execute(f"CREATE SCHEMA {quote_ident(schema)};\n" + ";\n".join(ddl))
        script = self._script(schema, _copy_lines(self.csv_set, self.metadata, schema))
        try:
            await self.db.settle()
            return await self.db.run_psql(script)
        finally:
            await self.db.drop_schema(schema)

    async def bare_then_constraints(self, run: int) -> float:
        """Limit (b): ``\\copy`` into bare tables, then constraints and indexes."""
        schema = f"bench_limit_b_{run}"
        bare = bare_table_ddl(self.metadata, schema)
        await self.db.execute(f"CREATE SCHEMA {quote_ident(schema)};\n" + ";\n".join(bare))
        lines = _copy_lines(self.csv_set, self.metadata, schema)
        lines += [statement + ";" for statement in constraint_ddl(self.metadata, schema)]
        script = self._script(schema, lines)
        try:
            await self.db.settle()
            seconds = await self.db.run_psql(script)
            if not self._checked:
                await self._check_same_schema(schema)
                self._checked = True
            return seconds
        finally:
            await self.db.drop_schema(schema)

    async def _check_same_schema(self, schema: str) -> None:
        """Fail loudly if (b) did not end with the tables (a) copies into."""
        reference = "bench_limit_reference"
        ddl = render_schema_ddl(self.metadata, reference)
        await self.db.execute(f"CREATE SCHEMA {quote_ident(reference)};\n" + ";\n".join(ddl))
        try:
            want = await _signature(self.db, reference)
            got = await _signature(self.db, schema)
        finally:
            await self.db.drop_schema(reference)
        if want != got:
            missing = sorted(set(want) - set(got))
            extra = sorted(set(got) - set(want))
            raise RuntimeError(
                f"limit (b) DDL differs from render_schema_ddl: missing {missing}, extra {extra}"
            )
