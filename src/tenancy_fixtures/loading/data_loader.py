"""DataLoader: a data fixture that streams a fixture set's files into a tenant's tables.

Files are read record by record, each record is checked and typed by the table's
:class:`RowBuilder`, and rows go to the store in batches (``COPY`` on PostgreSQL for
an empty table, upsert by primary key otherwise), all inside the caller's one
transaction. Domain loaders are DataLoaders limited to their domain's tables; the files
of a table a registered domain loader guards go through that loader whichever loader
holds them (:meth:`DataLoader.guards`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import AbstractAsyncContextManager, aclosing, closing, nullcontext
from dataclasses import replace
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from sqlalchemy import MetaData, Table

from tenancy_fixtures.errors import (
    FixtureError,
    FixtureSetError,
    IntegrityViolationError,
    SettingsError,
)
from tenancy_fixtures.fixtures.base import BaseFixture
from tenancy_fixtures.fixtures.context import LoadContext, ProgressCallback, StageTimer
from tenancy_fixtures.loading.checksums import ContentChecksum
from tenancy_fixtures.loading.copy_text import row_encoder
from tenancy_fixtures.loading.fast_plans import fast_plan
from tenancy_fixtures.loading.fixture_sets import FixtureFile, FixtureSet, open_fixture_set
from tenancy_fixtures.loading.fixture_validator import RecordChecks
from tenancy_fixtures.loading.parse_workers import (
    MIN_PARALLEL_BYTES,
    POOL,
    ParsedBlock,
    jsonl_bytes,
    parse_in_workers,
    portable,
)
from tenancy_fixtures.loading.pipeline import stream_in_thread
from tenancy_fixtures.loading.readers import SourceRecord, csv_header, iter_records
from tenancy_fixtures.loading.records import RowBuilder
from tenancy_fixtures.loading.table_checksums import table_checksum
from tenancy_fixtures.monitoring.performance import PerformanceTracker
from tenancy_fixtures.settings import Settings
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.store.base import (
    TENANT_SCHEMA,
    CopyPayload,
    RowPreparer,
    TenantSession,
    WriteCounts,
    WriteMode,
)
from tenancy_fixtures.store.column_info import encrypted_columns
from tenancy_fixtures.tenancy.data_keys import row_encrypter, tenant_cipher

__all__ = ["DataLoader", "ProgressCallback", "TableMode", "files_bytes", "locate_violation"]

#: Per-table write mode: ``auto`` (insert into an empty table, upsert otherwise),
#: ``insert``, ``upsert``, ``replace`` (delete the table's rows first) or ``skip``
#: (leave a table that already has rows alone) or ``insert_missing`` (add rows whose key is
#: new, leave existing rows as they are: catalogue rows named by history exports).
TableMode = Literal["auto", "insert", "upsert", "replace", "skip", "insert_missing"]

DEFAULT_BATCH_SIZE = 1000


class DataLoader(BaseFixture):
    """Loads the tables of a fixture set (all of them, or those of one domain)."""

    kind = "data"
    #: The key fixture templates use to name this loader.
    loader_name: ClassVar[str] = "tables"
    #: The tables this loader may fill; ``None``: any table of the schema.
    domain_tables: ClassVar[frozenset[str] | None] = None
    #: Whether every file of ``domain_tables`` goes through this loader's checks,
    #: whichever loader was given it (see :meth:`guards`); registered loaders only.
    guards_tables: ClassVar[bool] = False

    @classmethod
    def guards_table(cls, table: Table) -> bool:
        """Whether ``table`` is one this loader guards (see :attr:`guards_tables`): one
        of its domain tables (a domain may also ask that it be its own table, not
        another schema's of the same name)."""
        return cls.guards_tables and table.name in (cls.domain_tables or ())

    #: JSON Lines bytes (uncompressed, estimated) of one table for which workers are
    #: started; once started, tables of an eighth of that use them too.
    parallel_min_bytes: int = MIN_PARALLEL_BYTES

    def __init__(
        self,
        source: Path | str | FixtureSet,
        *,
        name: str | None = None,
        tables: Iterable[str] | None = None,
        metadata: MetaData,
        batch_size: int = DEFAULT_BATCH_SIZE,
        modes: Mapping[str, TableMode] | None = None,
    ) -> None:
        schema = self.schema = metadata
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
        self.modes: dict[str, TableMode] = dict(modes or {})
        #: Modes of single files (by relative path), over their table's mode.
        self.file_modes: dict[str, TableMode] = {}
        self.write_counts: dict[str, WriteCounts] = {}
        #: What the last ``apply`` wrote per table, with the content checksum of the rows.
        self.written: dict[str, control_plane.TableChecksum] = {}
        self._checksum: str | None = None

    @property
    def name(self) -> str:
        return self._name

    def source_bytes(self) -> int | None:
        """Bytes of the files the load reads (``None`` where it cannot say)."""
        return files_bytes(self.files)

    def tables(self) -> list[str]:
        """The tables this loader fills, in load order."""
        return list(dict.fromkeys(f.table for f in self.files))

    def checksum(self) -> str:
        if self._checksum is None:
            manifest = [[f.table, f.relative, f.sha256] for f in self.files]
            payload = json.dumps([self.loader_name, self.version, manifest])
            self._checksum = hashlib.sha256(payload.encode()).hexdigest()
        return self._checksum

    def left_out(self, context: LoadContext) -> bool:
        return any(context.skip_records.get(f.path) for f in self.files)

    async def verify(self, session: TenantSession) -> list[str]:
        """Tables holding fewer rows than this fixture put in when it was applied."""
        applied = await control_plane.applied_fixtures(session.connection, session.tenant_id)
        recorded = applied.get(self.name)
        if recorded is None:
            return [f"fixture {self.name!r} is not applied"]
        tables = [self._table(session, name) for name in recorded.row_counts]
        counts = await control_plane.count_rows(session.connection, tables)
        return [
            f"{name}: {counts[name]} rows, {rows} were loaded by {self.name!r}"
            for name, rows in recorded.row_counts.items()
            if counts[name] < rows
        ]

    def relocate(self, error: FixtureError) -> None:
        """Point an error located in this loader's files at the data it came from (the
        files are the data here; a source loader maps its staged files back)."""
        del error

    def tenant_checks(self) -> list[str]:
        """The checks this loader makes only over the tenant's rows, said for people: a
        check of the files alone names them as not made (here: its guards')."""
        return [check for guard in self.guards() for check in guard.tenant_checks()]

    def record_checks(self, settings: Settings | None) -> Mapping[str, RecordChecks]:
        """This loader's own checks of each record, by table, for the validator to run
        with the schema's (``settings``: the run's, when the loader has none): here,
        those of the loaders guarding tables of its files."""
        return {t: c for guard in self.guards() for t, c in guard.record_checks(settings).items()}

    def guards(self) -> list[DataLoader]:
        """A loader of each registered class that guards tables of this loader's files
        (:attr:`guards_tables`) and that this one is not, given those files: they load
        through it, and its checks, whichever loader a set, template or user chose."""
        # The registry holds the loader classes, and imports this module.
        from tenancy_fixtures.loading.registry import LOADERS, guarding_loader

        by_guard: dict[str, list[FixtureFile]] = {}
        for file in self.files:
            name = guarding_loader(file.table, self.schema)
            if name is not None and not isinstance(self, LOADERS[name]):
                by_guard.setdefault(name, []).append(file)
        return [self._guard(LOADERS[name], files) for name, files in by_guard.items()]

    def _guard(self, cls: type[DataLoader], files: list[FixtureFile]) -> DataLoader:
        """A ``cls`` loading ``files`` of this loader as this one would (name, modes)."""
        guard = cls(
            replace(self.fixture_set, files=tuple(files)),
            name=self.name,
            metadata=self.schema,
            batch_size=self.batch_size,
            modes=self.modes,
        )
        mine = {f.relative for f in files}
        guard.file_modes = {p: m for p, m in self.file_modes.items() if p in mine}
        guard.parallel_min_bytes = self.parallel_min_bytes
        return guard

    def close(self) -> None:
        """Release what loading needed (nothing here; staged files for source loaders)."""

    def _table(self, session: TenantSession, name: str) -> Table:
        return session.metadata.tables[f"{TENANT_SCHEMA}.{name}"]

    def _files_by_table(
        self, files: Iterable[FixtureFile]
    ) -> list[tuple[str, TableMode, list[FixtureFile]]]:
        """Files grouped by table and write mode (a file's own mode, else its table's)."""
        grouped: dict[tuple[str, TableMode], list[FixtureFile]] = {}
        for file in files:
            mode = self.file_modes.get(file.relative) or self.modes.get(file.table, "auto")
            grouped.setdefault((file.table, mode), []).append(file)
        return [(table, mode, files) for (table, mode), files in grouped.items()]

    async def apply(self, session: TenantSession, context: LoadContext) -> Mapping[str, int]:
        """Stream each table's files into the tenant; returns the records given per table.
        The files of a table another loader guards are loaded by it, in their place."""
        self.write_counts = {}
        self.written = {}
        given: dict[str, int] = {}
        for guard, files in self._segments():
            if guard is None:
                given.update(await self._write_files(session, context, files))
                continue
            given.update(await guard.apply(session, context))
            self.write_counts.update(guard.write_counts)
            self.written.update(guard.written)
        return given

    def _segments(self) -> list[tuple[DataLoader | None, list[FixtureFile]]]:
        """The files in load order, in runs this loader writes (``None``) and runs of a
        guard's, each guard's files together where its first file was."""
        guard_of = {file: guard for guard in self.guards() for file in guard.files}
        segments: list[tuple[DataLoader | None, list[FixtureFile]]] = []
        for file in self.files:
            guard = guard_of.get(file)
            if guard is not None:
                if not any(g is guard for g, _ in segments):
                    segments.append((guard, guard.files))
            elif segments and segments[-1][0] is None:
                segments[-1][1].append(file)
            else:
                segments.append((None, [file]))
        return segments

    async def _write_files(
        self, session: TenantSession, context: LoadContext, files: list[FixtureFile]
    ) -> dict[str, int]:
        """Stream ``files`` into the tenant; returns the records given per table."""
        tracker = context.tracker or PerformanceTracker()
        groups = self._files_by_table(files)
        workers_up = self._start_workers(session, groups, context)
        tables = {name: self._table(session, name) for name, _, _ in groups}
        empty_before = await _empty_before(session, tables)
        contents: dict[str, ContentChecksum] = {}
        given: dict[str, int] = {}
        for table_name, mode, files in groups:
            table = tables[table_name]
            # A second group of rows for a table (its derived rows) has keys of its own.
            write_mode = _write_mode(mode, empty=empty_before[table_name])
            if write_mode is None:
                continue
            content = contents.setdefault(table_name, table_checksum(table))
            send = await self._sender(
                session, table, files, write_mode, workers_up, context, content, tracker
            )
            async with _stamping(session, table, write_mode, context):
                counts = await self._write(
                    table, files, write_mode, send, content, context, tracker
                )
            given[table_name] = counts.inserted + counts.updated + counts.unchanged
        return given

    async def _sender(
        self,
        session: TenantSession,
        table: Table,
        files: list[FixtureFile],
        write_mode: WriteMode,
        workers_up: bool,
        context: LoadContext,
        content: ContentChecksum,
        tracker: StageTimer,
    ) -> Callable[[], Awaitable[WriteCounts]]:
        """How one group of ``table``'s rows gets to the session: parsed in this process
        or in workers, handed over as typed rows or, from workers, as ``COPY`` text."""
        copy_text = self._copy_text(session, table)
        # Smaller files join running workers only if the table keeps them light.
        joins = workers_up and self._keeps_workers_light(session, table, copy_text, context)
        in_workers = self._in_workers(table, files, joins, context)
        if in_workers and copy_text:
            payloads = stream_in_thread(
                partial(self._encode_in_workers, files, table, tracker, content, context)
            )
            return partial(self._send_text, session, table, write_mode, payloads, context)
        parse = self._parse_in_workers if in_workers else self._parse
        prepare = await _encrypting(
            session, table, session.prepare_rows(table, control_plane.columns_of(table)), context
        )
        batches = stream_in_thread(partial(parse, files, table, prepare, tracker, content, context))
        return partial(self._send_rows, session, table, write_mode, batches, context)

    async def _write(
        self,
        table: Table,
        files: list[FixtureFile],
        write_mode: WriteMode,
        send: Callable[[], Awaitable[WriteCounts]],
        content: ContentChecksum,
        context: LoadContext,
        tracker: StageTimer,
    ) -> WriteCounts:
        """Write one group of ``table``'s rows by ``send()`` (``content`` sums them up);
        returns the table's counts so far."""
        started = time.perf_counter()
        try:
            counts = await send()
        except FixtureError as exc:
            _locate(exc, files, table.name, context.skip_records)
            raise
        tracker.add("write", time.perf_counter() - started)
        counts = self.write_counts.get(table.name, WriteCounts()) + counts
        self.write_counts[table.name] = counts
        earlier = self.written.get(table.name)
        self.written[table.name] = control_plane.TableChecksum(
            table.name,
            write_mode if earlier is None or earlier.mode == write_mode else "mixed",
            content.rows,
            content.hexdigest(),
            **vars(counts),
            columns=control_plane.columns_of(table),
        )
        return counts

    async def _send_rows(
        self,
        session: TenantSession,
        table: Table,
        write_mode: WriteMode,
        batches: AsyncIterator[Sequence[tuple[Any, ...]]],
        context: LoadContext,
    ) -> WriteCounts:
        """Hand typed rows to the session, through :meth:`_reporting`."""
        stream = _progressing(self._reporting(table.name, batches), table.name, context.progress)
        async with aclosing(stream):
            return await session.write_table(
                table, control_plane.columns_of(table), stream, mode=write_mode
            )

    async def _send_text(
        self,
        session: TenantSession,
        table: Table,
        write_mode: WriteMode,
        payloads: AsyncIterator[CopyPayload],
        context: LoadContext,
    ) -> WriteCounts:
        """Hand rows encoded as ``COPY`` text to the session as they are."""
        stream = _progressing(payloads, table.name, context.progress)
        async with aclosing(stream):
            return await session.write_copy_text(
                table, control_plane.columns_of(table), stream, mode=write_mode
            )

    def _copy_text(self, session: TenantSession, table: Table) -> bool:
        """Whether parse workers may hand ``table``'s rows over as ``COPY`` text: the
        session takes it, no column is encrypted on the way, and nothing watches the rows."""
        return (
            session.takes_copy_text(table)
            and not encrypted_columns(table)
            and not self._watches(table.name)
            and row_encoder(table) is not None
        )

    def _watches(self, table: str) -> bool:
        """Whether :meth:`_reporting` looks at ``table``'s rows on their way."""
        del table
        return False

    def table_checksums(self) -> list[control_plane.TableChecksum]:
        return list(self.written.values())

    async def _reporting(
        self, table: str, batches: AsyncIterator[Sequence[tuple[Any, ...]]]
    ) -> AsyncGenerator[Sequence[tuple[Any, ...]], None]:
        """The batches on their way to ``table`` (subclasses watch them here)."""
        del table
        async for batch in batches:
            yield batch

    def _start_workers(
        self,
        session: TenantSession,
        groups: list[tuple[str, TableMode, list[FixtureFile]]],
        context: LoadContext,
    ) -> bool:
        """Whether the parse workers are up; starts them if a table is big enough."""
        if POOL.idle > 0:
            return True
        if any(
            self._in_workers(self._table(session, name), files, False, context)
            for name, _, files in groups
        ):
            POOL.prestart(context.parse_workers)  # they start while the small tables load
            return True
        return False

    def _in_workers(
        self, table: Table, files: list[FixtureFile], workers_up: bool, context: LoadContext
    ) -> bool:
        """Whether ``files`` are JSON Lines big enough for the parse workers (smaller
        ones qualify once the workers are running) and ``table`` can travel to them."""
        return (
            context.parse_workers > 0
            and not any(context.skip_records.get(f.path) for f in files)
            and self._pays_for_workers(jsonl_bytes(files), workers_up)
            and portable(table)
        )

    @staticmethod
    def _keeps_workers_light(
        session: TenantSession, table: Table, copy_text: bool, context: LoadContext
    ) -> bool:
        """Whether ``table`` leaves the parse workers as light as they are: its blocks take
        the compiled path there (which needs ``COPY`` text), or the backend takes no
        ``COPY`` text and the workers rebuild every table anyway (SQLite). A table whose
        blocks need the exact path makes each worker rebuild it, importing SQLAlchemy
        (about 25 MiB a worker, for the rest of its life), which only a table big enough
        to start workers for is worth."""
        if not session.takes_copy_text(table):
            return True
        return copy_text and (
            fast_plan(table, max_text_length=context.max_text_length, rules=context.validate_rules)
            is not None
        )

    def _pays_for_workers(self, size: int, workers_up: bool) -> bool:
        """Whether ``size`` bytes of input pay for sending them to the parse workers:
        ``parallel_min_bytes`` to start them, an eighth of it once they are running."""
        threshold = self.parallel_min_bytes // 8 if workers_up else self.parallel_min_bytes
        return size >= max(threshold, 1)

    def _parse_in_workers(
        self,
        files: list[FixtureFile],
        table: Table,
        prepare: RowPreparer | None,
        tracker: StageTimer,
        content: ContentChecksum,
        context: LoadContext,
    ) -> Iterator[Sequence[tuple[Any, ...]]]:
        """Runs in the parsing thread: blocks parsed by worker processes, in file order
        (in-process if another load holds every worker)."""
        with POOL.lend(context.parse_workers) as workers:
            if not workers:
                yield from self._parse(files, table, prepare, tracker, content, context)
                return
            blocks = parse_in_workers(
                workers,
                files,
                table,
                max_text_length=context.max_text_length,
                rules=context.validate_rules,
                batch_size=self.batch_size,
                now=context.started_at,
                local_now=context.local_started_at,
            )
            with closing(blocks):
                for block in blocks:
                    _track(block, content, tracker)
                    yield block.rows if prepare is None else prepare(block.rows)

    def _encode_in_workers(
        self,
        files: list[FixtureFile],
        table: Table,
        tracker: StageTimer,
        content: ContentChecksum,
        context: LoadContext,
    ) -> Iterator[CopyPayload]:
        """Runs in the parsing thread: blocks parsed and encoded as ``COPY`` text by
        worker processes, in file order (in-process if another load holds every worker)."""
        with POOL.lend(context.parse_workers) as workers:
            if not workers:
                encode = row_encoder(table)
                assert encode is not None
                for rows in self._parse(files, table, None, tracker, content, context):
                    started = time.perf_counter()
                    payload = CopyPayload(encode(rows), len(rows))
                    tracker.add("encode", time.perf_counter() - started)
                    yield payload
                return
            blocks = parse_in_workers(
                workers,
                files,
                table,
                max_text_length=context.max_text_length,
                rules=context.validate_rules,
                encode=True,
                batch_size=self.batch_size,
                now=context.started_at,
                local_now=context.local_started_at,
            )
            with closing(blocks):
                for block in blocks:
                    _track(block, content, tracker)
                    assert block.payload is not None
                    yield CopyPayload(block.payload, block.row_count)

    def _parse(
        self,
        files: list[FixtureFile],
        table: Table,
        prepare: RowPreparer | None,
        tracker: StageTimer,
        content: ContentChecksum,
        context: LoadContext,
    ) -> Iterator[Sequence[tuple[Any, ...]]]:
        """Runs in the parsing thread: read, type-check and prepare one batch at a time."""
        builder = RowBuilder(
            table,
            max_text_length=context.max_text_length,
            rules=context.validate_rules,
            now=context.started_at,
            local_now=context.local_started_at,
        )
        for file in files:
            records = iter_records(file)
            skipped = context.skip_records.get(file.path)
            read = 0
            while True:
                started = time.perf_counter()
                chunk = list(islice(records, self.batch_size))
                parsed = time.perf_counter()
                if not chunk:
                    if read == 0 and file.format == "csv":
                        # No row showed the header's columns to the builder: check them.
                        builder.check_columns(csv_header(file), path=file.relative, line=1)
                    break
                read += len(chunk)
                if skipped:
                    chunk = [record for record in chunk if record.record not in skipped]
                    if not chunk:
                        continue
                rows: Sequence[tuple[Any, ...]] = [
                    builder.build(record, path=file.relative) for record in chunk
                ]
                built = time.perf_counter()
                content.add(rows)
                summed = time.perf_counter()
                if prepare is not None:
                    rows = prepare(rows)
                tracker.add("parse", parsed - started)
                tracker.add("validate", built - parsed + time.perf_counter() - summed)
                tracker.add("checksum", summed - built)
                yield rows


def _track(block: ParsedBlock, content: ContentChecksum, tracker: StageTimer) -> None:
    """Count a worker's block into the table's checksum and the load's stages."""
    content.combine(block.checksum_total, block.row_count)
    tracker.add("parse", block.parse_seconds)
    tracker.add("validate", block.validate_seconds)
    tracker.add("checksum", block.checksum_seconds)
    if block.payload is not None:
        tracker.add("encode", block.encode_seconds)


async def _encrypting(
    session: TenantSession, table: Table, prepare: RowPreparer | None, context: LoadContext
) -> RowPreparer | None:
    """``prepare`` preceded by encrypting the columns ``table`` declares encrypted, with
    the tenant's data key (after the content checksum, which leaves them out).

    Without a master key a credential reference is stored as given (decryptable by the
    master key alone, as before data keys); a column encrypted whole is refused."""
    kinds = encrypted_columns(table)
    if not kinds:
        return prepare
    key = context.settings.secret_key if context.settings is not None else None
    if key is None:
        if "value" in kinds.values():
            raise SettingsError(
                f"table {table.name!r} has encrypted columns: TENANCY_SECRET_KEY must be set"
            )
        return prepare
    cipher = await tenant_cipher(session.connection, session.tenant_id, key)
    encrypt = row_encrypter(table, cipher)
    assert encrypt is not None
    if prepare is None:
        return encrypt
    then = prepare
    return lambda rows: then(encrypt(rows))


def _stamping(
    session: TenantSession, table: Table, write_mode: WriteMode, context: LoadContext
) -> AbstractAsyncContextManager[None]:
    """Around one recorded write: stamped in a bulk load (see ``LoadContext.stamp_writes``)."""
    if not context.stamp_writes:
        return nullcontext()
    return session.stamping(table, replace=write_mode == "replace")


def _write_mode(mode: TableMode, *, empty: bool) -> WriteMode | None:
    """How a group of rows in ``mode`` is written to a table (``empty`` or not);
    ``None``: the group is left out."""
    if mode == "skip" and not empty:
        return None
    if mode == "auto" or mode == "skip":
        return "insert" if empty else "upsert"
    if mode == "insert_missing":
        return "insert" if empty else "insert_missing"
    return mode


_Batch = TypeVar("_Batch", Sequence[tuple[Any, ...]], CopyPayload)


async def _progressing(
    batches: AsyncIterator[_Batch], table: str, progress: ProgressCallback | None
) -> AsyncGenerator[_Batch, None]:
    """The batches, telling ``progress`` of each once it has been taken."""
    async for batch in batches:
        yield batch
        if progress is not None:
            progress(table, batch.rows if isinstance(batch, CopyPayload) else len(batch))


def _locate(
    error: FixtureError,
    files: list[FixtureFile],
    table: str,
    skip: Mapping[Path, frozenset[int]] | None = None,
) -> None:
    """Point a database error at its file and line.

    The store reports the refused row's position in the table's stream (``record``);
    reading the files again up to it (past the records left out) finds where it came
    from.
    """
    error.table = error.table or table
    if error.path is not None:
        return
    if len(files) == 1 and error.record is None:
        error.path = files[0].relative
        return
    if error.record is None:
        return
    remaining = error.record
    for file in files:
        skipped = (skip or {}).get(file.path, frozenset())
        for source in iter_records(file):
            if source.record in skipped:
                continue
            remaining -= 1
            if remaining == 0:
                error.path = file.relative
                error.line = source.line
                error.record = None if source.line is not None else source.record
                return


def locate_violation(
    error: FixtureError,
    loaders: Iterable[DataLoader],
    skip_records: Mapping[Path, frozenset[int]] | None = None,
) -> None:
    """Point an error raised after the rows were written (deferred checks) at its source,
    or one raised while a file was written (keys kept in place) at its line.

    The table's files are found among ``loaders``; the row is found by its position
    (``record``), as the repeat of a duplicate key (whose columns SQLite names, not the
    row), or by the key the database printed, past the ``skip_records`` a lenient load
    left out. Only a refused load reads its files again.
    """
    if error.table is None or error.line is not None:
        return
    files = [f for loader in loaders for f in loader.files if f.table == error.table]
    if _find_repeat(error, files, skip_records):
        return
    key = getattr(error, "key", None)
    pointed = error.path is not None
    if pointed:
        # Raised while its file was written (keys kept in place): find the line by key.
        if error.record is not None or not key:
            return
        files = [f for f in files if f.relative == error.path]
    if not files:
        return
    if error.record is not None or not key:
        _locate(error, files, error.table, skip_records)
    elif not _find_key(error, files, key, skip_records) and not pointed:
        error.path = files[0].relative if len(files) == 1 else None


def _find_repeat(
    error: FixtureError,
    files: Sequence[FixtureFile],
    skip: Mapping[Path, frozenset[int]] | None,
) -> bool:
    """Point a duplicate-key ``error`` the database gave no position at the first record
    of ``files`` repeating an earlier record's values of its ``key_columns`` (with the
    key the database printed, that key's first repeat): rows go in in this order, so it
    is the one refused, as ``COPY`` would say. Whether one does; a key the tenant held
    before the load is no repeat here."""
    if not isinstance(error, IntegrityViolationError) or error.record is not None:
        return False
    columns = error.key_columns
    if not columns:  # not a duplicate key (a foreign key, a CHECK...)
        return False
    wanted = None if error.key is None else tuple(error.key.get(c) for c in columns)
    seen: set[tuple[str, ...]] = set()
    for file in files:
        skipped = (skip or {}).get(file.path, frozenset())
        for source in iter_records(file):
            values = [source.values.get(c) for c in columns]
            if source.record in skipped or None in values:  # NULLs repeat no key
                continue
            value = tuple(map(_printed, values))
            if value in seen and wanted in (None, value):
                _point(error, file, source)
                return True
            seen.add(value)
    return False


def _point(error: FixtureError, file: FixtureFile, source: SourceRecord) -> None:
    """Point ``error`` at ``source``: its line, or its record in a JSON array."""
    error.path = file.relative
    error.line = source.line
    error.record = None if source.line is not None else source.record


def _find_key(
    error: FixtureError,
    files: Sequence[FixtureFile],
    key: Mapping[str, str],
    skip: Mapping[Path, frozenset[int]] | None,
) -> bool:
    """Point ``error`` at the record of ``files`` holding ``key``; whether one does."""
    for file in files:
        skipped = (skip or {}).get(file.path, frozenset())
        for source in iter_records(file):
            if source.record not in skipped and _has_key(source.values, key):
                _point(error, file, source)
                return True
    return False


def _has_key(values: Mapping[str, Any], key: Mapping[str, str]) -> bool:
    """Whether a source record's ``values`` are the row whose key the database printed."""
    return all(_printed(values.get(column)) == value for column, value in key.items())


def _printed(value: Any) -> str:
    """A source value as PostgreSQL prints it in a key."""
    if isinstance(value, bool):
        return "t" if value else "f"
    return "" if value is None else str(value)


class _File(Protocol):
    @property
    def path(self) -> Path: ...
    @property
    def compressed(self) -> bool: ...


def files_bytes(files: Iterable[_File]) -> int | None:
    """Bytes of ``files`` as read (a gzip file's uncompressed size from its trailer, at
    least its size on disk past 4 GiB, where the trailer wraps); ``None`` for a file gone."""
    try:
        return sum(_read_size(f.path, f.compressed) for f in files)
    except OSError:
        return None


def _read_size(path: Path, gzipped: bool) -> int:
    on_disk = path.stat().st_size
    if not gzipped or on_disk < 4:
        return on_disk
    with path.open("rb") as file:
        file.seek(-4, 2)
        return max(on_disk, int.from_bytes(file.read(4), "little"))


async def _empty_before(session: TenantSession, tables: Mapping[str, Table]) -> dict[str, bool]:
    """Which tables are empty before the load, asked at once (a ``replace`` empties its
    own table only: it is refused while another table refers to its rows)."""
    held = await session.holding_rows(list(tables.values()))
    return {name: name not in held for name in tables}
