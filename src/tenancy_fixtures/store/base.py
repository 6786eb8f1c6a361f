"""The ``TenantStore`` interface: the only layer that knows which database it talks to.

Everything above it works with :class:`TenantSession` — one transaction on one
tenant's tables plus the control plane — and with SQLAlchemy Core statements that the
session's connection translates to the tenant's schema or file.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import MetaData, Table, literal, select
from sqlalchemy.exc import DBAPIError

from tenancy_fixtures.errors import StorageError
from tenancy_fixtures.ids import validate_tenant_id
from tenancy_fixtures.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = [
    "TENANT_SCHEMA",
    "Batches",
    "RowPreparer",
    "TenantSession",
    "TenantStore",
    "WriteCounts",
    "WriteMode",
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

    @abstractmethod
    async def create_tables(self, metadata: MetaData) -> None:
        """Create the tables, constraints and indexes of ``metadata`` that are missing."""

    @abstractmethod
    async def table_names(self) -> set[str]:
        """The tables that exist in this tenant's storage."""

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

    def prepare_rows(self, table: Table, columns: Sequence[str]) -> RowPreparer | None:
        """A conversion to apply to each batch before ``write_table`` (off the event loop)."""
        del table, columns
        return None

    def bulk_load(self) -> AbstractAsyncContextManager[None]:
        """Prepare the session for loading many rows; undo the preparation afterwards.

        The default does nothing; backends defer constraint work where that is faster.
        """
        return nullcontext()

    async def is_empty(self, table: Table) -> bool:
        """Whether ``table`` holds no rows in this tenant."""
        query = select(literal(1)).select_from(table).limit(1)
        return (await self.connection.execute(query)).first() is None

    async def all_empty(self) -> bool:
        """Whether every table of the tenant schema is empty (a tenant never loaded)."""
        for table in self.metadata.sorted_tables:
            if not await self.is_empty(table):
                return False
        return True


class TenantStore(ABC):
    """Storage for many isolated tenants and one control plane.

    The public methods translate every database, driver and OS failure into
    :class:`StorageError` (marked ``transient`` when a retry may succeed); the
    ``_``-prefixed methods are what each backend implements.
    """

    backend: str
    #: Driver exception types this backend raises besides SQLAlchemy's.
    driver_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, settings: Settings, metadata: MetaData) -> None:
        self.settings = settings
        self.metadata = metadata
        self._initialized = False

    @asynccontextmanager
    async def _mapped(self, tenant_id: str | None) -> AsyncIterator[None]:
        failures: tuple[type[BaseException], ...] = (DBAPIError, OSError, *self.driver_errors)
        try:
            yield
        except failures as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            raise StorageError(
                f"{self.backend} failed: {reason[0] if reason else type(exc).__name__}",
                tenant_id=tenant_id,
                transient=self.is_transient(exc),
            ) from exc

    async def initialize(self) -> None:
        """Create the control plane if it is missing; later calls do nothing."""
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
        self, tenant_id: str, *, readonly: bool = False
    ) -> AsyncIterator[TenantSession]:
        """A transaction on an existing tenant; commits if the block does not raise.

        ``readonly`` sessions do not take the write lock where the backend has one.
        """
        validate_tenant_id(tenant_id)
        await self.initialize()
        async with self._mapped(tenant_id), self._session(tenant_id, readonly) as session:
            yield session

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

    def tenant_role(self, tenant_id: str) -> str | None:
        """The database role that holds rights on the tenant's storage alone, if the
        backend gives each tenant one (PostgreSQL with ``tenant_roles``); else ``None``."""
        validate_tenant_id(tenant_id)
        return None

    async def warm_up(self, spares: int) -> int:
        """Prepare for fast provisioning (spare schemas, a template file); returns what
        it created. The default prepares nothing."""
        del spares
        return 0

    @abstractmethod
    async def _initialize(self) -> None: ...

    @abstractmethod
    def _control(self, readonly: bool) -> AbstractAsyncContextManager[AsyncConnection]: ...

    @abstractmethod
    def _provision(self, tenant_id: str) -> AbstractAsyncContextManager[TenantSession]: ...

    @abstractmethod
    def _session(
        self, tenant_id: str, readonly: bool
    ) -> AbstractAsyncContextManager[TenantSession]: ...

    @abstractmethod
    def _deprovision(
        self, tenant_id: str
    ) -> AbstractAsyncContextManager[tuple[AsyncConnection, bool]]: ...

    @abstractmethod
    async def _storage_exists(self, tenant_id: str) -> bool: ...

    @abstractmethod
    async def _storage_bytes(self, tenant_id: str) -> int: ...

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
