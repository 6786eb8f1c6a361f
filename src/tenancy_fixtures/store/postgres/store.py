"""PostgreSQL store: one schema per tenant, the ``tenancy`` schema as the control plane.

Every statement names its schema through ``schema_translate_map``; no session ever
sets ``search_path``, so a transaction-mode pooler cannot mix tenants up. New rows go
in with asyncpg's binary ``COPY``; the DDL of a new tenant goes in as one script.
Statements on a tenant's tables run as the schema's owner, and a session refuses to
write while code the schema does not declare is attached to them (:mod:`.privileges`).
"""

from __future__ import annotations

import json
import re
import socket
import uuid
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterator,
    Sequence,
)
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    MetaData,
    Table,
    and_,
    cast,
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
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.schema import (
    CreateSchema,
    CreateTable,
    DropSchema,
    DropTable,
)

from tenancy_fixtures.errors import (
    CatalogFullError,
    IntegrityViolationError,
    InvalidTenantIdError,
    StorageError,
    TenancyFixturesError,
    TenantAlreadyExistsError,
    TenantNotFoundError,
)
from tenancy_fixtures.ids import is_valid_tenant_id
from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.settings import Settings
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.store.base import (
    ENCODING_ERRORS,
    TENANT_SCHEMA,
    AccessReview,
    Batches,
    IsolationFindings,
    Payloads,
    RowPreparer,
    SchemaObject,
    TenantSession,
    TenantStore,
    WriteCounts,
    WriteMode,
    backend_dialect,
    convert_columns,
    refuse_load_hazards,
    repeated_key,
    unencodable,
)
from tenancy_fixtures.store.citus import checks as citus_checks
from tenancy_fixtures.store.citus import cluster as citus
from tenancy_fixtures.store.citus import placement as citus_placement
from tenancy_fixtures.store.citus.errors import explain, forwarded_violation, shard_names, unshard
from tenancy_fixtures.store.control_plane import ABSENT_COLUMNS, CONTROL_SCHEMA
from tenancy_fixtures.store.placement import Node, PlannedMove, TenantPlacement
from tenancy_fixtures.store.postgres import (
    catalog,
    engines,
    foreign_objects,
    privileges,
    sequences,
    write_stamps,
)
from tenancy_fixtures.store.postgres.bootstrap import Identity, ensure_control_plane
from tenancy_fixtures.store.postgres.catalog_room import CATALOG_COUNT, hold_catalog_room
from tenancy_fixtures.store.postgres.ddl import (
    deferred_constraint_ddl,
    render_schema_ddl,
    schema_checksum,
)
from tenancy_fixtures.store.postgres.encoding import first_unencodable
from tenancy_fixtures.store.postgres.isolation import check_isolation
from tenancy_fixtures.store.postgres.overriding import OverridingSelect, generated_always
from tenancy_fixtures.store.postgres.privileges import TenantRoles, acting_as
from tenancy_fixtures.store.postgres.quiet import quiet_lost_connection_writes
from tenancy_fixtures.store.postgres.sqlstate import pg_error, sqlstate
from tenancy_fixtures.store.postgres.tls import asyncpg_tls, refuse_unknown_parameters, tls_failure
from tenancy_fixtures.store.postgres.url_parameters import asyncpg_parameters
from tenancy_fixtures.store.replacing import refuse_referenced_replace
from tenancy_fixtures.store.table_shapes import checksum_round_trips
from tenancy_fixtures.store.tenant_tables import column_sequences, enum_names

__all__ = ["PostgresTenantStore"]

log = get_logger("tenancy_fixtures.store.postgres")

# Serialises control-plane creation across processes; any constant that is ours.
_INIT_LOCK_KEY = 0x7E4A_4E43
#: Serialises the creation of spares, so that warm-ups at once fill the pool only once.
_SPARES_LOCK_KEY = 0x7E4A_5350
#: With the tenant's schema name hashed, serialises the drops of one tenant.
_DROP_LOCK_CLASS = 0x7E4A_4452
_DUPLICATE_SQLSTATES = {"42P06", "23505"}
_TRANSIENT_SQLSTATES = {"40001", "40P01", "57P01", "57P02", "57P03", "53300"}
_INTEGRITY_CLASSES = ("23", "22", "21")
#: A row repeating a unique key; an upsert meeting one key twice (``ON CONFLICT``).
_UNIQUE_VIOLATION, _CARDINALITY_VIOLATION = "23505", "21000"
#: Stamped writes per transaction: PostgreSQL keeps 64 subtransaction ids per
#: transaction in shared memory; past that, every other session's snapshots look them
#: up on disk while the load runs.
_STAMPS_PER_TRANSACTION = 60
#: Names of pre-created spare schemas (tenant ids may not start with it).
_SPARE_PREFIX = "tf_pool_"
#: Spare schemas dropped per transaction (see ``_drop_spares``).
_SPARES_DROPPED_AT_ONCE = 16
#: Statements naming no schema fail instead of reaching whatever the path holds.
_PINNED_SEARCH_PATH = "SET LOCAL search_path TO pg_catalog"
#: PostgreSQL's words for a table a statement named without a schema that the
#: ``search_path`` does not hold (one named with its schema is quoted with it).
_UNQUALIFIED_MISSING = re.compile(r'relation "([^".]+)" does not exist')
#: Names of the schemas scratch() makes (never committed).
_SCRATCH_PREFIX = "tf_scratch_"
_KEY = re.compile(r"Key \((?P<columns>[^)]*)\)=\((?P<values>.*)\)")
_COPY_LINE = re.compile(r"COPY .+, line (?P<line>\d+)(?:, column (?P<column>[^:]+))?")
#: Tables, views, materialized views, partitioned and foreign tables of a schema.
_RELATIONS = text(
    "SELECT c.relname FROM pg_class c WHERE c.relnamespace = to_regnamespace(:schema) "
    "AND c.relkind IN ('r', 'v', 'm', 'p', 'f') ORDER BY 1"
)


async def run_script(driver: Any, statements: Sequence[str], citus: bool) -> None:
    """Run DDL ``statements`` in one round trip; on Citus one by one, since it forwards
    some DDL to the workers as the whole query string it received."""
    if not statements:
        return
    if citus:
        for statement in statements:
            await driver.execute(statement)
    else:
        await driver.execute(";\n".join(statements) + ";")


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


#: Sends a table's rows by ``COPY`` into ``(table, schema)``; returns how many went.
_Copy = Callable[[str, str], Awaitable[int]]


class _EncodingFailed(Exception):
    """asyncpg could not encode a row of ``batch``, whose first row is number ``start``."""

    def __init__(self, cause: Exception, batch: Sequence[tuple[Any, ...]], start: int) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.batch = batch
        self.start = start


async def schema_bytes(conn: AsyncConnection, schema: str) -> int:
    """Bytes of the tables (with their indexes and TOAST) of ``schema``."""
    size = await conn.execute(
        text(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :s AND c.relkind IN ('r', 'm', 'p')"
        ),
        {"s": schema},
    )
    return int(size.scalar_one())


#: Each enum type of a schema with its values in order.
_ENUM_VALUES = text(
    "SELECT t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) "
    "FROM pg_catalog.pg_type t JOIN pg_catalog.pg_enum e ON e.enumtypid = t.oid "
    "WHERE t.typnamespace = to_regnamespace(:schema) GROUP BY t.typname"
)


def _differ(table: Table, names: Sequence[str], stored: Any, given: Any) -> Any:
    """Whether a row's ``names`` columns differ between ``stored`` and ``given`` (column
    collections); a ``json`` column is compared as ``jsonb``, since ``json`` has no
    equality operator."""

    def comparable(column: Any, name: str) -> Any:
        kind = table.c[name].type.dialect_impl(backend_dialect("postgresql"))
        return (
            cast(column, JSONB)
            if isinstance(kind, JSON) and not isinstance(kind, JSONB)
            else column
        )

    return tuple_(*(comparable(stored[n], n) for n in names)).is_distinct_from(
        tuple_(*(comparable(given[n], n) for n in names))
    )


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
        owner: str | None = None,
        vetted: bool = False,
        citus: bool = False,
    ) -> None:
        super().__init__(tenant_id, connection, metadata, prepared=prepared)
        #: The schema may be a Citus distributed schema (errors name shards).
        self.citus = citus
        #: A bulk load dropped the keys, indexes and foreign keys (rebuilt at its end).
        self._keys_dropped = False
        self.schema = schema
        #: The schema was created empty in this transaction (no tables to look for).
        self.fresh = fresh
        #: The role statements on the tenant's tables run as (``None``: the connection's).
        self.owner = owner
        #: The tables are locked and hold no undeclared code (checked before writing).
        self._vetted = vetted
        #: Writes stamped in this transaction (each a subtransaction).
        self._stamps = 0

    @property
    def declared(self) -> set[str]:
        """The tables the schema definition declares."""
        return {t.name for t in self.metadata.sorted_tables}

    @property
    def declared_enums(self) -> set[str]:
        """The enum types the declared tables' columns use (in the tenant's schema)."""
        return set(enum_names(self.metadata))

    async def storage_bytes(self) -> int:
        # Relation files grow as rows are written, committed or not.
        return await schema_bytes(self.connection, self.schema)

    async def enum_values(self) -> dict[str, tuple[str, ...]] | None:
        found = await self.connection.execute(_ENUM_VALUES, {"schema": self.schema})
        return {str(name): tuple(values) for name, values in found}

    async def undeclared_objects(self) -> list[SchemaObject]:
        return await foreign_objects.undeclared_objects(
            self.connection,
            self.schema,
            self.declared,
            self.declared_enums,
            column_sequences(self.metadata),
        )

    async def _vet(self) -> None:
        """Before the first write: lock the tables and refuse if undeclared code would
        run (or be written through) during it."""
        if self._vetted:
            return
        existing = await self.table_names()
        async with acting_as(self.connection, self.owner, tenant_id=self.tenant_id):
            hazards = await foreign_objects.load_hazards(
                self.connection,
                self.schema,
                self.declared,
                existing,
                self.declared_enums,
                column_sequences(self.metadata),
            )
        refuse_load_hazards(hazards, tenant_id=self.tenant_id)
        self._vetted = True

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
        async with acting_as(self.connection, self.owner, tenant_id=self.tenant_id):
            if existing:
                await self.connection.run_sync(metadata.create_all, checkfirst=True)
                return
            driver = await self._driver()
            try:
                await run_script(driver, render_schema_ddl(metadata, self.schema), self.citus)
            except asyncpg.PostgresError as exc:
                raise StorageError(
                    f"creating the tenant schema failed: {exc}", tenant_id=self.tenant_id
                ) from exc

    @asynccontextmanager
    async def altering(self) -> AsyncIterator[None]:
        """As the schema's owner (what it creates is the owner's, and the tenant role's
        default privileges apply), with ``pg_catalog`` alone on the ``search_path``: a
        statement naming no schema fails instead of reaching whatever the path holds."""
        await self.connection.execute(text(_PINNED_SEARCH_PATH))
        if self.citus:
            await citus.propagate_ddl(self.connection)
        async with acting_as(self.connection, self.owner, tenant_id=self.tenant_id):
            yield

    def altering_setup(self) -> list[str]:
        setup = [_PINNED_SEARCH_PATH]
        if self.citus:
            setup.append(citus.PROPAGATE_DDL)
        if self.owner is not None:
            setup.append(privileges.role_setting(self.owner))
        return setup

    async def clock(self) -> tuple[datetime, datetime]:
        found = (await self.connection.execute(text("SELECT now(), LOCALTIMESTAMP"))).one()
        now: datetime = found[0]
        local: datetime = found[1]
        return now.astimezone(UTC), local

    async def advance_sequences(self, tables: Collection[str]) -> int:
        async with acting_as(self.connection, self.owner, tenant_id=self.tenant_id):
            return await sequences.advance_sequences(
                self.connection, self.schema, self.metadata, tables
            )

    async def table_names(self) -> set[str]:
        found = await self.connection.execute(
            text("SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = :s"),
            {"s": self.schema},
        )
        return set(found.scalars())

    async def catalog_text(self) -> str | None:
        return await catalog.catalog_text(self.connection, self.schema)

    async def relation_names(self) -> list[str]:
        found = await self.connection.execute(_RELATIONS, {"schema": self.schema})
        return list(found.scalars())

    @property
    def schema_name(self) -> str:
        return self.schema

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
            return await self._write(
                table,
                columns,
                mode,
                lambda name, schema: self._copy(name, schema, columns, batches),
            )
        except _EncodingFailed as failed:
            found = first_unencodable(table, columns, failed.batch)
            raise unencodable(
                failed.cause,
                backend="postgresql",
                tenant_id=self.tenant_id,
                table=table.name,
                position=None if found is None else failed.start + found[0],
                column=None if found is None else found[1],
            ) from failed.cause

    async def scan_rows(
        self,
        table: Table,
        batch: int = 5000,
        *,
        rows: int | None = None,
        columns: Sequence[Column[Any]] | None = None,
    ) -> AsyncIterator[list[tuple[Any, ...]]]:
        if rows == 0:
            return
        # The driver's own cursor: SQLAlchemy's result rows cost several times asyncpg's
        # decoding, row by row (the connection's codecs decode JSON as SQLAlchemy does).
        names = ", ".join(privileges.quote(c.name) for c in columns or table.columns)
        query = (
            f"SELECT {names} FROM {privileges.quote(self.schema)}.{privileges.quote(table.name)}"
        )
        driver = await self._driver()
        cursor = await driver.cursor(query)
        while records := await cursor.fetch(batch):
            yield list(map(tuple, records))

    def stamping(self, table: Table, *, replace: bool) -> AbstractAsyncContextManager[None]:
        # Citus rows carry the ids of the workers' transactions, not this one's; a table
        # whose types the database changes values of could not use its stamp.
        if self.citus or self._stamps >= _STAMPS_PER_TRANSACTION or not checksum_round_trips(table):
            return super().stamping(table, replace=replace)
        self._stamps += 1
        return write_stamps.stamped(
            self.connection,
            tenant_id=self.tenant_id,
            schema=self.schema,
            table=table,
            replace=replace,
        )

    async def unstamped_rows(
        self, tables: Sequence[Table], *, writes: int
    ) -> dict[str, tuple[int, int]] | None:
        if self.citus:
            return None
        return await write_stamps.count_unstamped(
            self.connection,
            tenant_id=self.tenant_id,
            schema=self.schema,
            tables=tables,
            writes=writes,
        )

    def takes_copy_text(self, table: Table) -> bool:
        # Citus routes COPY text too, but its path is kept to the one it was tested with.
        del table
        return not self.citus

    async def write_copy_text(
        self, table: Table, columns: Sequence[str], payloads: Payloads, *, mode: WriteMode
    ) -> WriteCounts:
        return await self._write(
            table,
            columns,
            mode,
            lambda name, schema: self._copy_text(name, schema, columns, payloads),
        )

    async def _write(
        self, table: Table, columns: Sequence[str], mode: WriteMode, copy: _Copy
    ) -> WriteCounts:
        """Write ``table`` by ``mode``; ``copy(table, schema)`` sends the rows."""
        await self._vet()
        try:
            if mode in ("upsert", "insert_missing"):
                return await self._merge(table, columns, copy, update=mode == "upsert")
            async with acting_as(self.connection, self.owner, tenant_id=self.tenant_id):
                if mode == "replace":
                    await refuse_referenced_replace(
                        self.connection, table, tenant_id=self.tenant_id
                    )
                    await self.connection.execute(delete(table))
                copied = await copy(table.name, self.schema)
            return WriteCounts(inserted=copied)
        except (asyncpg.PostgresError, DBAPIError) as exc:
            violation = self._violation(exc, table.name)
            if violation is None:
                raise
            raise violation from exc

    def _violation(self, exc: BaseException, table: str) -> IntegrityViolationError | None:
        pg = pg_error(exc)
        state = sqlstate(exc) or ""
        if pg is None:
            return None
        message = pg.args[0] if pg.args else str(pg)
        constraint = getattr(pg, "constraint_name", None)
        if self.citus and not state.startswith(_INTEGRITY_CLASSES):
            forwarded, constraint = forwarded_violation(state, message)
            if not forwarded:
                return None
        elif not state.startswith(_INTEGRITY_CLASSES):
            return None
        detail = self._unshard(getattr(pg, "detail", None))
        message = self._unshard(message) or message
        match = _COPY_LINE.search(getattr(pg, "context", None) or "")
        table = self._unshard(getattr(pg, "table_name", None)) or table
        constraint = self._unshard(constraint)
        repeated = self._repeated(state, table, constraint)
        violation = IntegrityViolationError(
            f"{message}" + (f" ({detail})" if detail else ""),
            constraint=constraint,
            tenant_id=self.tenant_id,
            table=table,
            record=int(match["line"]) if match else None,
            key=_key_of(detail or ""),
            key_columns=repeated,
        )
        violation.column = (
            getattr(pg, "column_name", None)
            or (match["column"] if match else None)
            or ", ".join(repeated)
            or None
        )
        return violation

    def _repeated(self, state: str, table: str, constraint: str | None) -> tuple[str, ...]:
        """A duplicate key's columns: the unique key ``constraint`` names (23505), or the
        primary key an upsert's ``ON CONFLICT`` met twice in one statement (21000)."""
        found = self.metadata.tables.get(f"{TENANT_SCHEMA}.{table}")
        if state == _UNIQUE_VIOLATION and constraint is not None:
            key = repeated_key(found, "postgresql", name=constraint)
            return key[1] if key else ()
        if state == _CARDINALITY_VIOLATION and found is not None:
            return tuple(c.name for c in found.primary_key.columns)
        return ()

    def _unshard(self, name: str | None) -> str | None:
        """On Citus, ``name`` with shard suffixes mapped back to the tenant's names."""
        if name is None or not self.citus:
            return name
        return unshard(name, shard_names(self.metadata))

    async def _copy(self, table: str, schema: str, columns: Sequence[str], batches: Batches) -> int:
        copied = 0
        #: The batch asyncpg is encoding; ``None`` while the next one is awaited.
        current: Sequence[tuple[Any, ...]] | None = None

        async def records() -> AsyncIterator[tuple[Any, ...]]:
            nonlocal copied, current
            async for batch in batches:
                current = batch
                for row in batch:
                    yield row
                copied += len(batch)
                current = None

        driver = await self._driver()
        try:
            await driver.copy_records_to_table(
                table, records=records(), columns=list(columns), schema_name=schema
            )
        except ENCODING_ERRORS as exc:
            if current is None:  # raised while reading, not while encoding
                raise
            raise _EncodingFailed(exc, current, copied + 1) from exc
        except asyncpg.InsufficientPrivilegeError as exc:
            denied = privileges.permission_error(
                exc, user=None, role=self.owner, tenant_id=self.tenant_id, statement="COPY"
            )
            assert denied is not None
            raise denied from exc
        return copied

    async def _copy_text(
        self, table: str, schema: str, columns: Sequence[str], payloads: Payloads
    ) -> int:
        copied = 0

        async def data() -> AsyncIterator[bytes]:
            nonlocal copied
            async for payload in payloads:
                yield payload.data
                copied += payload.rows

        driver = await self._driver()
        try:
            await driver.copy_to_table(
                table, source=data(), columns=list(columns), schema_name=schema, format="text"
            )
        except asyncpg.InsufficientPrivilegeError as exc:
            denied = privileges.permission_error(
                exc, user=None, role=self.owner, tenant_id=self.tenant_id, statement="COPY"
            )
            assert denied is not None
            raise denied from exc
        return copied

    async def _merge(
        self, table: Table, columns: Sequence[str], copy: _Copy, *, update: bool
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
        staged = await copy(staging.name, "pg_temp")
        if self.owner is not None:
            # The staging table is the connection's own; the owner only reads it.
            await self.connection.execute(
                text(
                    f"GRANT SELECT ON pg_temp.{privileges.quote(staging.name)} "
                    f"TO {privileges.quote(self.owner)}"
                )
            )
        keys = [c.name for c in table.primary_key.columns]
        changing = [c for c in columns if c not in keys] if update else []
        if self._keys_dropped:
            async with acting_as(self.connection, self.owner, tenant_id=self.tenant_id):
                counts = await self._merge_without_keys(table, staging, keys, changing, staged)
            await self.connection.execute(DropTable(staging))
            return counts
        rows = OverridingSelect(staging) if generated_always(table, columns) else select(staging)
        insert = pg_insert(table).from_select(list(columns), rows)
        if changing:
            merge = insert.on_conflict_do_update(
                index_elements=keys,
                set_={c: insert.excluded[c] for c in changing},
                where=_differ(table, changing, table.c, insert.excluded),
            )
        else:
            merge = insert.on_conflict_do_nothing(index_elements=keys)
        merged = merge.returning(literal_column("xmax = 0").label("inserted")).cte("merged")
        counted = select(func.count().filter(merged.c.inserted), func.count()).select_from(merged)
        async with acting_as(self.connection, self.owner, tenant_id=self.tenant_id):
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
                    _differ(table, changing, table.c, staging.c),
                )
            )
            updated = max(changed.rowcount, 0)
        columns = [c.name for c in staging.columns]
        rows = OverridingSelect(staging) if generated_always(table, columns) else select(staging)
        added = await self.connection.execute(
            insert(table).from_select(columns, rows.where(~exists().where(same_key)))
        )
        inserted = max(added.rowcount, 0)
        return WriteCounts(
            inserted=inserted, updated=updated, unchanged=staged - inserted - updated
        )

    @asynccontextmanager
    async def bulk_load(self, *, defer_keys: bool = True) -> AsyncIterator[None]:
        """On a never-loaded tenant: drop keys, indexes and foreign keys, COPY, rebuild.

        Building a key or index once over all rows, and checking each foreign key in
        one pass, is several times faster than maintaining them row by row; for a small
        load (``defer_keys=False``) the dropping and rebuilding costs more.
        """
        await self._vet()
        if not defer_keys or self.citus or not await self.all_empty():
            # On Citus each dropped and rebuilt key is DDL sent on to the worker: slower.
            yield
            return
        dropping, rebuilding, names = deferred_constraint_ddl(self.metadata, self.schema)
        driver = await self._driver()
        if not names <= await _named_in_schema(driver, self.schema):
            # Made with other names (a tenant created before keys a column declares kept
            # the schema's names): dropping by these would fail, so the keys stay.
            yield
            return
        async with acting_as(self.connection, self.owner, tenant_id=self.tenant_id):
            await run_script(driver, dropping, self.citus)
        self._keys_dropped = True
        try:
            yield
        finally:
            self._keys_dropped = False
        async with acting_as(self.connection, self.owner, tenant_id=self.tenant_id):
            for statement, table in rebuilding:
                try:
                    await driver.execute(statement)
                except asyncpg.PostgresError as exc:
                    violation = self._violation(exc, table)
                    if violation is None:
                        raise
                    raise violation from exc


async def _named_in_schema(driver: asyncpg.Connection, schema: str) -> set[str]:
    """The names of the indexes and constraints in ``schema``."""
    rows = await driver.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relkind IN ('i', 'I') UNION ALL SELECT k.conname "
        "FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace "
        "WHERE n.nspname = $1",
        schema,
    )
    return {str(row[0]) for row in rows}


class PostgresTenantStore(TenantStore):
    """Tenants as schemas in one PostgreSQL database."""

    backend = "postgresql"
    driver_errors = (asyncpg.PostgresError, asyncpg.InterfaceError)

    def __init__(self, settings: Settings, metadata: MetaData) -> None:
        super().__init__(settings, metadata)
        self._engine: AsyncEngine | None = None
        self._identity: Identity | None = None
        #: The Citus version when tenant schemas are distributed (found by initialize()).
        self._citus: str | None = None
        # Checked here, so a bad TLS parameter is a SettingsError before any connection.
        url, connect_args = asyncpg_tls(settings.url, settings.pg_tls)
        refuse_unknown_parameters(url)
        url, typed = asyncpg_parameters(url)
        connect_args.update(typed)
        # The SQL text the store writes (server defaults in DDL, literals) quotes strings
        # as standard SQL does; a server (or database) set otherwise would read each
        # backslash in them as an escape.
        server = dict(connect_args.get("server_settings") or {})
        server.setdefault("standard_conforming_strings", "on")
        self._url, self._connect_args = url, {**connect_args, "server_settings": server}

    def storage_name(self, tenant_id: str) -> str:
        return self.checked(tenant_id)

    def _roles(self, tenant_id: str) -> TenantRoles:
        """The tenant's role names, whether ``tenant_roles`` is on or not."""
        return privileges.tenant_roles(self.settings.tenant_role_prefix, self.checked(tenant_id))

    def tenant_role(self, tenant_id: str) -> str | None:
        roles = self._roles(tenant_id)
        return roles.tenant if self.settings.tenant_roles else None

    def owner_role(self, tenant_id: str) -> str | None:
        roles = self._roles(tenant_id)
        return roles.owner if self.settings.tenant_roles else None

    @property
    def _database(self) -> str:
        assert self._identity is not None, "the store is initialized"
        return self._identity.database

    def _storage_error(self, exc: BaseException, tenant_id: str | None) -> StorageError:
        user = self._identity.user if self._identity is not None else None
        denied = privileges.permission_error(exc, user=user, tenant_id=tenant_id)
        if denied is not None:
            return denied
        tls = tls_failure(exc)
        if tls is not None:
            return StorageError(
                f"postgresql TLS failed: {tls}",
                tenant_id=tenant_id,
                transient=self.is_transient(exc),
            )
        if self._citus is not None and _unreachable(exc) is None:
            found = super()._storage_error(exc, tenant_id)
            return StorageError(
                explain(unshard(found.message, shard_names(self.metadata))),
                tenant_id=tenant_id,
                transient=found.transient,
            )
        unreachable = _unreachable(exc)
        if unreachable is not None:
            return StorageError(
                f"postgresql failed: cannot reach the server at "
                f"{self.settings.safe_database_url()} ({unreachable}); start it, or point "
                "--database-url (TENANCY_DATABASE_URL) at another server",
                tenant_id=tenant_id,
                transient=True,
            )
        stranger = _not_postgres(exc)
        if stranger is not None:
            return StorageError(
                f"postgresql failed: the server at {self.settings.safe_database_url()} did not "
                f"answer as PostgreSQL ({stranger}); check the host and port (and sslmode), or "
                "point --database-url (TENANCY_DATABASE_URL) at another server",
                tenant_id=tenant_id,
                transient=self.is_transient(exc),
            )
        if _timed_out(exc):
            # asyncpg's TimeoutError says nothing at all ("postgresql failed: TimeoutError").
            return StorageError(
                f"postgresql failed: timed out waiting for the server at "
                f"{self.settings.safe_database_url()}: connecting may take the URL's timeout "
                "(default 60 s), a statement its command_timeout (default: no limit)",
                tenant_id=tenant_id,
                transient=self.is_transient(exc),
            )
        return super()._storage_error(exc, tenant_id)

    async def review_access(self, session: TenantSession) -> AccessReview | None:
        assert isinstance(session, PostgresTenantSession)
        return await privileges.review_access(
            session.connection, session.schema, self._roles(session.tenant_id), session.declared
        )

    async def check_isolation(
        self, session: TenantSession, *, other_tenants: Sequence[str]
    ) -> IsolationFindings:
        schema = self.storage_name(session.tenant_id)
        findings = await check_isolation(
            session.connection,
            schema=schema,
            role=self.tenant_role(session.tenant_id),
            others=other_tenants,
        )
        if self._citus is not None:
            more = await citus_checks.isolation_findings(session.connection, schema, other_tenants)
            findings.problems += more.problems
            findings.notes += more.notes
            findings.verified += more.verified
        return findings

    async def storage_drift(self, session: TenantSession) -> list[str]:
        if self._citus is None:
            return []
        assert isinstance(session, PostgresTenantSession)
        return await citus_checks.drift_findings(
            session.connection, session.schema, session.declared
        )

    @property
    def distributed(self) -> str | None:
        return None if self._citus is None else f"citus {self._citus}"

    def _citus_only(self, what: str) -> None:
        if self._citus is None:
            raise self._not_distributed(what)

    @asynccontextmanager
    async def _autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection outside any transaction block (Citus's moves commit as they go)."""
        async with self._mapped(None), self.engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    async def placements(self, tenant_ids: Sequence[str]) -> list[TenantPlacement]:
        await self.initialize()
        self._citus_only("placement")
        schemas = {t: self.checked(t) for t in tenant_ids}
        async with self._mapped(None), self._connection(None) as conn:
            return await citus_placement.placements(conn, schemas)

    async def move_tenant(self, tenant_id: str, node: str, *, mode: str) -> tuple[Node, Node]:
        await self.initialize()
        self._citus_only("move-tenant")
        schema = self.checked(tenant_id)
        async with self._autocommit() as conn:
            target = await citus_placement.resolve_node(conn, node)
            source = await citus_placement.schema_node(conn, schema)
            if source is None:
                if not await self._schema_exists(conn, schema):
                    raise TenantNotFoundError(tenant_id)
                raise StorageError(
                    f"tenant '{tenant_id}''s schema is not a Citus distributed schema (it was "
                    "created before TENANCY_DISTRIBUTED applied): SELECT "
                    f"citus_schema_distribute('{schema}') on the coordinator places it",
                    tenant_id=tenant_id,
                )
            if source != target:
                await citus_placement.move_schema(conn, schema, target, mode)
            return source, target

    async def rebalance_plan(self) -> list[PlannedMove]:
        await self.initialize()
        self._citus_only("rebalance")
        async with self._mapped(None), self._connection(None) as conn:
            registered = await control_plane.list_tenants(conn)
            owners = {self.checked(t.tenant_id): t.tenant_id for t in registered}
            return await citus_placement.rebalance_plan(conn, owners)

    async def rebalance(self, *, mode: str) -> None:
        await self.initialize()
        self._citus_only("rebalance")
        async with self._autocommit() as conn:
            await citus_placement.rebalance(conn, mode)

    def _translate(self, tenant_id: str | None) -> dict[str | None, str | None]:
        translate: dict[str | None, str | None] = {CONTROL_SCHEMA: CONTROL_SCHEMA}
        if tenant_id is not None:
            translate[TENANT_SCHEMA] = self.checked(tenant_id)
        return translate

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = engines.engine_for(
                self._url,
                self._connect_args,
                pool_size=self.settings.concurrency,
                max_overflow=self.settings.concurrency,
            )
        return self._engine

    async def _initialize(self) -> None:
        if self.settings.distributed != "off" and self._citus is None:
            async with self.engine.connect() as conn:
                self._citus = await citus.detect_citus(
                    conn,
                    wanted=self.settings.distributed,
                    url=self.settings.safe_database_url(),
                )
            if self._citus is not None:
                # From now on every connection starts with schema-based sharding off.
                await self.engine.dispose()
                self._engine = None
                settings = dict(self._connect_args.get("server_settings") or {})
                self._connect_args = {
                    **self._connect_args,
                    "server_settings": {**settings, **citus.CONNECT_SETTINGS},
                }
        self._identity = await ensure_control_plane(self.engine, lock_key=_INIT_LOCK_KEY)
        engines.share_dialect(self.engine, self._connect_args)

    async def dispose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
        self._initialized = False

    @asynccontextmanager
    async def _connection(
        self, tenant_id: str | None, *, migrating: bool = False, snapshot: bool = False
    ) -> AsyncIterator[AsyncConnection]:
        translate = self._translate(tenant_id)
        options: dict[str, Any] = {}
        if snapshot:  # read committed gives each statement its own snapshot
            options["isolation_level"] = "REPEATABLE READ"
        if self._identity is not None and self._identity.absent:
            options[ABSENT_COLUMNS] = self._identity.absent
        if migrating and tenant_id is not None:
            # Statements compiled with a None key must not be cached for the others.
            translate[None] = translate[TENANT_SCHEMA]
            options["compiled_cache"] = None
        with quiet_lost_connection_writes():
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(schema_translate_map=translate, **options)
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
            await privileges.check_can_provision(
                conn, roles=self.settings.tenant_roles, tenant_id=tenant_id
            )
            limit = self.settings.catalog_limit
            await hold_catalog_room(conn, self.metadata, limit, tenant_id=tenant_id)
            spare = await self._claim_spare(conn)
            quote = conn.dialect.identifier_preparer.quote_schema
            try:
                if spare is not None:
                    await conn.execute(
                        text(f"ALTER SCHEMA {quote(spare)} RENAME TO {quote(schema)}")
                    )
                else:
                    if self._citus is not None:
                        await citus.distribute_new_schemas(conn)
                    await conn.execute(CreateSchema(schema))
            except DBAPIError as exc:
                if sqlstate(exc) in _DUPLICATE_SQLSTATES:
                    raise await self._taken(tenant_id, schema) from None
                raise
            owner = None
            if self.settings.tenant_roles:
                # After a spare's rename too: the grants must name the tenant's schema.
                roles = self._roles(tenant_id)
                await self._set_up_roles(conn, tenant_id, schema, roles, spare=spare is not None)
                owner = roles.owner
            yield PostgresTenantSession(
                tenant_id,
                conn,
                self.metadata,
                schema,
                prepared=spare is not None,
                fresh=spare is None,
                owner=owner,
                vetted=True,
                citus=self._citus is not None,
            )

    async def _set_up_roles(
        self, conn: AsyncConnection, tenant_id: str, schema: str, roles: TenantRoles, *, spare: bool
    ) -> None:
        """The tenant's owner and tenant roles, ownership and grants (see privileges)."""
        try:
            await privileges.set_up_roles(
                conn,
                schema=schema,
                roles=roles,
                tenant_id=tenant_id,
                database=self._database,
                tables=[t.name for t in self.metadata.sorted_tables] if spare else [],
                types=enum_names(self.metadata) if spare else [],
            )
        except asyncpg.DuplicateObjectError as exc:
            raise StorageError(
                f"{exc} (roles are cluster-wide: if it is left over from an earlier tenant "
                f"'{tenant_id}' of this database, `cleanup {tenant_id}` removes it; if "
                "another database uses this tenant id, give each database its own "
                "TENANCY_TENANT_ROLE_PREFIX)",
                tenant_id=tenant_id,
            ) from None

    async def _claim_spare(self, conn: AsyncConnection) -> str | None:
        """Take one pre-created schema of the current schema version, if any is spare.

        A spare that holds anything the schema does not declare is dropped instead.
        """
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
        name: str | None = claimed.scalar_one_or_none()
        if name is None:
            return None
        declared = {t.name for t in self.metadata.sorted_tables}
        enums = enum_names(self.metadata)
        owned = column_sequences(self.metadata)
        found = await foreign_objects.undeclared_objects(conn, name, declared, enums, owned)
        if found:
            log.warning(
                "spare_schema_discarded",
                schema=name,
                undeclared=[f.describe() for f in found][:10],
            )
            await conn.execute(DropSchema(name, cascade=True))
            return None
        return name

    async def warm_up(self, spares: int) -> int:
        """Keep exactly ``spares`` pre-created schemas of the current version (creating or
        dropping some); returns how many it created. Creating a tenant from a spare is a
        rename instead of the DDL. Stops at ``catalog_limit`` with a
        :class:`CatalogFullError` saying how many it made.
        """
        await self.initialize()
        checksum = schema_checksum(self.metadata)
        async with self._mapped(None):
            have = None
            while have is None:
                have = await self._drop_spares(checksum, spares)
            made: list[str] = []
            await self._create_spares(checksum, max(0, spares - have), made, keep=spares)
            return len(made)

    async def add_spares(self, count: int) -> list[str]:
        """``count`` more spare schemas, whatever the pool holds (a test run's, beside
        those ``warm_up`` keeps for the app); their names. If one cannot be made, those
        made are dropped again."""
        await self.initialize()
        made: list[str] = []
        async with self._mapped(None):
            try:
                await self._create_spares(schema_checksum(self.metadata), count, made)
            except BaseException:
                await self.remove_spares(made)
                raise
        return made

    async def remove_spares(self, names: Sequence[str]) -> int:
        """Drop those of ``names`` still in the pool, a few per transaction (see
        ``_drop_spares``); spares other transactions hold are left alone."""
        pool = control_plane.schema_pool_table
        removed = 0
        async with self._mapped(None):
            for start in range(0, len(names), _SPARES_DROPPED_AT_ONCE):
                batch = list(names[start : start + _SPARES_DROPPED_AT_ONCE])
                async with self._connection(None) as conn:
                    chosen = pool.c.schema_name.in_(batch)
                    taken = await self._take_spares(conn, chosen, len(batch))
                    for name in taken:
                        await conn.execute(DropSchema(name, cascade=True, if_exists=True))
                removed += len(taken)
        return removed

    async def _create_spares(
        self, checksum: str, wanted: int, made: list[str], *, keep: int | None = None
    ) -> None:
        """Make ``wanted`` spares, appending each one's name to ``made``, stopping once
        the pool holds ``keep`` (another warm-up filled it meanwhile); stops at
        ``catalog_limit`` with a :class:`CatalogFullError` saying how many it made."""
        for _ in range(wanted):
            try:
                name = await self._create_spare(checksum, keep)
                if name is None:
                    break
                made.append(name)
            except CatalogFullError as full:
                raise CatalogFullError(
                    relations=full.relations,
                    adding=full.adding,
                    limit=full.limit,
                    spares=(len(made), wanted),
                ) from None

    async def _drop_spares(self, checksum: str, keep: int) -> int | None:
        """Drop up to :data:`_SPARES_DROPPED_AT_ONCE` spares in one transaction: of an
        older schema version first, then the newest of this version beyond ``keep``.
        ``None`` while there may be more to drop; else how many spares of this version
        are left (spares another transaction holds are neither dropped nor counted).

        Each ``DROP SCHEMA ... CASCADE`` holds a lock on every object of the schema
        until commit, and the server's lock table holds only a few thousand: 200
        spares dropped in one transaction ran it out of shared memory.
        """
        pool = control_plane.schema_pool_table
        current = pool.c.checksum == checksum
        async with self._connection(None) as conn:
            names = await self._take_spares(conn, ~current, _SPARES_DROPPED_AT_ONCE)
            if not names:
                counted = select(func.count()).select_from(pool).where(current)
                have = int((await conn.execute(counted)).scalar_one())
                if have <= keep:
                    return have
                surplus = min(have - keep, _SPARES_DROPPED_AT_ONCE)
                names = await self._take_spares(conn, current, surplus, newest_first=True)
                if not names:  # other transactions hold them (claiming or dropping)
                    return have
            for name in names:
                await conn.execute(DropSchema(name, cascade=True, if_exists=True))
        return None

    @staticmethod
    async def _take_spares(
        conn: AsyncConnection, which: ColumnElement[bool], count: int, *, newest_first: bool = False
    ) -> list[str]:
        """Remove up to ``count`` of the spares ``which`` selects from the pool (the
        newest first, or any), skipping those other transactions hold; their names."""
        pool = control_plane.schema_pool_table
        chosen = select(pool.c.schema_name).where(which).limit(count)
        if newest_first:
            chosen = chosen.order_by(pool.c.created_at.desc())
        taken = await conn.execute(
            delete(pool)
            .where(
                pool.c.schema_name.in_(chosen.with_for_update(skip_locked=True).scalar_subquery())
            )
            .returning(pool.c.schema_name)
        )
        return list(taken.scalars().all())

    async def _create_spare(self, checksum: str, keep: int | None) -> str | None:
        """One pre-created schema at the current version, recorded in the pool; its name
        (``None``: the pool holds ``keep`` of them already, counted under a lock so that
        warm-ups at once never overfill it)."""
        name = f"{_SPARE_PREFIX}{uuid.uuid4().hex[:16]}"
        pool = control_plane.schema_pool_table
        async with self._connection(None) as conn:
            if keep is not None:
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SPARES_LOCK_KEY}
                )
                current = pool.c.checksum == checksum
                counted = select(func.count()).select_from(pool).where(current)
                if int((await conn.execute(counted)).scalar_one()) >= keep:
                    return None
            limit = self.settings.catalog_limit
            await hold_catalog_room(conn, self.metadata, limit, tenant_id=None)
            if self._citus is not None:
                await citus.distribute_new_schemas(conn)
            await conn.execute(CreateSchema(name))
            raw = await conn.get_raw_connection()
            await run_script(
                raw.driver_connection,
                render_schema_ddl(self.metadata, name),
                self._citus is not None,
            )
            await conn.execute(
                insert(pool).values(
                    schema_name=name, checksum=checksum, created_at=control_plane.utcnow()
                )
            )
        return name

    def _session(
        self, tenant_id: str, readonly: bool, *, snapshot: bool = False
    ) -> AbstractAsyncContextManager[TenantSession]:
        del readonly  # MVCC: readers never wait for writers
        return self._existing(tenant_id, migrating=False, snapshot=snapshot)

    @asynccontextmanager
    async def _migrating(self, tenant_id: str) -> AsyncIterator[TenantSession]:
        async with self._existing(tenant_id, migrating=True) as session:
            try:
                yield session
            except DBAPIError as exc:
                if not _names_no_schema(exc):
                    raise
                found = self._storage_error(exc, tenant_id)
                raise StorageError(
                    f"{found.message}: a revision's statement names no schema (raw SQL "
                    "text?), and a migration's search_path is pg_catalog alone; name tables "
                    "through sa.table() or sa.Table, or use op's operations: they reach "
                    "the tenant's schema",
                    tenant_id=tenant_id,
                    transient=found.transient,
                ) from exc

    @asynccontextmanager
    async def _existing(
        self, tenant_id: str, *, migrating: bool, snapshot: bool = False
    ) -> AsyncIterator[TenantSession]:
        """A transaction on an existing tenant schema, acting as its owner for writes
        (``snapshot``: one repeatable-read snapshot for all its statements)."""
        schema = self.checked(tenant_id)
        async with self._connection(tenant_id, migrating=migrating, snapshot=snapshot) as conn:
            owner = await privileges.schema_owner(conn, schema)
            if owner is None:
                raise TenantNotFoundError(tenant_id)
            yield PostgresTenantSession(
                tenant_id,
                conn,
                self.metadata,
                schema,
                owner=owner.write_as,
                citus=self._citus is not None,
            )

    @asynccontextmanager
    async def _scratch(self) -> AsyncIterator[AsyncConnection]:
        name = f"{_SCRATCH_PREFIX}{uuid.uuid4().hex[:16]}"
        with quiet_lost_connection_writes():
            async with self.engine.connect() as conn:
                transaction = await conn.begin()
                try:
                    await conn.execute(CreateSchema(name))
                    await conn.execute(text(_PINNED_SEARCH_PATH))
                    yield await conn.execution_options(
                        schema_translate_map={None: name, TENANT_SCHEMA: name},
                        compiled_cache=None,
                    )
                finally:
                    await transaction.rollback()

    @asynccontextmanager
    async def _deprovision(self, tenant_id: str) -> AsyncIterator[tuple[AsyncConnection, bool]]:
        schema = self.checked(tenant_id)
        async with self._connection(None) as conn:
            # One drop of a tenant at a time: a second one then finds nothing left (not
            # found), instead of dropping the schema it saw a moment ago again (a 3F000).
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:c, hashtext(:s))"),
                {"c": _DROP_LOCK_CLASS, "s": schema},
            )
            # The registry row before the tables, as a load or a snapshot takes them:
            # one holding the row waits for nothing this drop holds (no deadlock), and
            # one coming after finds the tenant gone.
            registered = await control_plane.lock_tenant(conn, tenant_id)
            # Found by name, whatever tenant_roles says now, before the schema goes.
            roles = await self._our_roles(conn, tenant_id)
            existed = await self._schema_exists(conn, schema)
            if existed and not registered and not await self._holds_tenant_tables(conn, schema):
                # No tenant's: a schema of the database's own that an id names
                # ("analytics"); dropped, CASCADE, it took the application's data along.
                log.warning("foreign_schema_kept", tenant_id=tenant_id, schema=schema)
                existed = False
            if existed:
                await conn.execute(DropSchema(schema, cascade=True))
            await privileges.drop_roles(conn, roles)
            yield conn, existed or bool(roles)

    async def _our_roles(self, conn: AsyncConnection, tenant_id: str) -> list[str]:
        return await privileges.our_roles(
            conn,
            self._roles(tenant_id),
            tenant_id=tenant_id,
            database=self._database,
            schema=self.checked(tenant_id),
        )

    async def _taken(self, tenant_id: str, schema: str) -> TenancyFixturesError:
        """Why ``schema`` could not be made for ``tenant_id``: the tenant exists, or the
        database holds a schema of that name that is no tenant's (it said "tenant exists",
        which every other command then denied)."""
        async with self._connection(None) as conn:
            registered = await control_plane.get_tenant(conn, tenant_id) is not None
            if registered or await self._holds_tenant_tables(conn, schema):
                return TenantAlreadyExistsError(tenant_id)
        return InvalidTenantIdError(
            tenant_id,
            f"the database holds a schema {schema!r} that is no tenant's (not registered, "
            "not the tenant tables): choose another id, or drop that schema yourself",
        )

    async def _holds_tenant_tables(self, conn: AsyncConnection, schema: str) -> bool:
        """Whether ``schema`` holds every table of the tenant schema: what tells a tenant's
        storage that lost its registry row from another schema of the same name."""
        return schema in await self._stored_tenants(conn, only=schema)

    @staticmethod
    async def _schema_exists(conn: AsyncConnection, schema: str) -> bool:
        found = await conn.execute(
            text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}
        )
        return found.first() is not None

    async def _storage_exists(self, tenant_id: str) -> bool:
        """The schema, or a role of the tenant's left behind (``cleanup`` removes it)."""
        await self.initialize()
        async with self._connection(None) as conn:
            if await self._schema_exists(conn, self.checked(tenant_id)):
                return True
            return bool(await self._our_roles(conn, tenant_id))

    async def catalog_relations(self) -> int | None:
        """pg_class's rows, counted: its ``reltuples`` estimate lags autovacuum by
        hundreds of relations; the count reads every row of pg_class (see catalog_room)."""
        await self.initialize()
        async with self._mapped(None), self._connection(None) as conn:
            return int((await conn.execute(CATALOG_COUNT)).scalar_one())

    async def _storage_bytes(self, tenant_id: str) -> int:
        async with self._connection(None) as conn:
            schema = self.checked(tenant_id)
            if self._citus is not None and await citus.is_distributed_schema(conn, schema):
                return await citus.schema_bytes(conn, schema)
            return await schema_bytes(conn, schema)

    async def _stored_tenants(self, conn: AsyncConnection, *, only: str | None = None) -> set[str]:
        """Schemas named like a tenant (``only``, if given) that hold every table of the
        tenant schema."""
        tables = [t.name for t in self.metadata.sorted_tables]
        found = await conn.execute(
            text(
                "SELECT n.nspname FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid "
                "WHERE c.relkind IN ('r', 'p') AND c.relname = ANY(:tables) "
                "AND (CAST(:only AS text) IS NULL OR n.nspname = :only) "
                "GROUP BY n.nspname HAVING count(DISTINCT c.relname) = :n"
            ),
            {"tables": tables, "n": len(tables), "only": only},
        )
        return {name for name in found.scalars() if is_valid_tenant_id(name)}

    @staticmethod
    def is_transient(exc: BaseException) -> bool:
        """Serialization failures, deadlocks and dropped connections are worth a retry."""
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(exc, ConnectionError | TimeoutError | asyncpg.InterfaceError):
            return True
        return sqlstate(exc) in _TRANSIENT_SQLSTATES or (sqlstate(exc) or "").startswith("08")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, SQLAlchemy's ``.orig`` of it, and their causes (five at most)."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return
        yield seen
        seen = getattr(seen, "orig", None) or seen.__cause__


def _timed_out(exc: BaseException) -> bool:
    """Whether ``exc`` is (or wraps) a timeout: connecting past the URL's ``timeout``, a
    statement past its ``command_timeout``."""
    return any(isinstance(seen, TimeoutError) for seen in _causes(exc))


#: What asyncpg says when the other end speaks another protocol (an HTTP or Redis port).
_STRANGER_WORDS = ("rejected SSL upgrade", "unexpected connection_lost")


def _not_postgres(exc: BaseException) -> str | None:
    """What shows the server is not PostgreSQL (it reset the connection, or answered the
    start-up with something else), if that is the failure, else ``None``."""
    for seen in _causes(exc):
        said = str(seen).strip()
        if isinstance(seen, ConnectionResetError) or (
            isinstance(seen, ConnectionError) and any(w in said for w in _STRANGER_WORDS)
        ):
            return said.splitlines()[0] if said else type(seen).__name__
    return None


def _unreachable(exc: BaseException) -> str | None:
    """What kept the connection from being made (refused, unknown host, timed out), if
    that is the failure: the first line of the OS error, else ``None``."""
    for seen in _causes(exc):
        if isinstance(seen, ConnectionRefusedError | socket.gaierror) or (
            isinstance(seen, OSError) and "Connect call failed" in str(seen)
        ):
            return str(seen).strip().splitlines()[0]
    return None


def _names_no_schema(exc: DBAPIError) -> bool:
    """Whether ``exc`` is a table not found because the statement named no schema: in a
    migration (``search_path`` pinned to ``pg_catalog``), raw SQL text naming a
    tenant table, which SQLite resolves in the tenant's file all the same."""
    return sqlstate(exc) == "42P01" and bool(
        _UNQUALIFIED_MISSING.search(str(getattr(exc, "orig", None) or exc))
    )
