"""PostgreSQL store: one schema per tenant, the ``tenancy`` schema as the control plane.

Every statement names its schema through ``schema_translate_map``; no session ever
sets ``search_path``, so a transaction-mode pooler cannot mix tenants up. New rows go
in with asyncpg's binary ``COPY``; the DDL of a new tenant goes in as one script.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import (
    JSON,
    Column,
    MetaData,
    Table,
    and_,
    delete,
    exists,
    func,
    insert,
    literal_column,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.schema import (
    CreateSchema,
    CreateTable,
    DropSchema,
    DropTable,
)

from tenancy_fixtures.errors import (
    IntegrityViolationError,
    StorageError,
    TenantAlreadyExistsError,
    TenantNotFoundError,
)
from tenancy_fixtures.ids import is_valid_tenant_id
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
from tenancy_fixtures.store.postgres.ddl import (
    deferred_constraint_ddl,
    render_schema_ddl,
    schema_checksum,
)

__all__ = ["PostgresTenantStore"]

# Serialises control-plane creation across processes; any constant that is ours.
_INIT_LOCK_KEY = 0x7E4A_4E43
_DUPLICATE_SQLSTATES = {"42P06", "23505"}
_DUPLICATE_OBJECT = "42710"
_TRANSIENT_SQLSTATES = {"40001", "40P01", "57P01", "57P02", "57P03", "53300"}
_INTEGRITY_CLASSES = ("23", "22", "21")
#: Names of pre-created spare schemas (tenant ids may not start with it).
_SPARE_PREFIX = "tf_pool_"
_KEY = re.compile(r"Key \((?P<columns>[^)]*)\)=\((?P<values>.*)\)")
_COPY_LINE = re.compile(r"COPY \S+, line (?P<line>\d+)")


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def _key_of(detail: str) -> dict[str, str] | None:
    """The key in a detail like ``Key (a, "b")=(1, x) is duplicated.``, if it parses."""
    match = _KEY.search(detail)
    if match is None:
        return None
    columns = [c.strip().strip('"') for c in match["columns"].split(",")]
    values = [v.strip() for v in match["values"].split(", ")]
    return dict(zip(columns, values, strict=True)) if len(columns) == len(values) else None


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
        self,
        tenant_id: str,
        connection: AsyncConnection,
        metadata: MetaData,
        schema: str,
        *,
        prepared: bool = False,
        fresh: bool = False,
    ) -> None:
        super().__init__(tenant_id, connection, metadata, prepared=prepared)
        #: A bulk load dropped the keys, indexes and foreign keys (rebuilt at its end).
        self._keys_dropped = False
        self.schema = schema
        #: The schema was created empty in this transaction (no tables to look for).
        self.fresh = fresh

    async def _driver(self) -> Any:
        raw = await self.connection.get_raw_connection()
        return raw.driver_connection

    async def create_tables(self, metadata: MetaData) -> None:
        if self.prepared and metadata is self.metadata:
            return
        existing = set() if self.fresh else await self.table_names()
        self.fresh = False
        if {t.name for t in metadata.sorted_tables} <= existing:
            return
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
        found = await self.connection.execute(
            text("SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = :s"),
            {"s": self.schema},
        )
        return set(found.scalars())

    def prepare_rows(self, table: Table, columns: Sequence[str]) -> RowPreparer | None:
        # asyncpg's binary COPY takes JSON as text.
        return convert_columns(
            [(i, _json_text) for i, c in enumerate(columns) if isinstance(table.c[c].type, JSON)]
        )

    async def write_table(
        self,
        table: Table,
        columns: Sequence[str],
        batches: Batches,
        *,
        mode: WriteMode,
    ) -> WriteCounts:
        try:
            if mode in ("upsert", "insert_missing"):
                return await self._merge(table, columns, batches, update=mode == "upsert")
            if mode == "replace":
                await self.connection.execute(delete(table))
            copied = await self._copy(table.name, self.schema, columns, batches)
            return WriteCounts(inserted=copied)
        except (asyncpg.PostgresError, DBAPIError) as exc:
            violation = self._violation(exc, table.name)
            if violation is None:
                raise
            raise violation from exc

    def _violation(self, exc: BaseException, table: str) -> IntegrityViolationError | None:
        pg = _pg_error(exc)
        state = _sqlstate(exc) or ""
        if pg is None or not state.startswith(_INTEGRITY_CLASSES):
            return None
        detail = getattr(pg, "detail", None)
        message = pg.args[0] if pg.args else str(pg)
        match = _COPY_LINE.search(getattr(pg, "context", None) or "")
        return IntegrityViolationError(
            f"{message}" + (f" ({detail})" if detail else ""),
            constraint=getattr(pg, "constraint_name", None),
            tenant_id=self.tenant_id,
            table=getattr(pg, "table_name", None) or table,
            record=int(match["line"]) if match else None,
            key=_key_of(detail or ""),
        )

    async def _copy(self, table: str, schema: str, columns: Sequence[str], batches: Batches) -> int:
        copied = 0

        async def records() -> AsyncIterator[tuple[Any, ...]]:
            nonlocal copied
            async for batch in batches:
                copied += len(batch)
                for row in batch:
                    yield row

        driver = await self._driver()
        await driver.copy_records_to_table(
            table, records=records(), columns=list(columns), schema_name=schema
        )
        return copied

    async def _merge(
        self, table: Table, columns: Sequence[str], batches: Batches, *, update: bool
    ) -> WriteCounts:
        """COPY into a temporary staging table, then one INSERT ... ON CONFLICT merge
        (rows already there are updated where they differ, or left alone)."""
        staging = Table(
            f"tf_staging_{table.name}",
            MetaData(),
            *(Column(c, table.c[c].type) for c in columns),
            prefixes=["TEMPORARY"],
            postgresql_on_commit="DROP",
        )
        await self.connection.execute(DropTable(staging, if_exists=True))
        await self.connection.execute(CreateTable(staging))
        staged = await self._copy(staging.name, "pg_temp", columns, batches)
        keys = [c.name for c in table.primary_key.columns]
        changing = [c for c in columns if c not in keys] if update else []
        if self._keys_dropped:
            counts = await self._merge_without_keys(table, staging, keys, changing, staged)
            await self.connection.execute(DropTable(staging))
            return counts
        insert = pg_insert(table).from_select(list(columns), select(staging))
        if changing:
            merge = insert.on_conflict_do_update(
                index_elements=keys,
                set_={c: insert.excluded[c] for c in changing},
                where=tuple_(*(table.c[c] for c in changing)).is_distinct_from(
                    tuple_(*(insert.excluded[c] for c in changing))
                ),
            )
        else:
            merge = insert.on_conflict_do_nothing(index_elements=keys)
        merged = merge.returning(literal_column("xmax = 0").label("inserted")).cte("merged")
        counted = select(func.count().filter(merged.c.inserted), func.count()).select_from(merged)
        inserted, written = (await self.connection.execute(counted)).one()
        await self.connection.execute(DropTable(staging))
        return WriteCounts(
            inserted=int(inserted),
            updated=int(written) - int(inserted),
            unchanged=staged - int(written),
        )

    async def _merge_without_keys(
        self, table: Table, staging: Table, keys: list[str], changing: list[str], staged: int
    ) -> WriteCounts:
        """The merge while a bulk load has dropped the keys (a second write to a table in
        the same load): ``ON CONFLICT`` needs a unique index, an anti-join does not."""
        same_key = and_(*(table.c[k] == staging.c[k] for k in keys))
        updated = 0
        if changing:
            changed = await self.connection.execute(
                update(table)
                .values({c: staging.c[c] for c in changing})
                .where(
                    same_key,
                    tuple_(*(table.c[c] for c in changing)).is_distinct_from(
                        tuple_(*(staging.c[c] for c in changing))
                    ),
                )
            )
            updated = max(changed.rowcount, 0)
        added = await self.connection.execute(
            insert(table).from_select(
                [c.name for c in staging.columns],
                select(staging).where(~exists().where(same_key)),
            )
        )
        inserted = max(added.rowcount, 0)
        return WriteCounts(
            inserted=inserted, updated=updated, unchanged=staged - inserted - updated
        )

    @asynccontextmanager
    async def bulk_load(self) -> AsyncIterator[None]:
        """On a never-loaded tenant: drop keys, indexes and foreign keys, COPY, rebuild.

        Building a key or index once over all rows, and checking each foreign key in
        one pass, is several times faster than maintaining them row by row.
        """
        if not await self.all_empty():
            yield
            return
        dropping, rebuilding = deferred_constraint_ddl(self.metadata, self.schema)
        driver = await self._driver()
        await driver.execute(";\n".join(dropping))
        self._keys_dropped = True
        try:
            yield
        finally:
            self._keys_dropped = False
        for statement, table in rebuilding:
            try:
                await driver.execute(statement)
            except asyncpg.PostgresError as exc:
                violation = self._violation(exc, table)
                if violation is None:
                    raise
                raise violation from exc


class PostgresTenantStore(TenantStore):
    """Tenants as schemas in one PostgreSQL database."""

    backend = "postgresql"
    driver_errors = (asyncpg.PostgresError, asyncpg.InterfaceError)

    def __init__(self, settings: Settings, metadata: MetaData) -> None:
        super().__init__(settings, metadata)
        self._engine: AsyncEngine | None = None

    def storage_name(self, tenant_id: str) -> str:
        return self.checked(tenant_id)

    def tenant_role(self, tenant_id: str) -> str | None:
        tenant_id = self.checked(tenant_id)
        if not self.settings.tenant_roles:
            return None
        return f"{self.settings.tenant_role_prefix}{tenant_id}"

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

    async def _initialize(self) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _INIT_LOCK_KEY})
            await conn.execute(CreateSchema(CONTROL_SCHEMA, if_not_exists=True))
            await conn.run_sync(control_metadata.create_all, checkfirst=True)

    async def dispose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
        self._initialized = False

    @asynccontextmanager
    async def _connection(self, tenant_id: str | None) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(schema_translate_map=self._translate(tenant_id))
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def _control(self, readonly: bool = False) -> AsyncIterator[AsyncConnection]:
        del readonly  # MVCC: readers never wait for writers
        async with self._connection(None) as conn:
            yield conn

    @asynccontextmanager
    async def _provision(self, tenant_id: str) -> AsyncIterator[TenantSession]:
        schema = self.checked(tenant_id)
        async with self._connection(tenant_id) as conn:
            spare = await self._claim_spare(conn)
            quote = conn.dialect.identifier_preparer.quote_schema
            try:
                if spare is not None:
                    await conn.execute(
                        text(f"ALTER SCHEMA {quote(spare)} RENAME TO {quote(schema)}")
                    )
                else:
                    await conn.execute(CreateSchema(schema))
            except DBAPIError as exc:
                if _sqlstate(exc) in _DUPLICATE_SQLSTATES:
                    raise TenantAlreadyExistsError(tenant_id) from None
                raise
            # After a spare's rename too: the grants must name the tenant's schema.
            await self._create_tenant_role(conn, tenant_id, schema)
            yield PostgresTenantSession(
                tenant_id,
                conn,
                self.metadata,
                schema,
                prepared=spare is not None,
                fresh=spare is None,
            )

    async def _create_tenant_role(self, conn: AsyncConnection, tenant_id: str, schema: str) -> None:
        """With ``tenant_roles``: a NOLOGIN role with every right on ``schema`` and no other.

        Default privileges extend the grant to tables created in the schema later.
        """
        role = self.tenant_role(tenant_id)
        if role is None:
            return
        quote = conn.dialect.identifier_preparer.quote
        quoted_role, quoted_schema = quote(role), quote(schema)
        try:
            await conn.execute(text(f"CREATE ROLE {quoted_role} NOLOGIN"))
        except DBAPIError as exc:
            if _sqlstate(exc) != _DUPLICATE_OBJECT:
                raise
            raise StorageError(
                f"role {role!r} already exists (roles are cluster-wide: does another database "
                "use this tenant id? give each database its own TENANCY_TENANT_ROLE_PREFIX)",
                tenant_id=tenant_id,
            ) from None
        for grant in (
            f"GRANT ALL ON SCHEMA {quoted_schema} TO {quoted_role}",
            f"GRANT ALL ON ALL TABLES IN SCHEMA {quoted_schema} TO {quoted_role}",
            f"GRANT ALL ON ALL SEQUENCES IN SCHEMA {quoted_schema} TO {quoted_role}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {quoted_schema} GRANT ALL ON TABLES "
            f"TO {quoted_role}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {quoted_schema} GRANT ALL ON SEQUENCES "
            f"TO {quoted_role}",
        ):
            await conn.execute(text(grant))

    async def _drop_tenant_role(self, conn: AsyncConnection, tenant_id: str) -> None:
        """With ``tenant_roles``: drop the tenant's role and whatever it still holds here."""
        role = self.tenant_role(tenant_id)
        if role is None:
            return
        found = await conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
        if found.first() is None:
            return
        quoted = conn.dialect.identifier_preparer.quote(role)
        await conn.execute(text(f"DROP OWNED BY {quoted}"))
        await conn.execute(text(f"DROP ROLE {quoted}"))

    async def _claim_spare(self, conn: AsyncConnection) -> str | None:
        """Take one pre-created schema of the current schema version, if any is spare."""
        pool = control_plane.schema_pool_table
        oldest = (
            select(pool.c.schema_name)
            .where(pool.c.checksum == schema_checksum(self.metadata))
            .order_by(pool.c.created_at)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        claimed = await conn.execute(
            delete(pool).where(pool.c.schema_name == oldest).returning(pool.c.schema_name)
        )
        return claimed.scalar_one_or_none()

    async def warm_up(self, spares: int) -> int:
        """Keep exactly ``spares`` pre-created schemas of the current version (creating or
        dropping some); returns how many it created. Creating a tenant from a spare is a
        rename instead of the DDL.
        """
        await self.initialize()
        pool = control_plane.schema_pool_table
        checksum = schema_checksum(self.metadata)
        async with self._mapped(None):
            async with self._connection(None) as conn:
                stale = (
                    (
                        await conn.execute(
                            delete(pool)
                            .where(pool.c.checksum != checksum)
                            .returning(pool.c.schema_name)
                        )
                    )
                    .scalars()
                    .all()
                )
                for name in stale:
                    await conn.execute(DropSchema(name, cascade=True, if_exists=True))
                have = (await conn.execute(select(func.count()).select_from(pool))).scalar_one()
                if have > spares:
                    newest = (
                        select(pool.c.schema_name)
                        .order_by(pool.c.created_at.desc())
                        .limit(int(have) - spares)
                        .with_for_update(skip_locked=True)
                        .scalar_subquery()
                    )
                    surplus = (
                        (
                            await conn.execute(
                                delete(pool)
                                .where(pool.c.schema_name.in_(newest))
                                .returning(pool.c.schema_name)
                            )
                        )
                        .scalars()
                        .all()
                    )
                    for name in surplus:
                        await conn.execute(DropSchema(name, cascade=True, if_exists=True))
            created = 0
            for _ in range(max(0, spares - int(have))):
                name = f"{_SPARE_PREFIX}{uuid.uuid4().hex[:16]}"
                script = ";\n".join(render_schema_ddl(self.metadata, name)) + ";"
                async with self._connection(None) as conn:
                    await conn.execute(CreateSchema(name))
                    raw = await conn.get_raw_connection()
                    await raw.driver_connection.execute(script)  # type: ignore[union-attr]
                    await conn.execute(
                        insert(pool).values(
                            schema_name=name, checksum=checksum, created_at=control_plane.utcnow()
                        )
                    )
                created += 1
            return created

    @asynccontextmanager
    async def _session(self, tenant_id: str, readonly: bool) -> AsyncIterator[TenantSession]:
        del readonly  # MVCC: readers never wait for writers
        schema = self.checked(tenant_id)
        async with self._connection(tenant_id) as conn:
            if not await self._schema_exists(conn, schema):
                raise TenantNotFoundError(tenant_id)
            yield PostgresTenantSession(tenant_id, conn, self.metadata, schema)

    @asynccontextmanager
    async def _deprovision(self, tenant_id: str) -> AsyncIterator[tuple[AsyncConnection, bool]]:
        schema = self.checked(tenant_id)
        async with self._connection(None) as conn:
            existed = await self._schema_exists(conn, schema)
            if existed:
                await conn.execute(DropSchema(schema, cascade=True))
            await self._drop_tenant_role(conn, tenant_id)
            yield conn, existed

    @staticmethod
    async def _schema_exists(conn: AsyncConnection, schema: str) -> bool:
        found = await conn.execute(
            text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}
        )
        return found.first() is not None

    async def _storage_exists(self, tenant_id: str) -> bool:
        async with self._connection(None) as conn:
            return await self._schema_exists(conn, self.checked(tenant_id))

    async def _storage_bytes(self, tenant_id: str) -> int:
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

    async def _stored_tenants(self, conn: AsyncConnection) -> set[str]:
        """Schemas named like a tenant that hold every table of the tenant schema."""
        tables = [t.name for t in self.metadata.sorted_tables]
        found = await conn.execute(
            text(
                "SELECT n.nspname FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid "
                "WHERE c.relkind IN ('r', 'p') AND c.relname = ANY(:tables) "
                "GROUP BY n.nspname HAVING count(DISTINCT c.relname) = :n"
            ),
            {"tables": tables, "n": len(tables)},
        )
        return {name for name in found.scalars() if is_valid_tenant_id(name)}

    @staticmethod
    def is_transient(exc: BaseException) -> bool:
        """Serialization failures, deadlocks and dropped connections are worth a retry."""
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(exc, ConnectionError | TimeoutError | asyncpg.InterfaceError):
            return True
        return _sqlstate(exc) in _TRANSIENT_SQLSTATES or (_sqlstate(exc) or "").startswith("08")
