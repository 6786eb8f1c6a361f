"""SQLite store: one database file per tenant, ``tenancy.db`` as the control plane.

The control plane is attached to every tenant connection as ``tenancy`` so that a
tenant's rows and their control-plane records commit in one transaction (SQLite
commits attached databases atomically outside WAL mode, which is why WAL is not used).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, MetaData, Table, event, insert, inspect
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from tenancy_fixtures.control_plane import CONTROL_SCHEMA, control_metadata
from tenancy_fixtures.errors import (
    IntegrityViolationError,
    TenantAlreadyExistsError,
    TenantNotFoundError,
)
from tenancy_fixtures.settings import Settings
from tenancy_fixtures.spotify_schema import TENANT_SCHEMA
from tenancy_fixtures.store.base import TenantSession, TenantStore, WriteMode

__all__ = ["SQLiteTenantStore"]

_BUSY_TIMEOUT_MS = 30_000


class SQLiteTenantSession(TenantSession):
    """A transaction on one tenant file with the control plane attached."""

    async def create_tables(self, metadata: MetaData) -> None:
        await self.connection.run_sync(metadata.create_all, checkfirst=True)

    async def table_names(self) -> set[str]:
        def names(conn: Connection) -> set[str]:
            return set(inspect(conn).get_table_names(schema="main"))

        return await self.connection.run_sync(names)

    async def write_rows(
        self,
        table: Table,
        columns: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
        *,
        mode: WriteMode,
    ) -> int:
        if not rows:
            return 0
        params = [dict(zip(columns, row, strict=True)) for row in rows]
        if mode == "insert":
            statement = insert(table)
        else:
            upsert = sqlite_insert(table)
            keys = [c.name for c in table.primary_key.columns]
            updates = {c: upsert.excluded[c] for c in columns if c not in keys}
            statement = (
                upsert.on_conflict_do_update(index_elements=keys, set_=updates)
                if updates
                else upsert.on_conflict_do_nothing(index_elements=keys)
            )
        try:
            await self.connection.execute(statement, params)
        except IntegrityError as exc:
            raise IntegrityViolationError(
                str(exc.orig), tenant_id=self.tenant_id, table=table.name
            ) from exc
        return len(rows)


class SQLiteTenantStore(TenantStore):
    """Tenants as files under ``<data_dir>/tenants/``; zero configuration."""

    backend = "sqlite"

    def __init__(self, settings: Settings, metadata: MetaData) -> None:
        super().__init__(settings, metadata)
        self.data_dir = settings.data_dir
        self.control_path = self.data_dir / "tenancy.db"
        self.tenants_dir = self.data_dir / "tenants"
        self._control_engine: AsyncEngine | None = None
        self._tenant_engines: dict[str, AsyncEngine] = {}

    def storage_name(self, tenant_id: str) -> str:
        return str(self._tenant_path(tenant_id))

    def _tenant_path(self, tenant_id: str) -> Path:
        return self.tenants_dir / f"{self.checked(tenant_id)}.db"

    def _engine(self, main: Path, *, attach_control: bool) -> AsyncEngine:
        translate = {TENANT_SCHEMA: "main", CONTROL_SCHEMA: CONTROL_SCHEMA}
        if not attach_control:
            translate = {CONTROL_SCHEMA: "main"}
        engine = create_async_engine(
            URL.create("sqlite+aiosqlite", database=str(main)),
            poolclass=NullPool,
            execution_options={"schema_translate_map": translate},
        )
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
            # IMMEDIATE takes the write lock up front: no lock upgrade, no deadlock.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    def _tenant_engine(self, tenant_id: str) -> AsyncEngine:
        engine = self._tenant_engines.get(tenant_id)
        if engine is None:
            engine = self._engine(self._tenant_path(tenant_id), attach_control=True)
            self._tenant_engines[tenant_id] = engine
        return engine

    async def initialize(self) -> None:
        if self._control_engine is not None:
            return
        self.tenants_dir.mkdir(parents=True, exist_ok=True)
        self._control_engine = self._engine(self.control_path, attach_control=False)
        async with self._control_engine.begin() as conn:
            await conn.run_sync(control_metadata.create_all, checkfirst=True)

    async def dispose(self) -> None:
        for engine in self._tenant_engines.values():
            await engine.dispose()
        self._tenant_engines.clear()
        if self._control_engine is not None:
            await self._control_engine.dispose()
            self._control_engine = None

    @asynccontextmanager
    async def control(self) -> AsyncIterator[AsyncConnection]:
        await self.initialize()
        assert self._control_engine is not None
        async with self._control_engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def provision(self, tenant_id: str) -> AsyncIterator[TenantSession]:
        await self.initialize()
        path = self._tenant_path(tenant_id)
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            raise TenantAlreadyExistsError(tenant_id) from None
        try:
            async with self._tenant_engine(tenant_id).begin() as conn:
                yield SQLiteTenantSession(tenant_id, conn, self.metadata)
        except BaseException:
            await self._remove_file(tenant_id)
            raise

    @asynccontextmanager
    async def session(self, tenant_id: str) -> AsyncIterator[TenantSession]:
        await self.initialize()
        if not self._tenant_path(tenant_id).exists():
            raise TenantNotFoundError(tenant_id)
        async with self._tenant_engine(tenant_id).begin() as conn:
            yield SQLiteTenantSession(tenant_id, conn, self.metadata)

    async def _remove_file(self, tenant_id: str) -> bool:
        engine = self._tenant_engines.pop(tenant_id, None)
        if engine is not None:
            await engine.dispose()
        path = self._tenant_path(tenant_id)
        existed = path.exists()
        for leftover in (path, path.with_name(path.name + "-journal")):
            leftover.unlink(missing_ok=True)
        return existed

    async def drop_storage(self, tenant_id: str) -> bool:
        return await self._remove_file(tenant_id)

    async def storage_exists(self, tenant_id: str) -> bool:
        return self._tenant_path(tenant_id).exists()

    async def storage_bytes(self, tenant_id: str) -> int:
        path = self._tenant_path(tenant_id)
        return path.stat().st_size if path.exists() else 0

    @staticmethod
    def is_transient(exc: BaseException) -> bool:
        """A locked database is worth another try; anything else is not."""
        if isinstance(exc, OperationalError | DBAPIError) and isinstance(
            exc.orig, sqlite3.OperationalError
        ):
            return "locked" in str(exc.orig) or "busy" in str(exc.orig)
        return False
