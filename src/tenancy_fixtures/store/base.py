"""The ``TenantStore`` interface: the only layer that knows which database it talks to.

Everything above it works with :class:`TenantSession` — one transaction on one
tenant's tables plus the control plane — and with SQLAlchemy Core statements that the
session's connection translates to the tenant's schema or file.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal

from sqlalchemy import MetaData, Table, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy_fixtures.settings import Settings
from tenancy_fixtures.tenant_ids import validate_tenant_id

__all__ = ["TenantSession", "TenantStore", "WriteMode"]

#: ``insert``: rows are new (bulk path); ``upsert``: insert or update by primary key.
WriteMode = Literal["insert", "upsert"]


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
    async def write_rows(
        self,
        table: Table,
        columns: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
        *,
        mode: WriteMode,
    ) -> int:
        """Write ``rows`` (values in ``columns`` order) into ``table``; returns rows written."""

    async def is_empty(self, table: Table) -> bool:
        """Whether ``table`` holds no rows in this tenant."""
        query = select(literal(1)).select_from(table).limit(1)
        return (await self.connection.execute(query)).first() is None


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
