"""The ``TenantStore`` interface: the only layer that knows which database it talks to.

Everything above it works with :class:`TenantSession` — one transaction on one
tenant's tables plus the control plane — and with SQLAlchemy Core statements that the
session's connection translates to the tenant's schema or file.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import (
    CheckConstraint,
    Column,
    ColumnElement,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    UniqueConstraint,
    literal,
    select,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, NoSuchTableError

from tenancy_fixtures.errors import (
    RecordError,
    StorageError,
    TenantNotFoundError,
    TenantStorageMissingError,
    ValidationFailedError,
)
from tenancy_fixtures.ids import validate_tenant_id
from tenancy_fixtures.settings import Settings
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.store.migration_ledger import RevisionHistory
from tenancy_fixtures.store.placement import Node, PlannedMove, TenantPlacement
from tenancy_fixtures.store.single_rows import finding_rows

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = [
    "ENCODING_ERRORS",
    "TENANT_SCHEMA",
    "AccessFinding",
    "AccessReview",
    "Batches",
    "CopyPayload",
    "IsolationFindings",
    "Payloads",
    "RegistryMismatch",
    "RowPreparer",
    "SchemaObject",
    "TenantSession",
    "TenantStore",
    "WriteCounts",
    "WriteMode",
    "backend_dialect",
    "convert_columns",
    "created_checks",
    "partial_index_where",
    "refuse_load_hazards",
    "repeated_key",
    "unencodable",
]

#: The placeholder schema every tenant table is declared in; each statement runs with a
#: ``schema_translate_map`` naming the tenant's real schema (or its own SQLite file).
TENANT_SCHEMA = "tenant"

#: ``insert``: rows are new (bulk ``COPY``); ``upsert``: insert or update by primary key;
#: ``replace``: delete the table's rows, then insert; ``insert_missing``: insert rows whose
#: primary key is not there yet, leave existing rows as they are.
WriteMode = Literal["insert", "upsert", "replace", "insert_missing"]
#: Rows to write, in batches, values in column order.
Batches = AsyncIterator[Sequence[tuple[Any, ...]]]


@dataclass(frozen=True, slots=True)
class CopyPayload:
    """A batch of rows already encoded as ``COPY ... FROM STDIN`` text, and how many."""

    data: bytes
    rows: int


#: Rows to write, in batches already encoded as ``COPY`` text.
Payloads = AsyncIterator[CopyPayload]
#: Turns a batch of typed rows into what the backend's bulk path sends (thread-safe).
RowPreparer = Callable[[Sequence[tuple[Any, ...]]], Sequence[tuple[Any, ...]]]


@dataclass
class WriteCounts:
    """What writing one table did: rows inserted, updated, and given but unchanged."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def written(self) -> int:
        """Rows inserted or updated."""
        return self.inserted + self.updated

    def __add__(self, other: WriteCounts) -> WriteCounts:
        return WriteCounts(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
        )


#: What a driver raises for a Python value it cannot encode (asyncpg's ``COPY``, sqlite3).
ENCODING_ERRORS: tuple[type[Exception], ...] = (TypeError, ValueError, OverflowError)


def unencodable(
    exc: BaseException,
    *,
    backend: str,
    tenant_id: str,
    table: str,
    position: int | None,
    column: str | None,
) -> RecordError:
    """The refusal of a row whose ``column`` the driver could not encode; ``position``,
    the row's 1-based place in the table's stream, becomes its file and line."""
    reason = str(exc).strip().splitlines()
    return RecordError(
        f"the {backend} driver cannot encode this value: "
        f"{reason[0] if reason else type(exc).__name__}",
        tenant_id=tenant_id,
        table=table,
        record=position,
        column=column,
        rule="encoding",
    )


@dataclass
class IsolationFindings:
    """What the isolation checks found: failures, remarks, and what was verified."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SchemaObject:
    """Something in a tenant's storage, as the backend's catalogue names it.

    ``kind`` is ``table``, ``view``, ``function``, ``trigger``, ``rule``, ``policy``...;
    ``table`` is the table it is attached to, if any; ``detail`` says more where it
    matters (``SECURITY DEFINER, owned by root``, ``runs ta.grab()``).
    """

    kind: str
    name: str
    table: str | None = None
    detail: str = ""

    def describe(self) -> str:
        """``trigger grab on users (runs ta.grab())``: what and where, in a few words."""
        where = f" on {self.table}" if self.table else ""
        more = f" ({self.detail})" if self.detail else ""
        return f"{self.kind} {self.name}{where}{more}"


@dataclass(frozen=True)
class AccessFinding:
    """A privilege on a tenant's storage that differs from the least-privilege model.

    ``held`` is true for a privilege ``holder`` has but must not (``TRIGGER`` on a table),
    false for one it needs but lacks. ``holder_kind`` is ``tenant role``, ``owner role``
    or ``PUBLIC``; ``kind`` and ``name`` are what the privilege is on (``schema``,
    ``table``, ``sequence``; ``role`` for attributes such as ``LOGIN``).
    """

    holder_kind: str
    holder: str
    privilege: str
    kind: str
    name: str
    held: bool


@dataclass
class AccessReview:
    """Who owns a tenant's storage and who may do what on it (PostgreSQL)."""

    #: The role that owns the tenant's schema.
    schema_owner: str
    #: Relations owned by another role than the schema's owner (``detail``: their owner).
    misowned: list[SchemaObject] = field(default_factory=list)
    findings: list[AccessFinding] = field(default_factory=list)
    #: What was reviewed, for the report (``tenant role tf_role_acme``...).
    reviewed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RegistryMismatch:
    """Where the registry and the storage disagree: tenant ids with storage but no
    registry row, and registered tenant ids whose storage is missing."""

    unregistered: list[str]
    missing: list[str]


def partial_index_where(index: Index, dialect: str) -> ColumnElement[bool] | None:
    """The ``WHERE`` of a partial ``index`` as the ``dialect`` backend creates it, if any."""
    # SQLAlchemy keeps it per dialect (``postgresql_where=``, ``sqlite_where=``).
    where: ColumnElement[bool] | None = index.dialect_kwargs.get(f"{dialect}_where")
    return where


def repeated_key(
    table: Table | None, dialect: str, *, name: str | None = None, columns: Sequence[str] = ()
) -> tuple[str | None, tuple[str, ...]] | None:
    """The name and columns of ``table``'s primary key, unique constraint or unique
    index named ``name`` (or, when the backend names none, made of ``columns``): what a
    duplicate key repeats. ``None`` when none is, or for a partial or expression index,
    whose repeats are not plain repeats of column values among all records."""
    if table is None:
        return None
    keys: list[tuple[str | None, tuple[str, ...]]] = [
        (str(c.name) if c.name else None, tuple(col.name for col in c.columns))
        for c in table.constraints
        if isinstance(c, PrimaryKeyConstraint | UniqueConstraint)
    ]
    keys += [
        (str(i.name) if i.name else None, tuple(str(col.name) for col in i.columns))
        for i in table.indexes
        if i.unique
        and partial_index_where(i, dialect) is None
        and all(isinstance(e, Column) for e in i.expressions)
    ]
    wanted = tuple(columns)
    for key in keys:
        if key[1] and (key[0] == name if name is not None else key[1] == wanted):
            return key
    return None


def created_checks(checks: Iterable[CheckConstraint], dialect: str) -> list[CheckConstraint]:
    """Of ``checks``, those the DDL creates on the ``dialect`` backend: a Boolean's or an
    Enum's own CHECK (``create_constraint=True``) only where the type is not native."""
    compiler = SimpleNamespace(dialect=backend_dialect(dialect))
    return [c for c in checks if c._create_rule is None or c._create_rule(compiler)]


@cache
def backend_dialect(name: str) -> Dialect:
    """The SQLAlchemy dialect of backend ``name`` (``postgresql`` or ``sqlite``), for
    rendering and for what the DDL creates there; no driver is loaded."""
    from sqlalchemy.dialects import postgresql, sqlite

    made: Dialect = (postgresql if name == "postgresql" else sqlite).dialect()
    return made


def refuse_load_hazards(hazards: Sequence[SchemaObject], *, tenant_id: str) -> None:
    """Refuse to write a tenant's tables while undeclared code (``hazards``) is attached
    to them: writing would run it with the loader's rights."""
    if hazards:
        raise ValidationFailedError(
            [
                f"{found.describe()} is not part of the tenant schema and writing the "
                "tenant's tables would run it; remove it before loading "
                "(validate-data lists everything undeclared)"
                for found in hazards
            ],
            tenant_id=tenant_id,
        )


def convert_columns(
    conversions: Sequence[tuple[int, Callable[[Any], Any]]],
) -> RowPreparer | None:
    """A preparer applying each ``(position, function)`` to the value at that position."""
    if not conversions:
        return None

    def prepare(batch: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        prepared = []
        for row in batch:
            values = list(row)
            for i, convert in conversions:
                values[i] = convert(values[i])
            prepared.append(tuple(values))
        return prepared

    return prepare


class TenantSession(ABC):
    """One open transaction on one tenant's tables and the control plane."""

    def __init__(
        self,
        tenant_id: str,
        connection: AsyncConnection,
        metadata: MetaData,
        *,
        prepared: bool = False,
    ) -> None:
        self.tenant_id = tenant_id
        self.connection = connection
        self.metadata = metadata
        #: The storage came ready-made with this schema (a spare schema, a template file).
        self.prepared = prepared

    async def clock(self) -> tuple[datetime, datetime]:
        """The transaction's time, aware and as the session's wall time: what a column
        defaulting to ``now()`` or ``LOCALTIMESTAMP`` would get (here: this process's
        clock in UTC, as SQLite's ``CURRENT_TIMESTAMP``)."""
        now = datetime.now(UTC)
        return now, now.replace(tzinfo=None)

    async def advance_sequences(self, tables: Collection[str]) -> int:
        """Move the sequences of ``tables``' columns past the values a load wrote into
        them, so the application's next insert does not take one; returns how many
        moved (SQLite: none, its row ids follow the table's highest by themselves)."""
        del tables
        return 0

    @abstractmethod
    async def create_tables(self, metadata: MetaData) -> None:
        """Create the tables, constraints and indexes of ``metadata`` that are missing."""

    @abstractmethod
    async def table_names(self) -> set[str]:
        """The tables that exist in this tenant's storage."""

    @abstractmethod
    async def relation_names(self) -> list[str]:
        """The tables and views in this tenant's storage, sorted (the library's own
        bookkeeping, such as SQLite's internal tables, left out)."""

    @property
    @abstractmethod
    def schema_name(self) -> str:
        """The name this session's statements give the tenant schema: the tenant's own
        schema, or the database its connection opened as ``main``."""

    @abstractmethod
    async def write_table(
        self,
        table: Table,
        columns: Sequence[str],
        batches: Batches,
        *,
        mode: WriteMode,
    ) -> WriteCounts:
        """Write every batch into ``table`` by ``mode``.

        A refused row raises :class:`IntegrityViolationError`; where the backend says
        which row, its 1-based position in the stream is the error's ``record``.
        """

    def stamping(self, table: Table, *, replace: bool) -> AbstractAsyncContextManager[None]:
        """Around one write whose content checksum is recorded: where rows carry their
        writer's id (PostgreSQL), the write gets an id of its own, kept as its stamp, so
        validation can tell its rows from anything else's (:meth:`unstamped_rows`).
        ``replace``: the write empties the table first. Does nothing elsewhere."""
        del table, replace
        return nullcontext()

    async def unstamped_rows(
        self, tables: Sequence[Table], *, writes: int
    ) -> dict[str, tuple[int, int]] | None:
        """For each of ``tables``: its rows, and how many of them no stamped write of
        the table's present shape wrote. ``None`` where rows carry no writer's id, or
        when the tenant's recorded table writes are no longer the ``writes`` read."""
        del tables, writes
        return None

    def takes_copy_text(self, table: Table) -> bool:
        """Whether :meth:`write_copy_text` can write ``table`` (backends with ``COPY``)."""
        del table
        return False

    async def write_copy_text(
        self, table: Table, columns: Sequence[str], payloads: Payloads, *, mode: WriteMode
    ) -> WriteCounts:
        """Write rows encoded as ``COPY`` text into ``table`` by ``mode``, as
        :meth:`write_table` writes typed rows; only where :meth:`takes_copy_text`."""
        del columns, payloads, mode
        raise StorageError(f"this backend takes no COPY text (table {table.name!r})")

    def prepare_rows(self, table: Table, columns: Sequence[str]) -> RowPreparer | None:
        """A conversion to apply to each batch before ``write_table`` (off the event loop)."""
        del table, columns
        return None

    def stored_in(self, column: Column[Any], values: Sequence[Any]) -> ColumnElement[bool]:
        """``column IN values`` for ``values`` typed as the loader types them, bound as a
        load writes them: it finds the rows a load stored with those values (a natural
        key looked up among the tenant's rows)."""
        return column.in_(values)

    def bulk_load(self, *, defer_keys: bool = True) -> AbstractAsyncContextManager[None]:
        """Prepare the session for loading many rows; undo the preparation afterwards.

        The default does nothing; backends defer constraint work where that is faster.
        ``defer_keys=False`` keeps keys and indexes in place on a never-loaded tenant too:
        for a small load, dropping and rebuilding them costs more than it saves.
        """
        del defer_keys
        return nullcontext()

    async def scan_rows(
        self,
        table: Table,
        batch: int = 5000,
        *,
        rows: int | None = None,
        columns: Sequence[Column[Any]] | None = None,
    ) -> AsyncIterator[list[tuple[Any, ...]]]:
        """Every row of ``table`` in column order (or only ``columns`` of it, in their
        order), in batches, typed as SQLAlchemy reads them (what a content checksum is
        recomputed from). ``rows``: how many the caller counted in this transaction;
        none is read when it is 0, and up to ``batch`` are read at once rather than
        streamed."""
        if rows == 0:
            return
        query = select(table) if columns is None else select(*columns)
        if rows is not None and rows <= batch:
            found = (await self.connection.execute(query)).all()
            if found:
                yield [tuple(row) for row in found]
            return
        result = await self.connection.stream(query.execution_options(yield_per=batch))
        async for partition in result.partitions():
            yield [tuple(row) for row in partition]

    async def is_empty(self, table: Table) -> bool:
        """Whether ``table`` holds no rows in this tenant."""
        query = select(literal(1)).select_from(table).limit(1)
        return (await self.connection.execute(query)).first() is None

    async def holding_rows(self, tables: Sequence[Table]) -> set[str]:
        """The names of those of ``tables`` that hold rows in this tenant."""
        rows = await finding_rows(tuple(tables)).fetch(self.connection)
        return {table.name for table, (held,) in zip(tables, rows, strict=True) if held}

    async def enum_values(self) -> dict[str, tuple[str, ...]] | None:
        """The values of each enum type in the tenant's storage, by name, in order;
        ``None`` where the backend has no enum types (they are checks on text)."""
        return None

    async def catalog_text(self) -> str | None:
        """Everything the backend's catalogue says about the tenant's tables, columns,
        constraints and indexes as one text, the tenant's own schema name left out: equal
        texts mean equal schemas. ``None`` where the backend cannot say."""
        return None

    @abstractmethod
    async def undeclared_objects(self) -> list[SchemaObject]:
        """What the tenant's storage holds that the schema definition does not declare:
        tables, views, functions, triggers, rules, policies... (read only)."""

    @abstractmethod
    async def storage_bytes(self) -> int:
        """Bytes the tenant's storage takes as this transaction sees it (its own
        uncommitted writes included): what a storage limit is checked against."""

    def altering(self) -> AbstractAsyncContextManager[None]:
        """Statements in the block change the tenant's schema (a migration): they run
        with the rights and checks that takes on this backend."""
        return nullcontext()

    def altering_setup(self) -> list[str]:
        """The session settings :meth:`altering` makes before its block, in order, as
        statements a script of the block must start with to run the same (the role it
        acts as, the ``search_path``); none here."""
        return []

    async def all_empty(self) -> bool:
        """Whether every table of the tenant schema is empty (a tenant never loaded)."""
        return not await self.holding_rows(self.metadata.sorted_tables)


class TenantStore(ABC):
    """Storage for many isolated tenants and one control plane.

    The public methods translate every database, driver and OS failure into
    :class:`StorageError` (marked ``transient`` when a retry may succeed); the
    ``_``-prefixed methods are what each backend implements.
    """

    backend: str
    #: Driver exception types this backend raises besides SQLAlchemy's.
    driver_errors: tuple[type[BaseException], ...] = ()
    #: Transactions that can write at the same time (``None``: as many as asked for).
    max_concurrent_writes: int | None = None

    def __init__(self, settings: Settings, metadata: MetaData) -> None:
        self.settings = settings
        self.metadata = metadata
        #: The schema's migration history, if it has one: loads refuse a tenant whose
        #: schema is not at its head (set by whoever opens the store).
        self.history: RevisionHistory | None = None
        self._initialized = False
        self._initializing = asyncio.Lock()
        self._plane: str | None = None

    def holds(self, path: Path) -> bool:
        """Whether ``path`` lies where this store keeps its own files (where a file of
        the user's would be taken for a tenant's storage); a server-side store has none."""
        del path
        return False

    async def plane(self) -> str:
        """This database's control-plane id, read once: it never changes once set (when
        the store is initialized)."""
        if self._plane is None:
            await self.initialize()
            async with self.control(readonly=True) as conn:
                found = await control_plane.plane_id(conn)
            if found is None:
                raise StorageError("the control plane has no id: initialize the store first")
            self._plane = found
        return self._plane

    @asynccontextmanager
    async def _mapped(self, tenant_id: str | None) -> AsyncIterator[None]:
        failures: tuple[type[BaseException], ...] = (DBAPIError, OSError, *self.driver_errors)
        try:
            yield
        except failures as exc:
            raise self._storage_error(exc, tenant_id) from exc

    def _storage_error(self, exc: BaseException, tenant_id: str | None) -> StorageError:
        """The typed error for a database, driver or OS failure."""
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return StorageError(
            f"{self.backend} failed: {reason[0] if reason else type(exc).__name__}",
            tenant_id=tenant_id,
            transient=self.is_transient(exc),
        )

    async def initialize(self) -> None:
        """Create the control plane if it is missing; later calls do nothing.

        Concurrent first calls (``load_many`` starts many tenants at once) wait for one
        initialization instead of each running their own.
        """
        if self._initialized:
            return
        async with self._initializing:
            if self._initialized:
                return
            async with self._mapped(None):
                await self._initialize()
            self._initialized = True

    @asynccontextmanager
    async def control(self, *, readonly: bool = False) -> AsyncIterator[AsyncConnection]:
        """A transaction on the control plane alone (``readonly``: takes no write lock)."""
        await self.initialize()
        async with self._mapped(None), self._control(readonly) as conn:
            yield conn

    @asynccontextmanager
    async def provision(self, tenant_id: str) -> AsyncIterator[TenantSession]:
        """A transaction that first creates the tenant's empty storage.

        If the block raises, the storage is gone again. Raises
        :class:`TenantAlreadyExistsError` if the storage exists already.
        """
        validate_tenant_id(tenant_id)
        await self.initialize()
        async with self._mapped(tenant_id), self._provision(tenant_id) as session:
            yield session

    @asynccontextmanager
    async def session(
        self, tenant_id: str, *, readonly: bool = False, snapshot: bool = False
    ) -> AsyncIterator[TenantSession]:
        """A transaction on an existing tenant; commits if the block does not raise.

        ``readonly`` sessions do not take the write lock where the backend has one.
        ``snapshot`` sessions (read-only) see every table as of their first statement,
        whatever others commit meanwhile (an export reading table after table).
        """
        validate_tenant_id(tenant_id)
        await self.initialize()
        async with (
            self._naming_missing_storage(tenant_id),
            self._mapped(tenant_id),
            self._session(tenant_id, readonly or snapshot, snapshot=snapshot) as session,
        ):
            yield session

    @asynccontextmanager
    async def migrating(self, tenant_id: str) -> AsyncIterator[TenantSession]:
        """A transaction for changing an existing tenant's schema, committed whole.

        Migration scripts name no schema: on PostgreSQL the connection translates such
        statements into the tenant's schema (and shares no compiled statements with
        other connections); on SQLite the tenant's file is ``main``, which bare names
        reach first. Schema changes go in :meth:`TenantSession.altering`.
        """
        validate_tenant_id(tenant_id)
        await self.initialize()
        async with (
            self._naming_missing_storage(tenant_id),
            self._mapped(tenant_id),
            self._migrating(tenant_id) as session,
        ):
            yield session

    @asynccontextmanager
    async def _naming_missing_storage(self, tenant_id: str) -> AsyncIterator[None]:
        """A tenant not found whose registration is still there: its storage is missing,
        which the error then says (with the ``cleanup`` hint) instead of "not found".
        A storage failure (a table gone mid-read, say) of a tenant dropped meanwhile,
        storage and registration, is the tenant not found."""
        try:
            yield
        except TenantNotFoundError as exc:
            missing = await self._storage_missing(tenant_id, exc)
            if missing is None:
                raise
            raise missing from exc
        except (StorageError, NoSuchTableError, DBAPIError) as exc:
            if await self._dropped(tenant_id):
                raise TenantNotFoundError(tenant_id) from exc
            raise

    async def _dropped(self, tenant_id: str) -> bool:
        """Whether ``tenant_id`` has neither storage nor a registry row (now)."""
        if await self.storage_exists(tenant_id):
            return False
        async with self.control(readonly=True) as conn:
            return await control_plane.get_tenant(conn, tenant_id) is None

    @asynccontextmanager
    async def scratch(self) -> AsyncIterator[AsyncConnection]:
        """A transaction on an empty schema of its own that is always rolled back:
        migration scripts run there to learn the schema at an older revision. Like
        :meth:`migrating`, statements naming no schema go to it."""
        await self.initialize()
        async with self._mapped(None), self._scratch() as conn:
            yield conn

    @asynccontextmanager
    async def deprovision(self, tenant_id: str) -> AsyncIterator[tuple[AsyncConnection, bool]]:
        """A control-plane transaction in which the tenant's storage is removed.

        Yields the connection and whether there was storage; the removal commits with
        the block's control-plane changes, or neither happens.
        """
        validate_tenant_id(tenant_id)
        await self.initialize()
        async with self._mapped(tenant_id), self._deprovision(tenant_id) as dropped:
            yield dropped

    async def storage_exists(self, tenant_id: str) -> bool:
        """Whether the tenant's schema or file exists."""
        validate_tenant_id(tenant_id)
        async with self._mapped(tenant_id):
            return await self._storage_exists(tenant_id)

    async def storage_bytes(self, tenant_id: str) -> int:
        """Bytes the tenant's storage occupies on disk."""
        validate_tenant_id(tenant_id)
        async with self._mapped(tenant_id):
            return await self._storage_bytes(tenant_id)

    async def missing_storage(self, tenant_id: str) -> TenantStorageMissingError | None:
        """The error to raise if ``tenant_id`` is registered but its storage is missing
        (why a session on it found no tenant); ``None`` if it has storage or no registry
        row."""
        if await self.storage_exists(tenant_id):
            return None
        async with self.control(readonly=True) as conn:
            if await control_plane.get_tenant(conn, tenant_id) is None:
                return None
        return TenantStorageMissingError(tenant_id, self.storage_name(tenant_id))

    async def _storage_missing(
        self, tenant_id: str, exc: TenantNotFoundError
    ) -> TenantStorageMissingError | None:
        """Why a session found no ``tenant_id``, when it is a registered tenant whose
        storage is missing (a storage failure, with the hint); else ``None``."""
        if isinstance(exc, TenantStorageMissingError) or exc.tenant_id != tenant_id:
            return None
        return await self.missing_storage(tenant_id)

    async def registry_mismatch(self) -> RegistryMismatch:
        """Tenants with storage but no registry row, and registry rows with no storage.

        Read under the control plane's write lock on SQLite (after settling what a crash
        left), in one transaction on PostgreSQL.
        """
        await self.initialize()
        async with self._mapped(None), self._control(False) as conn:
            registered = {t.tenant_id for t in await control_plane.list_tenants(conn)}
            stored = await self._stored_tenants(conn)
        return RegistryMismatch(sorted(stored - registered), sorted(registered - stored))

    def tenant_role(self, tenant_id: str) -> str | None:
        """The database role that holds rights on the tenant's storage alone, if the
        backend gives each tenant one (PostgreSQL with ``tenant_roles``); else ``None``."""
        validate_tenant_id(tenant_id)
        return None

    def write_concurrency(self, wanted: int) -> int:
        """How many writing transactions to run at once when ``wanted`` are asked for."""
        limit = self.max_concurrent_writes
        return wanted if limit is None else max(1, min(wanted, limit))

    @abstractmethod
    async def check_isolation(
        self, session: TenantSession, *, other_tenants: Sequence[str]
    ) -> IsolationFindings:
        """What this backend can verify about ``session`` reaching nothing of
        ``other_tenants`` (or anyone): catalogue checks, read only."""

    def owner_role(self, tenant_id: str) -> str | None:
        """The role that owns the tenant's storage when it is not the connecting user
        (PostgreSQL with ``tenant_roles``); else ``None``."""
        validate_tenant_id(tenant_id)
        return None

    async def review_access(self, session: TenantSession) -> AccessReview | None:
        """Ownership and privileges on the session's tenant storage, against the
        least-privilege model; ``None`` where the backend has no roles (SQLite)."""
        del session
        return None

    async def catalog_relations(self) -> int | None:
        """About how many relations the database's catalogue holds, where that slows
        the database down (PostgreSQL); ``None`` elsewhere."""
        return None

    async def warm_up(self, spares: int) -> int:
        """Prepare for fast provisioning (spare schemas, a template file); returns what
        it created. The default prepares nothing."""
        del spares
        return 0

    async def add_spares(self, count: int) -> list[str]:
        """Prepare for fast provisioning as :meth:`warm_up` does, but add ``count`` spare
        schemas to whatever the pool holds, never dropping any; the names of those made
        (none where the backend has no spares), for :meth:`remove_spares`."""
        del count
        await self.warm_up(0)
        return []

    async def remove_spares(self, names: Sequence[str]) -> int:
        """Drop those of the spare schemas ``names`` that are still spare (not claimed
        by a new tenant meanwhile); how many it dropped."""
        del names
        return 0

    async def storage_drift(self, session: TenantSession) -> list[str]:
        """Where the session's storage differs from what this backend should have made
        of it, beyond its tables (a distributed schema's shards); read only."""
        del session
        return []

    @property
    def distributed(self) -> str | None:
        """The engine spreading tenants over several servers (``"citus 13.2-1"``), or
        ``None`` when every tenant lives on one server."""
        return None

    async def placements(self, tenant_ids: Sequence[str]) -> list[TenantPlacement]:
        """Which node holds each tenant, and its size (distributed stores only)."""
        del tenant_ids
        raise self._not_distributed("placement")

    async def move_tenant(self, tenant_id: str, node: str, *, mode: str) -> tuple[Node, Node]:
        """Move the tenant's storage to ``node`` (its id or ``host:port``) online;
        returns the nodes it was on and is on (the same: nothing to do)."""
        del tenant_id, node, mode
        raise self._not_distributed("move-tenant")

    async def rebalance_plan(self) -> list[PlannedMove]:
        """The moves that would even out the tenants over the nodes (none: balanced)."""
        raise self._not_distributed("rebalance")

    async def rebalance(self, *, mode: str) -> None:
        """Make the moves of :meth:`rebalance_plan`, waiting for them to finish."""
        del mode
        raise self._not_distributed("rebalance")

    def _not_distributed(self, what: str) -> StorageError:
        return StorageError(
            f"{what} needs a distributed store: this {self.backend} store keeps every "
            "tenant on one server (PostgreSQL with Citus: see TENANCY_DISTRIBUTED)"
        )

    @abstractmethod
    async def _initialize(self) -> None: ...

    @abstractmethod
    def _control(self, readonly: bool) -> AbstractAsyncContextManager[AsyncConnection]: ...

    @abstractmethod
    def _provision(self, tenant_id: str) -> AbstractAsyncContextManager[TenantSession]: ...

    @abstractmethod
    def _session(
        self, tenant_id: str, readonly: bool, *, snapshot: bool = False
    ) -> AbstractAsyncContextManager[TenantSession]: ...

    @abstractmethod
    def _migrating(self, tenant_id: str) -> AbstractAsyncContextManager[TenantSession]: ...

    @abstractmethod
    def _scratch(self) -> AbstractAsyncContextManager[AsyncConnection]: ...

    @abstractmethod
    def _deprovision(
        self, tenant_id: str
    ) -> AbstractAsyncContextManager[tuple[AsyncConnection, bool]]: ...

    @abstractmethod
    async def _storage_exists(self, tenant_id: str) -> bool: ...

    @abstractmethod
    async def _storage_bytes(self, tenant_id: str) -> int: ...

    @abstractmethod
    async def _stored_tenants(self, conn: AsyncConnection) -> set[str]:
        """The ids of every tenant that has storage, read on the control connection."""

    @abstractmethod
    async def dispose(self) -> None:
        """Close every connection this store opened."""

    @abstractmethod
    def storage_name(self, tenant_id: str) -> str:
        """Where the tenant lives: its schema name or its file path."""

    @staticmethod
    @abstractmethod
    def is_transient(exc: BaseException) -> bool:
        """Whether ``exc`` is a passing fault worth retrying the whole transaction for."""

    @staticmethod
    def checked(tenant_id: str) -> str:
        """``tenant_id`` after the tenant id validator accepted it."""
        return validate_tenant_id(tenant_id)

    async def __aenter__(self) -> TenantStore:
        await self.initialize()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.dispose()
