"""PostgreSQL store: one schema per tenant, the ``tenancy`` schema as the control plane.

Every statement names its schema through ``schema_translate_map``; no session ever
sets ``search_path``, so a transaction-mode pooler cannot mix tenants up. New rows go
in with asyncpg's binary ``COPY``; the DDL of a new tenant goes in as one script.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import JSON, MetaData, Table, inspect, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.schema import CreateIndex, CreateSchema, CreateTable, DropSchema

from tenancy_fixtures.control_plane import CONTROL_SCHEMA, control_metadata
from tenancy_fixtures.errors import (
    IntegrityViolationError,
    StorageError,
    TenantAlreadyExistsError,
    TenantNotFoundError,
)
from tenancy_fixtures.settings import Settings
from tenancy_fixtures.spotify_schema import TENANT_SCHEMA
from tenancy_fixtures.store.base import TenantSession, TenantStore, WriteMode

__all__ = ["PostgresTenantStore", "render_schema_ddl"]

# Serialises control-plane creation across processes; any constant that is ours.
_INIT_LOCK_KEY = 0x7E4A_4E43
_DUPLICATE_SQLSTATES = {"42P06", "23505"}
_TRANSIENT_SQLSTATES = {"40001", "40P01", "57P01", "57P02", "57P03", "53300"}
_INTEGRITY_CLASSES = ("23", "22", "21")


def render_schema_ddl(metadata: MetaData, schema: str) -> list[str]:
    """The PostgreSQL DDL that creates ``metadata``'s tables and indexes in ``schema``."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    translate = {TENANT_SCHEMA: schema}
    elements: list[CreateTable | CreateIndex] = []
    for table in metadata.sorted_tables:
        elements.append(CreateTable(table))
        elements.extend(CreateIndex(ix) for ix in sorted(table.indexes, key=lambda i: str(i.name)))
    statements: list[str] = []
    for element in elements:
        compiled = element.compile(
            dialect=dialect, schema_translate_map=translate, render_schema_translate=True
        )
        statements.append("\n".join(line.rstrip() for line in str(compiled).strip().splitlines()))
    return statements


def _sqlstate(exc: BaseException) -> str | None:
    for candidate in (exc, getattr(exc, "orig", None), getattr(exc, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    cause = getattr(getattr(exc, "orig", None), "__cause__", None)
    code = getattr(cause, "sqlstate", None)
    return code if isinstance(code, str) else None


def _pg_error(exc: BaseException) -> asyncpg.PostgresError | None:
    seen: BaseException | None = exc
    for _ in range(4):
        if isinstance(seen, asyncpg.PostgresError):
            return seen
        if seen is None:
            return None
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None


class PostgresTenantSession(TenantSession):
    """A transaction on one tenant schema (and the ``tenancy`` schema)."""

    def __init__(
        self, tenant_id: str, connection: AsyncConnection, metadata: MetaData, schema: str
    ) -> None:
        super().__init__(tenant_id, connection, metadata)
        self.schema = schema

    async def _driver(self) -> Any:
        raw = await self.connection.get_raw_connection()
        return raw.driver_connection

    async def create_tables(self, metadata: MetaData) -> None:
        existing = await self.table_names()
        if existing:
            await self.connection.run_sync(metadata.create_all, checkfirst=True)
            return
        script = ";\n".join(render_schema_ddl(metadata, self.schema)) + ";"
        driver = await self._driver()
        try:
            await driver.execute(script)
        except asyncpg.PostgresError as exc:
            raise StorageError(
                f"creating the tenant schema failed: {exc}", tenant_id=self.tenant_id
            ) from exc

    async def table_names(self) -> set[str]:
        schema = self.schema

        def names(conn: Connection) -> set[str]:
            return set(inspect(conn).get_table_names(schema=schema))

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
        try:
            if mode == "insert":
                await self._copy(table, columns, rows)
            else:
                await self._upsert(table, columns, rows)
        except (asyncpg.PostgresError, DBAPIError) as exc:
            pg = _pg_error(exc)
            state = _sqlstate(exc) or ""
            if pg is None or not state.startswith(_INTEGRITY_CLASSES):
                raise
            detail = getattr(pg, "detail", None)
            message = pg.args[0] if pg.args else str(pg)
            raise IntegrityViolationError(
                f"{message}" + (f" ({detail})" if detail else ""),
                constraint=getattr(pg, "constraint_name", None),
                tenant_id=self.tenant_id,
                table=table.name,
            ) from exc
        return len(rows)

    async def _copy(
        self, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        json_positions = [
            i for i, name in enumerate(columns) if isinstance(table.c[name].type, JSON)
        ]
        records: Sequence[tuple[Any, ...]] = rows
        if json_positions:
            records = [
                tuple(
                    json.dumps(v) if i in json_positions and v is not None else v
                    for i, v in enumerate(row)
                )
                for row in rows
            ]
        driver = await self._driver()
        await driver.copy_records_to_table(
            table.name, records=records, columns=list(columns), schema_name=self.schema
        )

    async def _upsert(
        self, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        statement = pg_insert(table)
        keys = [c.name for c in table.primary_key.columns]
        updates = {c: statement.excluded[c] for c in columns if c not in keys}
        statement = (
            statement.on_conflict_do_update(index_elements=keys, set_=updates)
            if updates
            else statement.on_conflict_do_nothing(index_elements=keys)
        )
        params = [dict(zip(columns, row, strict=True)) for row in rows]
        await self.connection.execute(statement, params)


class PostgresTenantStore(TenantStore):
    """Tenants as schemas in one PostgreSQL database."""

    backend = "postgresql"

    def __init__(self, settings: Settings, metadata: MetaData) -> None:
        super().__init__(settings, metadata)
        self._engine: AsyncEngine | None = None

    def storage_name(self, tenant_id: str) -> str:
        return self.checked(tenant_id)

    def _translate(self, tenant_id: str | None) -> dict[str | None, str | None]:
        translate: dict[str | None, str | None] = {CONTROL_SCHEMA: CONTROL_SCHEMA}
        if tenant_id is not None:
            translate[TENANT_SCHEMA] = self.checked(tenant_id)
        return translate

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = create_async_engine(
                self.settings.url,
                pool_size=self.settings.concurrency,
                max_overflow=self.settings.concurrency,
            )
        return self._engine

    async def initialize(self) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _INIT_LOCK_KEY})
            await conn.execute(CreateSchema(CONTROL_SCHEMA, if_not_exists=True))
            await conn.run_sync(control_metadata.create_all, checkfirst=True)

    async def dispose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    @asynccontextmanager
    async def _connection(self, tenant_id: str | None) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(schema_translate_map=self._translate(tenant_id))
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def control(self) -> AsyncIterator[AsyncConnection]:
        async with self._connection(None) as conn:
            yield conn

    @asynccontextmanager
    async def provision(self, tenant_id: str) -> AsyncIterator[TenantSession]:
        schema = self.checked(tenant_id)
        async with self._connection(tenant_id) as conn:
            try:
                await conn.execute(CreateSchema(schema))
            except DBAPIError as exc:
                if _sqlstate(exc) in _DUPLICATE_SQLSTATES:
                    raise TenantAlreadyExistsError(tenant_id) from None
                raise
            yield PostgresTenantSession(tenant_id, conn, self.metadata, schema)

    @asynccontextmanager
    async def session(self, tenant_id: str) -> AsyncIterator[TenantSession]:
        schema = self.checked(tenant_id)
        async with self._connection(tenant_id) as conn:
            if not await self._schema_exists(conn, schema):
                raise TenantNotFoundError(tenant_id)
            yield PostgresTenantSession(tenant_id, conn, self.metadata, schema)

    async def drop_storage(self, tenant_id: str) -> bool:
        schema = self.checked(tenant_id)
        async with self._connection(None) as conn:
            if not await self._schema_exists(conn, schema):
                return False
            await conn.execute(DropSchema(schema, cascade=True))
        return True

    @staticmethod
    async def _schema_exists(conn: AsyncConnection, schema: str) -> bool:
        found = await conn.execute(
            text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}
        )
        return found.first() is not None

    async def storage_exists(self, tenant_id: str) -> bool:
        async with self._connection(None) as conn:
            return await self._schema_exists(conn, self.checked(tenant_id))

    async def storage_bytes(self, tenant_id: str) -> int:
        async with self._connection(None) as conn:
            size = await conn.execute(
                text(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = :s AND c.relkind IN ('r', 'm', 'p')"
                ),
                {"s": self.checked(tenant_id)},
            )
            return int(size.scalar_one())

    @staticmethod
    def is_transient(exc: BaseException) -> bool:
        """Serialization failures, deadlocks and dropped connections are worth a retry."""
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(exc, OSError | asyncpg.InterfaceError):
            return True
        return _sqlstate(exc) in _TRANSIENT_SQLSTATES or (_sqlstate(exc) or "").startswith("08")
