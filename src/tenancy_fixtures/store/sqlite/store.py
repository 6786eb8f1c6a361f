"""SQLite store: one database file per tenant, ``tenancy.db`` as the control plane.

The control plane is attached to every tenant connection as ``tenancy`` so that a
tenant's rows and their control-plane records commit in one transaction (SQLite
commits attached databases atomically outside WAL mode, which is why WAL is not used).

Creating and dropping a tenant change its file under the control plane's write lock,
in the transaction that registers or unregisters it; whatever a crash leaves is
settled (finished or rolled back) by the next store that initializes, see
:mod:`.recovery`.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import re
import shutil
import sqlite3
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import (
    ARRAY,
    JSON,
    URL,
    UUID,
    Column,
    ColumnElement,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    event,
    func,
    or_,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import CreateIndex, CreateTable, DropIndex
from sqlalchemy.types import TypeEngine
from sqlalchemy.util import LRUCache, await_only

from tenancy_fixtures.errors import (
    IntegrityViolationError,
    SettingsError,
    StorageError,
    TenantNotFoundError,
    TenantStorageMissingError,
)
from tenancy_fixtures.ids import is_valid_tenant_id
from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.settings import Settings
from tenancy_fixtures.store import audit_chain, control_plane
from tenancy_fixtures.store.added_columns import add_later_columns
from tenancy_fixtures.store.base import (
    TENANT_SCHEMA,
    Batches,
    IsolationFindings,
    RowPreparer,
    SchemaObject,
    TenantSession,
    TenantStore,
    WriteCounts,
    WriteMode,
    convert_columns,
    refuse_load_hazards,
    repeated_key,
    unencodable,
)
from tenancy_fixtures.store.control_plane import CONTROL_SCHEMA, control_metadata
from tenancy_fixtures.store.crash_points import armed, crash_point
from tenancy_fixtures.store.postgres.ddl import schema_checksum
from tenancy_fixtures.store.replacing import refuse_referenced_replace
from tenancy_fixtures.store.sqlite import foreign_objects
from tenancy_fixtures.store.sqlite.closing import RollbackOnClose
from tenancy_fixtures.store.sqlite.encoding import BINDING_ERRORS, first_unbindable
from tenancy_fixtures.store.sqlite.isolation import check_isolation
from tenancy_fixtures.store.sqlite.numeric import InexactNumeric, exact_numeric
from tenancy_fixtures.store.sqlite.recovery import (
    DROPPING,
    creators_lock,
    recover,
    remove_database,
    settle,
    temporary_name,
)
from tenancy_fixtures.store.sqlite.repeated_keys import refusing_repeated_keys

if TYPE_CHECKING:
    from sqlalchemy.engine import ExceptionContext
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["SQLiteTenantStore"]

log = get_logger("tenancy_fixtures.store.sqlite")

_BUSY_TIMEOUT_MS = 30_000
_READONLY = "tenancy_readonly"
#: A connection that changes a tenant's schema: foreign keys are checked at its end.
_MIGRATING = "tenancy_migrating"
_COMPILED_CACHE_SIZE = 1000
#: What ``errno`` says when a file cannot grow: the disk, a quota or a file size limit.
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: Page cache during bulk loads, in KiB (negative: PRAGMA's unit is KiB).
_BULK_CACHE_KIB = -262_144
#: How SQLite says a row repeats a key: ``UNIQUE constraint failed: users.user_id``.
_UNIQUE_FAILED = re.compile(r"UNIQUE constraint failed: (?P<columns>[^']+)")


class _Shared:
    """What every SQLite store of this process shares: the dialect of the first control
    engine initialized, and the statements compiled for it. SQLAlchemy keys compiled
    statements by dialect instance, and compiling costs a new store or tenant more than
    its first transactions do; every engine here is configured alike."""

    dialect: Dialect | None = None
    compiled: LRUCache[Any, Any] = LRUCache(_COMPILED_CACHE_SIZE)


_SQLITE_DDL: weakref.WeakKeyDictionary[MetaData, str] = weakref.WeakKeyDictionary()


def _sqlite_ddl_digest(metadata: MetaData) -> str:
    """A digest of ``metadata``'s SQLite DDL (tables and indexes): what a template file
    holds, SQLite-only options included."""
    if metadata not in _SQLITE_DDL:
        dialect = sqlite_dialect()
        ddl = hashlib.sha256()
        for table in metadata.sorted_tables:
            ddl.update(str(CreateTable(table).compile(dialect=dialect)).encode())
            for index in sorted(table.indexes, key=lambda i: str(i.name)):
                ddl.update(str(CreateIndex(index).compile(dialect=dialect)).encode())
        _SQLITE_DDL[metadata] = ddl.hexdigest()
    return _SQLITE_DDL[metadata]


def _empty_database(path: Path, metadata: MetaData, schema: str) -> None:
    """Write a database holding ``metadata``'s empty tables (``schema`` as main) at
    ``path``: built the first time, then from the bytes this process built."""
    key = _sqlite_ddl_digest(metadata)
    made = _TEMPLATES.get(key)
    if made is None:
        _create_all(path, metadata, schema)
        _TEMPLATES[key] = path.read_bytes()
    else:
        path.write_bytes(made)


#: Declared types SQLite cannot keep as declared, and why (with what to declare).
_REFUSED_TYPES: tuple[tuple[type[TypeEngine[Any]], str], ...] = (
    (
        ARRAY,
        "declared ARRAY, which SQLite does not have; use PostgreSQL for this schema, or a "
        "JSON column for the list on both",
    ),
    (
        UUID,
        "declared UUID, which SQLite stores with numeric affinity (a UUID whose hex reads "
        "as a number would become that number); declare Uuid instead (native on "
        "PostgreSQL, CHAR(32) on SQLite)",
    ),
)


def _refuse_composite_autoincrement(metadata: MetaData) -> None:
    """Refuse ``autoincrement=True`` on a column of a composite primary key: SQLite
    increments only a lone ``INTEGER PRIMARY KEY`` (its tables could not be made)."""
    columns = [
        f"{table.name}.{column.name}"
        for table in metadata.sorted_tables
        if len(table.primary_key.columns) > 1
        for column in table.primary_key.columns
        if column.autoincrement is True
    ]
    if columns:
        raise SettingsError(
            f"{', '.join(columns)}: autoincrement=True in a composite primary key, which "
            "SQLite cannot make (it increments only a lone INTEGER PRIMARY KEY); use "
            "PostgreSQL for this schema, or give the column its values"
        )


def _refuse_types(metadata: MetaData) -> None:
    """Refuse columns of a type SQLite cannot keep (see :data:`_REFUSED_TYPES`)."""
    for kind, reason in _REFUSED_TYPES:
        columns = [
            f"{table.name}.{column.name}"
            for table in metadata.sorted_tables
            for column in table.columns
            if isinstance(column.type, kind)
        ]
        if columns:
            raise SettingsError(f"{', '.join(columns)}: {reason}")


def _create_missing_control_tables(conn: Connection) -> None:
    """Create the control-plane tables an existing file lacks (one look at the catalog:
    ``create_all``'s check costs two statements per table on every start)."""
    present = set(
        conn.exec_driver_sql("SELECT name FROM main.sqlite_master WHERE type = 'table'").scalars()
    )
    missing = [t for t in control_metadata.sorted_tables if t.name not in present]
    if missing:
        control_metadata.create_all(conn, tables=missing, checkfirst=False)


def _create_all(path: Path, metadata: MetaData, schema: str) -> None:
    """A database file at ``path`` holding ``metadata``'s tables, ``schema`` as main."""
    engine = create_engine(
        URL.create("sqlite", database=str(path)),
        poolclass=NullPool,
        execution_options={"schema_translate_map": {schema: "main"}},
    )
    try:
        with engine.begin() as conn:
            metadata.create_all(conn)
    finally:
        engine.dispose()


#: Statements a connection runs as it opens, with their parameters.
_Setup = tuple[tuple[str, tuple[Any, ...]], ...]


def _opening(setup: _Setup) -> Callable[..., RollbackOnClose]:
    """A ``sqlite3`` connection factory whose connections run ``setup`` as they open: in
    aiosqlite's thread, where each statement sent from the event loop would cost a round
    trip through its queue (0.1-0.2 ms each, most of opening a session)."""

    def connect(*args: Any, **kwargs: Any) -> RollbackOnClose:
        connection = RollbackOnClose(*args, **kwargs)
        try:
            for statement, parameters in setup:
                connection.execute(statement, parameters).close()
        except BaseException:
            connection.close()
            raise
        return connection

    return connect


def _interrupt_cancelled_migration(context: ExceptionContext) -> None:
    """A migration's statement whose task was cancelled (Ctrl-C) goes on in aiosqlite's
    thread, and closing the connection waits for it: SQLite is told to stop it."""
    connection = context.connection
    if (
        isinstance(context.original_exception, asyncio.CancelledError)
        and connection is not None
        and connection.get_execution_options().get(_MIGRATING, False)
    ):
        with suppress(Exception):  # closed already: nothing left to stop
            driver = connection.connection.driver_connection
            if driver is not None:
                await_only(driver.interrupt())


def _on_dialect(
    dialect: Dialect, url: URL, options: dict[str, Any], factory: Callable[..., Any]
) -> Engine:
    """An engine on ``url`` with an initialized ``dialect`` of another engine, its
    connections made by ``factory``."""
    cargs, cparams = dialect.create_connect_args(url)
    cparams["factory"] = factory
    # What create_engine would run on each new connection (SQLite's regexp, floor...).
    on_connect = dialect.on_connect_url(url)

    def connect() -> Any:
        connection = dialect.connect(*cargs, **cparams)
        if on_connect is not None:
            on_connect(connection)
        return connection

    # No rollback on the way back to the pool: NullPool closes the connection then, and
    # RollbackOnClose rolls back whatever is open as it closes (a round trip less).
    pool = NullPool(connect, dialect=dialect, reset_on_return=None)
    return Engine(pool, dialect, url, execution_options=options)


#: Empty databases this process built (tenant templates, the control plane), by the
#: digest of their SQLite DDL: the bytes the next data directory's copy is written from.
_TEMPLATES: dict[str, bytes] = {}


def _none_as_null(column_type: Any, bind: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``bind`` for a JSON column sending ``None`` as SQL NULL, as PostgreSQL's loads do:
    SQLAlchemy's JSON binding (``none_as_null=False``) writes it as the text 'null'."""
    if not isinstance(column_type, JSON):
        return bind
    return lambda value: None if value is None else bind(value)


def _adapted(value: Any) -> Any:
    """``value`` as sqlite3 stores it: its adapter's text (a ``datetime`` or ``date``),
    else the value itself."""
    adapt = sqlite3.adapters.get((type(value), sqlite3.PrepareProtocol))
    return value if adapt is None else adapt(value)


class SQLiteTenantSession(TenantSession):
    """A transaction on one tenant file with the control plane attached."""

    _rowids_are_positions = False
    #: Checked before the first write: no undeclared trigger or view would run.
    _vetted = False

    async def storage_bytes(self) -> int:
        # The pager's page count includes pages this transaction added (not yet in the file).
        pages = await self.connection.exec_driver_sql("PRAGMA main.page_count")
        size = await self.connection.exec_driver_sql("PRAGMA main.page_size")
        return int(pages.scalar_one()) * int(size.scalar_one())

    async def undeclared_objects(self) -> list[SchemaObject]:
        declared = {t.name for t in self.metadata.sorted_tables}
        return await foreign_objects.undeclared_objects(self.connection, declared)

    async def _vet(self) -> None:
        """Refuse to write while an undeclared trigger (or a view in a table's place)
        would run; the write lock is held from the transaction's start, so nothing can
        be added in between."""
        if self._vetted or self.prepared:
            return
        declared = {t.name for t in self.metadata.sorted_tables}
        hazards = [
            found
            for found in await foreign_objects.undeclared_objects(self.connection, declared)
            if foreign_objects.is_load_hazard(found, declared)
        ]
        refuse_load_hazards(hazards, tenant_id=self.tenant_id)
        self._vetted = True

    async def create_tables(self, metadata: MetaData) -> None:
        if self.prepared and metadata is self.metadata:
            return
        existing = await self.table_names()
        if {t.name for t in metadata.sorted_tables} <= existing:
            return
        await self.connection.run_sync(metadata.create_all, checkfirst=True)

    @asynccontextmanager
    async def altering(self) -> AsyncIterator[None]:
        """Foreign keys are off on a migrating connection; after the block every key
        is checked, and a row pointing nowhere refuses the change."""
        yield
        broken = (await self.connection.exec_driver_sql("PRAGMA main.foreign_key_check")).all()
        if broken:
            tables = sorted({str(row[0]) for row in broken})
            raise StorageError(
                f"the schema change leaves {len(broken)} row(s) whose foreign key points "
                f"nowhere, in {', '.join(tables)}",
                tenant_id=self.tenant_id,
            )

    async def table_names(self) -> set[str]:
        found = await self.connection.execute(
            text("SELECT name FROM main.sqlite_master WHERE type = 'table'")
        )
        return set(found.scalars())

    async def catalog_text(self) -> str | None:
        # SQLite keeps each object's CREATE statement as written, ALTERs applied.
        found = await self.connection.exec_driver_sql(
            "SELECT type, name, tbl_name, coalesce(sql, '') FROM main.sqlite_master "
            "ORDER BY type, name"
        )
        return "\n".join("\t".join(row) for row in found)

    async def relation_names(self) -> list[str]:
        found = await self.connection.exec_driver_sql(
            "SELECT name FROM main.sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
        )
        return list(found.scalars())

    @property
    def schema_name(self) -> str:
        return "main"

    def prepare_rows(self, table: Table, columns: Sequence[str]) -> RowPreparer | None:
        # Rows bypass SQLAlchemy's execution, so apply its own bind processing here.
        dialect = self.connection.dialect
        kinds = [(i, table.c[name].type) for i, name in enumerate(columns)]
        return convert_columns(
            [
                (i, _none_as_null(kind, exact_numeric(kind, dialect, processor)))
                for i, kind in kinds
                if (processor := kind.bind_processor(dialect)) is not None
            ]
        )

    def stored_in(self, column: Column[Any], values: Sequence[Any]) -> ColumnElement[bool]:
        """A timestamp is bound as the text a load stores, past SQLAlchemy's ``DATETIME``
        binding: a load hands it to sqlite3 (after :meth:`prepare_rows`), whose adapter
        writes ``2024-01-02 03:04:05+00:00``, which that binding's text
        (``2024-01-02 03:04:05.000000``) never equals."""
        if not isinstance(column.type, DateTime):
            return column.in_(values)
        prepare = self.prepare_rows(column.table, [str(column.name)])
        sent = list(values) if prepare is None else [r[0] for r in prepare([(v,) for v in values])]
        return type_coerce(column, String()).in_([_adapted(value) for value in sent])

    async def write_table(
        self,
        table: Table,
        columns: Sequence[str],
        batches: Batches,
        *,
        mode: WriteMode,
    ) -> WriteCounts:
        await self._vet()
        sql = self._insert_sql(table, columns, mode)
        if mode == "replace":
            await refuse_referenced_replace(self.connection, table, tenant_id=self.tenant_id)
            await self.connection.execute(delete(table))
        before = 0
        if mode == "upsert":
            before = await self._count(table)
            batches = refusing_repeated_keys(batches, table, columns, self.tenant_id)
        given, written = await self._execute_batches(sql, table, columns, batches)
        if mode == "insert_missing":
            return WriteCounts(inserted=written, unchanged=given - written)
        if mode != "upsert":
            return WriteCounts(inserted=given)
        inserted = await self._count(table) - before
        return WriteCounts(inserted=inserted, updated=written - inserted, unchanged=given - written)

    def _insert_sql(self, table: Table, columns: Sequence[str], mode: WriteMode) -> str:
        """The ``INSERT`` for ``mode``, compiled once for ``executemany``: it skips rows
        whose key exists (``insert_missing``) or updates only rows that differ
        (``upsert``)."""
        statement: Any = sqlite_insert(table)
        keys = [c.name for c in table.primary_key.columns]
        if mode == "insert_missing":
            statement = statement.on_conflict_do_nothing(index_elements=keys)
        if mode == "upsert":
            changing = [c for c in columns if c not in keys]
            statement = (
                statement.on_conflict_do_update(
                    index_elements=keys,
                    set_={c: statement.excluded[c] for c in changing},
                    where=or_(
                        *(table.c[c].is_distinct_from(statement.excluded[c]) for c in changing)
                    ),
                )
                if changing
                else statement.on_conflict_do_nothing(index_elements=keys)
            )
        return str(
            statement.compile(
                dialect=self.connection.dialect,
                column_keys=list(columns),
                schema_translate_map={TENANT_SCHEMA: "main"},
                render_schema_translate=True,
            )
        )

    async def _execute_batches(
        self, sql: str, table: Table, columns: Sequence[str], batches: Batches
    ) -> tuple[int, int]:
        """Run ``sql`` over every batch; returns rows given and rows the database wrote.
        A refused or unbindable row becomes a typed error naming the table (and the row's
        place and column, when the driver could not bind a value)."""
        raw = await self.connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        given = written = 0
        async for batch in batches:
            try:
                cursor = await driver.executemany(sql, batch)
            except sqlite3.IntegrityError as exc:
                raise _violation(exc, table, self.tenant_id) from exc
            except BINDING_ERRORS as exc:
                found = first_unbindable(batch)
                if found is None:
                    raise
                value = batch[found[0]][found[1]]
                raise unencodable(
                    ValueError(str(value)) if isinstance(value, InexactNumeric) else exc,
                    backend="sqlite",
                    tenant_id=self.tenant_id,
                    table=table.name,
                    position=given + found[0] + 1,
                    column=columns[found[1]],
                ) from exc
            given += len(batch)
            written += max(cursor.rowcount, 0)
            await cursor.close()
        return given, written

    async def _count(self, table: Table) -> int:
        counted = await self.connection.execute(select(func.count()).select_from(table))
        return int(counted.scalar_one())

    @asynccontextmanager
    async def bulk_load(self, *, defer_keys: bool = True) -> AsyncIterator[None]:
        """Bigger page cache, foreign keys checked once at the end, indexes built once
        (on a never-loaded tenant, ``defer_keys`` unless the load is small)."""
        await self._vet()
        empty = await self.all_empty()
        self._rowids_are_positions = empty
        driver = (await self.connection.get_raw_connection()).driver_connection
        assert driver is not None
        cache = (await (await driver.execute("PRAGMA cache_size")).fetchone())[0]
        await driver.execute(f"PRAGMA cache_size = {_BULK_CACHE_KIB}")
        await driver.execute("PRAGMA defer_foreign_keys = ON")
        deferred = empty and defer_keys
        indexes = _deferrable_indexes(self.metadata) if deferred else []
        for index in indexes:
            await self.connection.execute(DropIndex(index))
        yield
        # Only after success: a failed or cancelled load's connection is rolled back and
        # closed, and a statement on it would replace the error with its own.
        for index in indexes:
            await self.connection.execute(CreateIndex(index))
        await self._check_foreign_keys(driver)
        await driver.execute(f"PRAGMA cache_size = {int(cache)}")

    async def _check_foreign_keys(self, driver: Any) -> None:
        cursor = await driver.execute("PRAGMA main.foreign_key_check")
        orphans = await cursor.fetchmany(5)
        await cursor.close()
        if orphans:
            table, rowid, parent, _ = orphans[0]
            more = f"{len(orphans)}{'+' if len(orphans) == 5 else ''} such row(s)"
            child = self.metadata.tables.get(f"{TENANT_SCHEMA}.{table}")
            # Rows of a table that was empty get rowids in the order they were given,
            # unless its INTEGER PRIMARY KEY is the rowid: then the key says which row.
            by_position = self._rowids_are_positions and not self._rowid_is_key(child)
            raise IntegrityViolationError(
                f"FOREIGN KEY constraint failed: a row references a missing {parent} row ({more})",
                tenant_id=self.tenant_id,
                table=table,
                record=int(rowid) if by_position else None,
                key=None if by_position else await self._key_at(driver, child, rowid),
            )

    def _rowid_is_key(self, table: Table | None) -> bool:
        """Whether ``table``'s primary key is an alias of its rowid (INTEGER PRIMARY KEY)."""
        if table is None or len(table.primary_key.columns) != 1:
            return False
        (key,) = table.primary_key.columns
        return key.type.compile(dialect=self.connection.dialect).upper() == "INTEGER"

    async def _key_at(
        self, driver: Any, table: Table | None, rowid: int | None
    ) -> dict[str, str] | None:
        """The primary key of ``table``'s row ``rowid``, as text, if it has one."""
        if table is None or rowid is None or not len(table.primary_key.columns):
            return None
        quote = self.connection.dialect.identifier_preparer.quote
        names = [c.name for c in table.primary_key.columns]
        cursor = await driver.execute(
            f"SELECT {', '.join(map(quote, names))} FROM main.{quote(table.name)} WHERE rowid = ?",
            (rowid,),
        )
        found = await cursor.fetchone()
        await cursor.close()
        return None if found is None else {n: str(v) for n, v in zip(names, found, strict=True)}


def _violation(
    exc: sqlite3.IntegrityError, table: Table, tenant_id: str
) -> IntegrityViolationError:
    """A refused row as a typed error. SQLite names the columns of a repeated key
    (``UNIQUE constraint failed: t.a, t.b``), not the row: the error carries the key's
    columns and name, as PostgreSQL's does, for the load to find the row in its files
    once it has failed."""
    message = str(exc)
    named = _UNIQUE_FAILED.fullmatch(message)
    prefix = f"{table.name}."
    parts = [p.strip() for p in named["columns"].split(",")] if named else []
    key = (
        repeated_key(table, "sqlite", columns=[p.removeprefix(prefix) for p in parts])
        if parts and all(p.startswith(prefix) for p in parts)
        else None
    )
    name, columns = key or (None, ())
    violation = IntegrityViolationError(
        message, constraint=name, tenant_id=tenant_id, table=table.name, key_columns=columns
    )
    violation.column = ", ".join(columns) or None
    return violation


class SQLiteTenantStore(TenantStore):
    """Tenants as files under ``<data_dir>/tenants/``; zero configuration."""

    backend = "sqlite"
    driver_errors = (sqlite3.Error,)
    # Every tenant transaction also writes the control-plane file (attached), and a
    # SQLite file has one writer at a time: concurrent writers would only queue.
    max_concurrent_writes = 1

    def __init__(self, settings: Settings, metadata: MetaData) -> None:
        super().__init__(settings, metadata)
        _refuse_types(metadata)
        _refuse_composite_autoincrement(metadata)
        self.data_dir = settings.data_dir
        self.control_path = self.data_dir / "tenancy.db"
        self.tenants_dir = self.data_dir / "tenants"
        self._control_engine: AsyncEngine | None = None
        self._tenant_engines: dict[str, AsyncEngine] = {}
        self._compiled: LRUCache[Any, Any] = _Shared.compiled

    def storage_name(self, tenant_id: str) -> str:
        return str(self._tenant_path(tenant_id))

    async def check_isolation(
        self, session: TenantSession, *, other_tenants: Sequence[str]
    ) -> IsolationFindings:
        return await check_isolation(
            session.connection,
            own_path=self.storage_name(session.tenant_id),
            others=other_tenants,
            path_of=self.storage_name,
        )

    def _tenant_path(self, tenant_id: str) -> Path:
        return self.tenants_dir / f"{self.checked(tenant_id)}.db"

    def _engine(self, main: Path, *, attach_control: bool) -> AsyncEngine:
        # Imported with the first engine: it brings in much of SQLAlchemy's ORM.
        from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

        translate = {TENANT_SCHEMA: "main", CONTROL_SCHEMA: CONTROL_SCHEMA}
        if not attach_control:
            translate = {CONTROL_SCHEMA: "main"}
        # A tenant file is opened read-write only: connecting never creates one.
        database = f"file:{quote(str(main))}?mode=rw" if attach_control else str(main)
        url = URL.create("sqlite+aiosqlite", database=database, query={"uri": "true"})
        options = {"schema_translate_map": translate, "compiled_cache": self._compiled}
        factory = _opening(self._setup(attach_control=attach_control))
        if attach_control:  # a tenant engine, made after the control engine
            assert self._control_engine is not None
            dialect = self._control_engine.sync_engine.dialect
            engine = AsyncEngine(_on_dialect(dialect, url, options, factory))
        elif _Shared.dialect is not None:
            engine = AsyncEngine(_on_dialect(_Shared.dialect, url, options, factory))
        else:
            engine = create_async_engine(
                url,
                poolclass=NullPool,
                pool_reset_on_return=None,  # as in _on_dialect
                execution_options=options,
                connect_args={"factory": factory},
            )

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Transactions are begun explicitly below, so DDL is transactional too.
            dbapi_connection.isolation_level = None

        event.listen(engine.sync_engine, "handle_error", _interrupt_cancelled_migration)

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Connection) -> None:
            # Writers take the write lock up front: no lock upgrade, no deadlock.
            # Readers begin deferred so a long load does not hold them up.
            options = connection.get_execution_options()
            readonly = options.get(_READONLY, False)
            if options.get(_MIGRATING, False):
                # Recreating a referenced table (Alembic's batch mode) must not cascade
                # its implicit DELETE; altering() checks every key before the commit.
                connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
            connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine

    def _setup(self, *, attach_control: bool) -> _Setup:
        """What each connection runs as it opens (see :func:`_opening`): keys checked, a
        busy timeout, a tenant file's view of the control plane, and secure deletion in
        every file it opens, so that what a drop, an erasure or a retention purge deletes
        or rewrites is overwritten, not left in free space where the file and any copy of
        it would still hold it (a person's e-mail; audit messages that quoted one). Some
        builds of SQLite have it on by default (Debian's); SQLite's own default is off."""
        setup: list[tuple[str, tuple[Any, ...]]] = [
            ("PRAGMA foreign_keys = ON", ()),
            (f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}", ()),
        ]
        if attach_control:
            setup.append((f"ATTACH DATABASE ? AS {CONTROL_SCHEMA}", (str(self.control_path),)))
        schemas = ("main", CONTROL_SCHEMA) if attach_control else ("main",)
        return (*setup, *((f"PRAGMA {schema}.secure_delete = ON", ()) for schema in schemas))

    def holds(self, path: Path) -> bool:
        return path.resolve().is_relative_to(self.data_dir.resolve())

    def _check_data_dir_parent(self) -> None:
        """The data directory may be created, but not a chain of missing directories: a
        mistyped path (``sqlite:////nonexistent_dir/sub``) must not become a new tree;
        nor may it be a file (``sqlite:///app.db`` as SQLAlchemy users write it)."""
        if self.data_dir.exists() and not self.data_dir.is_dir():
            raise SettingsError(
                f"the SQLite data directory {self.data_dir} is a file: sqlite:///DATA_DIR "
                "names a directory (it holds tenancy.db and one file per tenant); point "
                "--database-url (TENANCY_DATABASE_URL) at one"
            )
        parent = self.data_dir.absolute().parent
        if not self.data_dir.exists() and not parent.is_dir():
            raise SettingsError(
                f"the SQLite data directory {self.data_dir} cannot be created: its parent "
                f"{parent} does not exist. Create {parent} first, or point --database-url "
                "(TENANCY_DATABASE_URL) at sqlite:///DATA_DIR in an existing directory"
            )

    def _tenant_engine(self, tenant_id: str) -> AsyncEngine:
        engine = self._tenant_engines.get(tenant_id)
        if engine is None:
            engine = self._engine(self._tenant_path(tenant_id), attach_control=True)
            self._tenant_engines[tenant_id] = engine
        return engine

    async def _initialize(self) -> None:
        self._check_data_dir_parent()
        self.tenants_dir.mkdir(parents=True, exist_ok=True)
        placed = self._place_control_template()
        self._control_engine = self._engine(self.control_path, attach_control=False)
        async with self._control_engine.begin() as conn:
            if not placed:
                await conn.run_sync(_create_missing_control_tables)
            await control_plane.ensure_plane_id(conn)
            await add_later_columns(conn)
            await audit_chain.ensure_chain(conn)
            await self._settle(conn)
        if _Shared.dialect is None:  # initialized by the connection above
            _Shared.dialect = self._control_engine.sync_engine.dialect

    def _place_control_template(self) -> bool:
        """Start a new data directory's control plane as a copy of an empty one (its
        tables, made once per process): the plane id, the audit chain and the rest of
        initializing then happen on it as on a file made from nothing. Linked into place
        only where no control plane exists, so a concurrent initializer's file stands;
        returns whether this call placed it."""
        if self.control_path.exists():
            return False
        # Under the creators lock: settling removes what a crash left of these files.
        copy = self.data_dir / f"control-copy.{uuid.uuid4().hex}"
        with creators_lock(self._creators_lock_path, exclusive=False):
            try:
                _empty_database(copy, control_metadata, CONTROL_SCHEMA)
                with copy.open("rb") as made:
                    os.fsync(made.fileno())
                os.link(copy, self.control_path)
            except FileExistsError:
                return False
            finally:
                remove_database(copy)
        return True

    async def _settle(self, conn: AsyncConnection) -> None:
        """Finish or roll back the creates and drops a crash interrupted (see
        :mod:`.recovery`); ``conn`` holds the control plane's write lock."""
        registered = {t.tenant_id for t in await control_plane.list_tenants(conn)}
        with creators_lock(self._creators_lock_path, exclusive=True) as no_creators:
            settled = settle(
                self.data_dir,
                self.tenants_dir,
                registered,
                control_path=self.control_path,
                no_creators=no_creators,
            )
        if settled:
            log.info("sqlite_interrupted_work_settled", **vars(settled))

    @property
    def _creators_lock_path(self) -> Path:
        return self.data_dir / ".creators.lock"

    async def dispose(self) -> None:
        for engine in self._tenant_engines.values():
            await engine.dispose()
        self._tenant_engines.clear()
        if self._control_engine is not None:
            await self._control_engine.dispose()
            self._control_engine = None
        self._initialized = False

    @asynccontextmanager
    async def _control(self, readonly: bool = False) -> AsyncIterator[AsyncConnection]:
        assert self._control_engine is not None
        async with self._control_engine.connect() as connection:
            if readonly:
                connection = await connection.execution_options(**{_READONLY: True})
            async with connection.begin():
                yield connection

    async def warm_up(self, spares: int) -> int:
        """Build the template file new tenants are copied from (spares do not apply)."""
        del spares
        await self.initialize()
        with creators_lock(self._creators_lock_path, exclusive=False):
            self._template_file()
        return 0

    def _template_file(self) -> Path:
        """A database file holding the empty tenant schema, made once per schema version.

        A new tenant is a copy of it: copying a file is faster than running the DDL. A
        process that made the file for one data directory writes the same bytes into
        the next one (a test suite's fresh directories, several control planes).
        """
        checksum = schema_checksum(self.metadata)
        template = self.data_dir / f"template-{checksum[:16]}.db"
        if template.exists():
            return template
        building = template.with_name(f"{template.name}.{uuid.uuid4().hex}")
        try:
            _empty_database(building, self.metadata, TENANT_SCHEMA)
            building.replace(template)
        finally:
            remove_database(building)
        return template

    @asynccontextmanager
    async def _provision(self, tenant_id: str) -> AsyncIterator[TenantSession]:
        """A transaction on a copy of the template under a temporary name; the tenant's
        own name is linked to it last, under the write lock, and the temporary name is
        removed after the commit. A crash in between is settled by :mod:`.recovery`."""
        path = self._tenant_path(tenant_id)
        copy = temporary_name(path, uuid.uuid4().hex)
        linked = False
        with creators_lock(self._creators_lock_path, exclusive=False):
            try:
                crash_point("create.start")
                try:
                    shutil.copyfile(self._template_file(), copy)
                except OSError as exc:
                    if exc.errno not in _DISK_FULL:
                        raise
                    raise StorageError(
                        f"no room for a new tenant file in {self.tenants_dir} ({exc.strerror})",
                        tenant_id=tenant_id,
                    ) from exc
                crash_point("create.copied")
                engine = self._engine(copy, attach_control=True)
                if armed():
                    _add_crash_points(engine, "create")
                try:
                    async with engine.begin() as conn:
                        crash_point("create.begun")
                        yield SQLiteTenantSession(tenant_id, conn, self.metadata, prepared=True)
                        crash_point("create.linking")
                        self._link(copy, path, tenant_id)
                        linked = True
                        crash_point("create.linked")
                    crash_point("create.committed")
                finally:
                    await engine.dispose()
            except BaseException:
                if linked:
                    remove_database(path)
                raise
            finally:
                remove_database(copy)
                crash_point("create.done")

    @staticmethod
    def _link(copy: Path, path: Path, tenant_id: str) -> None:
        """Give the new tenant file its name; a hard link never replaces a file.

        The block registered the tenant, so a file already there is not registered.
        """
        try:
            os.link(copy, path)
        except FileExistsError:
            raise StorageError(
                f"{path} exists but is not registered: an orphan file (left by an interrupted "
                "create of an earlier version, or put there by hand); `validate-data --all` "
                f"reports it and `cleanup {tenant_id}` removes it",
                tenant_id=tenant_id,
            ) from None

    @asynccontextmanager
    async def _session(
        self, tenant_id: str, readonly: bool, *, snapshot: bool = False
    ) -> AsyncIterator[TenantSession]:
        # A snapshot needs nothing more: the reader's lock, taken at its first read, holds
        # writers' commits off until it ends (no WAL).
        del snapshot
        if not self._tenant_path(tenant_id).exists():
            raise TenantNotFoundError(tenant_id)
        connection = self._tenant_engine(tenant_id).connect()
        try:
            await connection.start()
        except OperationalError as exc:
            if not self._tenant_path(tenant_id).exists():
                raise TenantNotFoundError(tenant_id) from exc
            raise
        try:
            if readonly:
                connection = await connection.execution_options(**{_READONLY: True})
            async with connection.begin():
                yield SQLiteTenantSession(tenant_id, connection, self.metadata)
        finally:
            await connection.close()

    @asynccontextmanager
    async def _migrating(self, tenant_id: str) -> AsyncIterator[TenantSession]:
        if not self._tenant_path(tenant_id).exists():
            raise TenantNotFoundError(tenant_id)
        async with self._tenant_engine(tenant_id).connect() as connection:
            connection = await connection.execution_options(
                **{_MIGRATING: True},
                compiled_cache=None,
                # Names without a schema stay bare: SQLite looks in main (the tenant's
                # file) before attached files, and its DDL drops a foreign key whose
                # tables it sees in different schemas (Alembic's batch mode rebuilds).
                schema_translate_map={TENANT_SCHEMA: "main", CONTROL_SCHEMA: CONTROL_SCHEMA},
            )
            async with connection.begin():
                yield SQLiteTenantSession(tenant_id, connection, self.metadata)

    @asynccontextmanager
    async def _scratch(self) -> AsyncIterator[AsyncConnection]:
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(
            "sqlite+aiosqlite://",
            poolclass=NullPool,
            execution_options={"schema_translate_map": {TENANT_SCHEMA: "main"}},
        )
        try:
            async with engine.connect() as conn:
                transaction = await conn.begin()
                try:
                    yield conn
                finally:
                    await transaction.rollback()
        finally:
            await engine.dispose()

    @asynccontextmanager
    async def _deprovision(self, tenant_id: str) -> AsyncIterator[tuple[AsyncConnection, bool]]:
        """Under the write lock: move the file aside as ``<id>.db.dropping``, run the
        block, commit, then delete it; if the block or the commit fails, move it back."""
        await self._forget_engine(tenant_id)
        path = self._tenant_path(tenant_id)
        journal = path.with_name(path.name + "-journal")
        tomb = path.with_name(path.name + DROPPING)
        moved = False
        try:
            async with self._control() as conn:
                crash_point("drop.begun")
                if journal.exists():
                    recover(path)  # undo a crashed write before the journal loses its file
                    journal.unlink(missing_ok=True)
                existed = path.exists()
                if existed:
                    path.replace(tomb)
                    moved = True
                crash_point("drop.moved")
                try:
                    yield conn, existed
                except BaseException:
                    if moved:  # still under the lock: no settling store can see the tomb
                        _restore(tomb, path)
                        moved = False
                    raise
                crash_point("drop.commit")
            crash_point("drop.committed")
        except BaseException:
            if moved:  # the commit failed
                _restore(tomb, path)
            raise
        remove_database(tomb)
        crash_point("drop.done")

    async def _forget_engine(self, tenant_id: str) -> None:
        engine = self._tenant_engines.pop(tenant_id, None)
        if engine is not None:
            await engine.dispose()

    async def _storage_exists(self, tenant_id: str) -> bool:
        return self._tenant_path(tenant_id).exists()

    async def missing_storage(self, tenant_id: str) -> TenantStorageMissingError | None:
        """As the base's, but a file a drop under way has moved aside is a tenant going,
        not missing storage: a session racing the drop finds no tenant (404), not a
        storage failure naming the file (503)."""
        path = self._tenant_path(tenant_id)
        if path.with_name(path.name + DROPPING).exists():
            return None
        return await super().missing_storage(tenant_id)

    async def _storage_bytes(self, tenant_id: str) -> int:
        path = self._tenant_path(tenant_id)
        return path.stat().st_size if path.exists() else 0

    async def _stored_tenants(self, conn: AsyncConnection) -> set[str]:
        await self._settle(conn)
        return {
            p.name.removesuffix(".db")
            for p in self.tenants_dir.glob("*.db")
            if is_valid_tenant_id(p.name.removesuffix(".db"))
        }

    @staticmethod
    def is_transient(exc: BaseException) -> bool:
        """A locked database is worth another try; anything else is not."""
        error = exc.orig if isinstance(exc, DBAPIError) else exc
        if isinstance(error, sqlite3.OperationalError):
            return "locked" in str(error) or "busy" in str(error)
        return False


def _restore(tomb: Path, path: Path) -> None:
    """Move a file whose drop failed back (unless a settling store did already)."""
    with suppress(FileNotFoundError):
        tomb.replace(path)


def _add_crash_points(engine: AsyncEngine, operation: str) -> None:
    """Test-only: a crash point before each statement and before the commit."""

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _before_statement(*_: Any) -> None:
        crash_point(f"{operation}.statement")

    @event.listens_for(engine.sync_engine, "commit")
    def _before_commit(*_: Any) -> None:
        crash_point(f"{operation}.commit")


def _deferrable_indexes(metadata: MetaData) -> list[Index]:
    """The indexes a bulk load may drop and build once at its end: all but the unique
    ones a foreign key refers to (SQLite refuses rows for a parent key without them)."""
    referred = {
        frozenset(element.column for element in key.elements)
        for table in metadata.sorted_tables
        for key in table.foreign_key_constraints
    }
    return [
        index
        for table in metadata.sorted_tables
        for index in table.indexes
        if not (index.unique and frozenset(index.columns) in referred)
    ]
