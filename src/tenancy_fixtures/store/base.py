"""The ``TenantStore`` interface: the only layer that knows which database it talks to.

Everything above it works with :class:`TenantSession` — one transaction on one
tenant's tables plus the control plane — and with SQLAlchemy Core statements that the
session's connection translates to the tenant's schema or file.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import MetaData, Table, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy_fixtures.settings import Settings
from tenancy_fixtures.tenant_ids import validate_tenant_id

__all__ = ["Batches", "RowPreparer", "TenantSession", "TenantStore", "WriteCounts", "WriteMode"]

#: ``insert``: rows are new (bulk ``COPY``); ``upsert``: insert or update by primary key;
#: ``replace``: delete the table's rows, then insert.
WriteMode = Literal["insert", "upsert", "replace"]
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


class TenantSession(ABC):
    """One open transaction on one tenant's tables and the control plane."""

    def __init__(self, tenant_id: str, connection: AsyncConnection, metadata: MetaData) -> None:
        self.tenant_id = tenant_id
        self.connection = connection
        self.metadata = metadata

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
    """Storage for many isolated tenants and one control plane."""

    backend: str

    def __init__(self, settings: Settings, metadata: MetaData) -> None:
        self.settings = settings
        self.metadata = metadata

    @abstractmethod
    async def initialize(self) -> None:
        """Create the control plane if it is missing; safe to call again."""

    @abstractmethod
    async def dispose(self) -> None:
        """Close every connection this store opened."""

    @abstractmethod
    def control(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A transaction on the control plane alone."""

    @abstractmethod
    def provision(self, tenant_id: str) -> AbstractAsyncContextManager[TenantSession]:
        """A transaction that first creates the tenant's empty storage.

        If the block raises, the storage is gone again. Raises
        :class:`TenantAlreadyExistsError` if the storage exists already.
        """

    @abstractmethod
    def session(self, tenant_id: str) -> AbstractAsyncContextManager[TenantSession]:
        """A transaction on an existing tenant; commits if the block does not raise."""

    @abstractmethod
    async def drop_storage(self, tenant_id: str) -> bool:
        """Remove the tenant's schema or file entirely; whether there was one."""

    @abstractmethod
    async def storage_exists(self, tenant_id: str) -> bool:
        """Whether the tenant's schema or file exists."""

    @abstractmethod
    async def storage_bytes(self, tenant_id: str) -> int:
        """Bytes the tenant's storage occupies on disk."""

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
