"""DataLoader: a data fixture that streams a fixture set's files into a tenant's tables.

Files are read record by record, each record is checked and typed by the table's
:class:`RowBuilder`, and rows go to the store in batches (``COPY`` on PostgreSQL for
an empty table, upsert by primary key otherwise), all inside the caller's one
transaction. Domain loaders are DataLoaders limited to their domain's tables.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import MetaData, Table

from tenancy_fixtures.errors import FixtureError, FixtureSetError
from tenancy_fixtures.fixtures import BaseFixture
from tenancy_fixtures.loaders.fixture_sets import FixtureFile, FixtureSet, open_fixture_set
from tenancy_fixtures.loaders.readers import iter_records
from tenancy_fixtures.loaders.records import RowBuilder
from tenancy_fixtures.monitoring.performance import PerformanceTracker
from tenancy_fixtures.spotify_schema import TENANT_SCHEMA, spotify_metadata
from tenancy_fixtures.store.base import TenantSession, WriteMode

__all__ = ["DataLoader", "ProgressCallback"]

#: Called with (table, rows just written) after every batch.
ProgressCallback = Callable[[str, int], None]

DEFAULT_BATCH_SIZE = 1000


class DataLoader(BaseFixture):
    """Loads the tables of a fixture set (all of them, or those of one domain)."""

    kind = "data"
    #: The key fixture templates use to name this loader.
    loader_name: ClassVar[str] = "tables"
    #: The tables this loader may fill; ``None``: any table of the schema.
    domain_tables: ClassVar[frozenset[str] | None] = None

    def __init__(
        self,
        source: Path | str | FixtureSet,
        *,
        name: str | None = None,
        tables: Iterable[str] | None = None,
        metadata: MetaData | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        schema = metadata if metadata is not None else spotify_metadata()
        self.fixture_set = (
            source if isinstance(source, FixtureSet) else open_fixture_set(source, metadata=schema)
        )
        allowed = set(self.domain_tables) if self.domain_tables is not None else None
        wanted = set(tables) if tables is not None else None
        if allowed is not None and wanted is not None and not wanted <= allowed:
            raise FixtureSetError(
                f"{self.loader_name} loader cannot fill {sorted(wanted - allowed)}",
                path=self.fixture_set.directory,
            )
        selected = wanted if wanted is not None else allowed
        self.files = [f for f in self.fixture_set.files if selected is None or f.table in selected]
        if not self.files:
            raise FixtureSetError(
                f"no files for the {self.loader_name} loader's tables "
                f"({', '.join(sorted(selected or ()))})",
                path=self.fixture_set.directory,
            )
        self._name = name or f"{self.loader_name}:{self.fixture_set.name}"
        self.batch_size = batch_size
        self.progress: ProgressCallback | None = None
        self.tracker: PerformanceTracker | None = None
        self._checksum: str | None = None

    @property
    def name(self) -> str:
        return self._name

    def tables(self) -> list[str]:
        """The tables this loader fills, in load order."""
        return list(dict.fromkeys(f.table for f in self.files))

    def checksum(self) -> str:
        if self._checksum is None:
            manifest = [[f.table, f.relative, f.sha256()] for f in self.files]
            payload = json.dumps([self.loader_name, self.version, manifest])
            self._checksum = hashlib.sha256(payload.encode()).hexdigest()
        return self._checksum

    def _table(self, session: TenantSession, name: str) -> Table:
        return session.metadata.tables[f"{TENANT_SCHEMA}.{name}"]

    async def apply(self, session: TenantSession) -> Mapping[str, int]:
        counts: dict[str, int] = {}
        modes: dict[str, WriteMode] = {}
        for file in self.files:
            table = self._table(session, file.table)
            if file.table not in modes:
                modes[file.table] = "insert" if await session.is_empty(table) else "upsert"
            written = await self._load_file(session, table, file, modes[file.table])
            counts[file.table] = counts.get(file.table, 0) + written
        return counts

    async def _load_file(
        self, session: TenantSession, table: Table, file: FixtureFile, mode: WriteMode
    ) -> int:
        builder = RowBuilder(table)
        written = 0
        batch: list[tuple[Any, ...]] = []
        first_line: int | None = None
        tracker = self.tracker or PerformanceTracker()
        records = iter_records(file)
        while True:
            with tracker.stage("parse"):
                source = next(records, None)
                if source is not None:
                    if not batch:
                        first_line = source.line or source.record
                    batch.append(builder.build(source, path=file.relative))
            if batch and (source is None or len(batch) >= self.batch_size):
                with tracker.stage("write"):
                    written += await self._write(session, table, file, batch, mode, first_line)
                if self.progress is not None:
                    self.progress(file.table, len(batch))
                batch = []
            if source is None:
                return written

    async def _write(
        self,
        session: TenantSession,
        table: Table,
        file: FixtureFile,
        batch: list[tuple[Any, ...]],
        mode: WriteMode,
        first: int | None,
    ) -> int:
        builder_columns = tuple(c.name for c in table.columns)
        try:
            return await session.write_rows(table, builder_columns, batch, mode=mode)
        except FixtureError as exc:
            exc.path = file.relative
            exc.table = table.name
            exc.message = f"{exc.message} (in the batch starting at {_where(file, first)})"
            raise


def _where(file: FixtureFile, first: int | None) -> str:
    if first is None:
        return "the start"
    return f"line {first}" if file.format in ("jsonl", "csv") else f"record {first}"
