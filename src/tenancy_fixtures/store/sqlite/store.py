"""SQLite store: one database file per tenant, ``tenancy.db`` as the control plane.

The control plane is attached to every tenant connection as ``tenancy`` so that a
tenant's rows and their control-plane records commit in one transaction (SQLite
commits attached databases atomically outside WAL mode, which is why WAL is not used).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import URL, MetaData, Table, create_engine, delete, event, func, or_, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import CreateIndex, DropIndex
from sqlalchemy.util import LRUCache

from tenancy_fixtures.errors import (
    IntegrityViolationError,
    TenantAlreadyExistsError,
    TenantNotFoundError,
)
from tenancy_fixtures.settings import Settings
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.store.base import (
    TENANT_SCHEMA,
    Batches,
    RowPreparer,
    TenantSession,
    TenantStore,
    WriteCounts,
    WriteMode,
    convert_columns,
)
from tenancy_fixtures.store.control_plane import CONTROL_SCHEMA, control_metadata
from tenancy_fixtures.store.postgres.ddl import schema_checksum

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["SQLiteTenantStore"]

_BUSY_TIMEOUT_MS = 30_000
_READONLY = "tenancy_readonly"
_COMPILED_CACHE_SIZE = 1000
#: Suffix of a tenant file whose drop has not committed yet.
_DROPPING = ".dropping"
#: Page cache during bulk loads, in KiB (negative: PRAGMA's unit is KiB).
_BULK_CACHE_KIB = -262_144


class SQLiteTenantSession(TenantSession):
    """A transaction on one tenant file with the control plane attached."""

    _rowids_are_positions = False

    async def create_tables(self, metadata: MetaData) -> None:
        if self.prepared and metadata is self.metadata:
            return
        existing = await self.table_names()
        if {t.name for t in metadata.sorted_tables} <= existing:
            return
        await self.connection.run_sync(metadata.create_all, checkfirst=True)

    async def table_names(self) -> set[str]:
        found = await self.connection.execute(
            text("SELECT name FROM main.sqlite_master WHERE type = 'table'")
        )
        return set(found.scalars())

    def prepare_rows(self, table: Table, columns: Sequence[str]) -> RowPreparer | None:
        # Rows bypass SQLAlchemy's execution, so apply its own bind processing here.
        dialect = self.connection.dialect
        return convert_columns(
            [
                (i, processor)
                for i, name in enumerate(columns)
                if (processor := table.c[name].type.bind_processor(dialect)) is not None
            ]
        )

    async def write_table(
        self,
        table: Table,
        columns: Sequence[str],
        batches: Batches,
        *,
        mode: WriteMode,
    ) -> WriteCounts:
        dialect = self.connection.dialect
        translate = {TENANT_SCHEMA: "main"}
        statement: Any = sqlite_insert(table)
        if mode == "insert_missing":
            keys = [c.name for c in table.primary_key.columns]
            statement = statement.on_conflict_do_nothing(index_elements=keys)
        if mode == "upsert":
            keys = [c.name for c in table.primary_key.columns]
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
        sql = str(
            statement.compile(
                dialect=dialect,
                column_keys=list(columns),
                schema_translate_map=translate,
                render_schema_translate=True,
            )
        )
        if mode == "replace":
            await self.connection.execute(delete(table))
        before = await self._count(table) if mode == "upsert" else 0
        raw = await self.connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        given = written = 0
        async for batch in batches:
            try:
                cursor = await driver.executemany(sql, batch)
            except sqlite3.IntegrityError as exc:
                raise IntegrityViolationError(
                    str(exc), tenant_id=self.tenant_id, table=table.name
                ) from exc
            given += len(batch)
            written += max(cursor.rowcount, 0)
            await cursor.close()
        if mode == "insert_missing":
            return WriteCounts(inserted=written, unchanged=given - written)
        if mode != "upsert":
            return WriteCounts(inserted=given)
        inserted = await self._count(table) - before
        return WriteCounts(inserted=inserted, updated=written - inserted, unchanged=given - written)

    async def _count(self, table: Table) -> int:
        counted = await self.connection.execute(select(func.count()).select_from(table))
        return int(counted.scalar_one())

    @asynccontextmanager
    async def bulk_load(self) -> AsyncIterator[None]:
        """Bigger page cache, foreign keys checked once at the end, indexes built once."""
        empty = await self.all_empty()
        self._rowids_are_positions = empty
        driver = (await self.connection.get_raw_connection()).driver_connection
        assert driver is not None
        cache = (await (await driver.execute("PRAGMA cache_size")).fetchone())[0]
        await driver.execute(f"PRAGMA cache_size = {_BULK_CACHE_KIB}")
        await driver.execute("PRAGMA defer_foreign_keys = ON")
        indexes = [ix for t in self.metadata.sorted_tables for ix in t.indexes] if empty else []
        for index in indexes:
            await self.connection.execute(DropIndex(index))
        try:
            yield
            for index in indexes:
                await self.connection.execute(CreateIndex(index))
            await self._check_foreign_keys(driver)
        finally:
            await driver.execute(f"PRAGMA cache_size = {int(cache)}")

    async def _check_foreign_keys(self, driver: Any) -> None:
        cursor = await driver.execute("PRAGMA main.foreign_key_check")
        orphans = await cursor.fetchmany(5)
        await cursor.close()
        if orphans:
            table, rowid, parent, _ = orphans[0]
            more = f"{len(orphans)}{'+' if len(orphans) == 5 else ''} such row(s)"
            raise IntegrityViolationError(
                f"FOREIGN KEY constraint failed: a row references a missing {parent} row ({more})",
                tenant_id=self.tenant_id,
                table=table,
                # Rows of a table that was empty get rowids in the order they were given.
                record=int(rowid) if self._rowids_are_positions else None,
            )


class SQLiteTenantStore(TenantStore):
    """Tenants as files under ``<data_dir>/tenants/``; zero configuration."""

    backend = "sqlite"
    driver_errors = (sqlite3.Error,)

    def __init__(self, settings: Settings, metadata: MetaData) -> None:
        super().__init__(settings, metadata)
        self.data_dir = settings.data_dir
        self.control_path = self.data_dir / "tenancy.db"
        self.tenants_dir = self.data_dir / "tenants"
        self._control_engine: AsyncEngine | None = None
        self._tenant_engines: dict[str, AsyncEngine] = {}
        self._compiled: LRUCache[Any, Any] = LRUCache(_COMPILED_CACHE_SIZE)

    def storage_name(self, tenant_id: str) -> str:
        return str(self._tenant_path(tenant_id))

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
        if attach_control:  # a tenant engine, made after the control engine
            engine = AsyncEngine(self._sharing_dialect(url, options))
        else:
            engine = create_async_engine(url, poolclass=NullPool, execution_options=options)
        control_path = str(self.control_path)

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Transactions are begun explicitly below, so DDL is transactional too.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            if attach_control:
                cursor.execute("ATTACH DATABASE ? AS tenancy", (control_path,))
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Connection) -> None:
            # Writers take the write lock up front: no lock upgrade, no deadlock.
            # Readers begin deferred so a long load does not hold them up.
            readonly = connection.get_execution_options().get(_READONLY, False)
            connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine

    def _sharing_dialect(self, url: URL, options: dict[str, Any]) -> Engine:
        """An engine on ``url`` with the control engine's dialect (initialized on its
        first connection), so that every tenant engine finds the statements compiled
        for another one in the shared cache: SQLAlchemy keys compiled statements by
        dialect instance, and compiling costs a new tenant more than its commit does."""
        assert self._control_engine is not None
        dialect = self._control_engine.sync_engine.dialect
        cargs, cparams = dialect.create_connect_args(url)

        def connect() -> Any:
            return dialect.connect(*cargs, **cparams)

        return Engine(NullPool(connect, dialect=dialect), dialect, url, execution_options=options)

    def _tenant_engine(self, tenant_id: str) -> AsyncEngine:
        engine = self._tenant_engines.get(tenant_id)
        if engine is None:
            engine = self._engine(self._tenant_path(tenant_id), attach_control=True)
            self._tenant_engines[tenant_id] = engine
        return engine

    async def _initialize(self) -> None:
        self.tenants_dir.mkdir(parents=True, exist_ok=True)
        self._control_engine = self._engine(self.control_path, attach_control=False)
        async with self._control_engine.begin() as conn:
            await conn.run_sync(control_metadata.create_all, checkfirst=True)
            registered = {t.tenant_id for t in await control_plane.list_tenants(conn)}
        self._settle_interrupted_drops(registered)

    def _settle_interrupted_drops(self, registered: set[str]) -> None:
        """Finish drops a crash interrupted: restore files still registered, delete the rest."""
        for tomb in self.tenants_dir.glob(f"*.db{_DROPPING}"):
            tenant_id = tomb.name.removesuffix(f".db{_DROPPING}")
            live = self.tenants_dir / f"{tenant_id}.db"
            if tenant_id in registered and not live.exists():
                tomb.replace(live)
            else:
                tomb.unlink(missing_ok=True)

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
        self._template_file()
        return 0

    def _template_file(self) -> Path:
        """A database file holding the empty tenant schema, made once per schema version.

        A new tenant is a copy of it: copying a file is faster than running the DDL.
        """
        template = self.data_dir / f"template-{schema_checksum(self.metadata)[:16]}.db"
        if not template.exists():
            building = template.with_name(f"{template.name}.{uuid.uuid4().hex}")
            engine = create_engine(
                URL.create("sqlite", database=str(building)),
                poolclass=NullPool,
                execution_options={"schema_translate_map": {TENANT_SCHEMA: "main"}},
            )
            try:
                with engine.begin() as conn:
                    self.metadata.create_all(conn)
                building.replace(template)
            finally:
                engine.dispose()
                building.unlink(missing_ok=True)
        return template

    @asynccontextmanager
    async def _provision(self, tenant_id: str) -> AsyncIterator[TenantSession]:
        path = self._tenant_path(tenant_id)
        copy = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        shutil.copyfile(self._template_file(), copy)
        try:
            # A hard link never replaces an existing file: only one creator wins.
            os.link(copy, path)
        except FileExistsError:
            raise TenantAlreadyExistsError(tenant_id) from None
        finally:
            copy.unlink(missing_ok=True)
        try:
            async with self._tenant_engine(tenant_id).begin() as conn:
                yield SQLiteTenantSession(tenant_id, conn, self.metadata, prepared=True)
        except BaseException:
            await self._forget_engine(tenant_id)
            self._remove_files(path)
            raise

    @asynccontextmanager
    async def _session(self, tenant_id: str, readonly: bool) -> AsyncIterator[TenantSession]:
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
    async def _deprovision(self, tenant_id: str) -> AsyncIterator[tuple[AsyncConnection, bool]]:
        await self._forget_engine(tenant_id)
        path = self._tenant_path(tenant_id)
        tomb = path.with_name(path.name + _DROPPING)
        existed = path.exists()
        if existed:
            path.replace(tomb)
        try:
            async with self._control() as conn:
                yield conn, existed
        except BaseException:
            if existed and not path.exists():
                tomb.replace(path)
            raise
        self._remove_files(tomb)
        self._remove_files(path.with_name(path.name + "-journal"))

    async def _forget_engine(self, tenant_id: str) -> None:
        engine = self._tenant_engines.pop(tenant_id, None)
        if engine is not None:
            await engine.dispose()

    @staticmethod
    def _remove_files(path: Path) -> None:
        for leftover in (path, path.with_name(path.name + "-journal")):
            leftover.unlink(missing_ok=True)

    async def _storage_exists(self, tenant_id: str) -> bool:
        return self._tenant_path(tenant_id).exists()

    async def _storage_bytes(self, tenant_id: str) -> int:
        path = self._tenant_path(tenant_id)
        return path.stat().st_size if path.exists() else 0

    @staticmethod
    def is_transient(exc: BaseException) -> bool:
        """A locked database is worth another try; anything else is not."""
        error = exc.orig if isinstance(exc, DBAPIError) else exc
        if isinstance(error, sqlite3.OperationalError):
            return "locked" in str(error) or "busy" in str(error)
        return False
