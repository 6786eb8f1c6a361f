"""What users hand-write: SQLAlchemy 2.0 Core ``insert()`` executemany through asyncpg.

The same files are read with the standard library (``json``, ``csv``, ``gzip``),
values converted to what the column types want (timestamps to ``datetime``, CSV
text to ``bool`` / ``int`` / ``float`` / JSON), and inserted in batches of 1000 into
the fully constrained tables of a fresh schema, every table in one transaction.
Creating the schema is outside the timing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Integer,
    MetaData,
    Table,
    insert,
)
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.database import BenchDatabase, quote_ident
from bench.dataset import Dataset, iter_source_records
from bench.ddl import render_schema_ddl
from tenancy_fixtures.store.base import TENANT_SCHEMA

__all__ = ["BATCH_SIZE", "CoreInserts"]

BATCH_SIZE = 1000

Converter = Callable[[Any], Any]


def _timestamp(value: Any) -> Any:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _boolean(value: Any) -> Any:
    return value.strip().lower() in ("true", "t", "1", "yes") if isinstance(value, str) else value


def _integer(value: Any) -> Any:
    return int(value) if isinstance(value, str) else value


def _float(value: Any) -> Any:
    return float(value) if value is not None else None


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _same(value: Any) -> Any:
    return value


def _converter(column_type: Any) -> Converter:
    # Order matters: BigInteger is an Integer, JSONB a JSON.
    for kind, convert in (
        (DateTime, _timestamp),
        (Boolean, _boolean),
        (BigInteger, _integer),
        (Integer, _integer),
        (Float, _float),
        (JSON, _json),
    ):
        if isinstance(column_type, kind):
            return convert
    return _same


def _batches(table: Table, path: Path) -> Iterator[list[dict[str, Any]]]:
    converters = [(c.name, _converter(c.type)) for c in table.columns]
    batch: list[dict[str, Any]] = []
    for record in iter_source_records(path):
        batch.append({name: convert(record.get(name)) for name, convert in converters})
        if len(batch) >= BATCH_SIZE:
            yield batch
            batch = []
    if batch:
        yield batch


class CoreInserts:
    """Loads the set with Core ``insert()`` executemany, a fresh schema per run."""

    def __init__(self, db: BenchDatabase, dataset: Dataset, metadata: MetaData) -> None:
        self.db = db
        self.dataset = dataset
        self.metadata = metadata
        self._engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = create_async_engine(self.db.sqlalchemy_url, pool_size=1)
        return self._engine

    async def run(self, run: int) -> tuple[float, int]:
        """One load into a new schema: (seconds, rows)."""
        schema = f"bench_sqla_{run}"
        ddl = render_schema_ddl(self.metadata, schema)
        await self.db.execute(f"CREATE SCHEMA {quote_ident(schema)};\n" + ";\n".join(ddl))
        try:
            async with self.engine.connect() as warm:  # connect outside the timing
                await warm.close()
            await self.db.settle()
            started = time.perf_counter()
            rows = 0
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(schema_translate_map={TENANT_SCHEMA: schema})
                async with conn.begin():
                    for table in self.metadata.sorted_tables:
                        if table.name not in self.dataset.files:
                            continue
                        path = self.dataset.directory / self.dataset.files[table.name]
                        for batch in _batches(table, path):
                            await conn.execute(insert(table), batch)
                            rows += len(batch)
            return time.perf_counter() - started, rows
        finally:
            await self.db.drop_schema(schema)

    async def dispose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
