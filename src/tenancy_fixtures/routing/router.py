"""Tenant routing: which tenant a request is for, and a connection to its tables only.

:class:`TenantRouter` is framework-free (it reads the ASGI scope); the FastAPI
dependencies and the ASGI middleware are thin front ends over it.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from cachetools import TTLCache
from sqlalchemy.util import LRUCache

from tenancy_fixtures.errors import InvalidTenantIdError, StorageError, TenantNotFoundError
from tenancy_fixtures.ids import validate_tenant_id
from tenancy_fixtures.routing.problems import TenantProblem
from tenancy_fixtures.routing.resolvers import TenantResolver, from_header
from tenancy_fixtures.store import control_plane

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

    from tenancy_fixtures.store import TenantStore

__all__ = ["TenantRouter", "orm_session"]

_ACTIVE = "active"
# Compiled statements of routed connections, kept apart from the store's: they are
# compiled with the schema-less key in the translate map, the store's are not, and
# SQLAlchemy's cache key does not tell the two apart.
_COMPILED_STATEMENTS = 500


class TenantRouter:
    """Resolves the tenant of a request, checks it is registered and active, and opens
    a transaction on its tables.

    ``resolver`` reads the tenant id from the ASGI scope (default: the ``X-Tenant-ID``
    header). Registry answers are cached for ``cache_seconds`` (at most ``cache_size``
    tenants; 0 of either: not cached), so a tenant dropped or deactivated is refused
    within that time; a tenant whose storage is gone is refused at once.
    """

    def __init__(
        self,
        store: TenantStore,
        *,
        resolver: TenantResolver | None = None,
        cache_seconds: float = 5.0,
        cache_size: int = 10_000,
    ) -> None:
        self.store = store
        self.resolver = resolver or from_header()
        self._known: TTLCache[str, bool] = TTLCache(
            maxsize=cache_size, ttl=cache_seconds, timer=time.monotonic
        )
        self._compiled: LRUCache[Any, Any] = LRUCache(_COMPILED_STATEMENTS)

    async def resolve(self, scope: Mapping[str, Any]) -> str:
        """The id of the registered, active tenant the request names.

        Raises :class:`TenantProblem`: 400/401 when the request names none, 404 when
        the id is malformed, unknown or not active.
        """
        given = self.resolver(scope)
        if inspect.isawaitable(given):  # an async resolver
            given = await given
        try:
            tenant_id = validate_tenant_id(given)
        except InvalidTenantIdError:
            raise TenantProblem(404, "no such tenant: not a valid tenant id") from None
        if not await self.is_active(tenant_id):
            raise _not_found(tenant_id)
        return tenant_id

    async def is_active(self, tenant_id: str) -> bool:
        """Whether ``tenant_id`` is registered with status ``active`` (cached)."""
        known = self._known.get(tenant_id)
        if known is None:
            async with self.store.control(readonly=True) as conn:
                record = await control_plane.get_tenant(conn, tenant_id)
            known = record is not None and record.status == _ACTIVE
            if self._known.maxsize > 0:  # a cache of no room refuses every entry
                self._known[tenant_id] = known
        return known

    def forget(self, tenant_id: str | None = None) -> None:
        """Drop the cached registry answer for ``tenant_id`` (all of them: ``None``)."""
        if tenant_id is None:
            self._known.clear()
        else:
            self._known.pop(tenant_id, None)

    @asynccontextmanager
    async def connect(
        self, tenant_id: str, *, readonly: bool = False
    ) -> AsyncIterator[AsyncConnection]:
        """A transaction on the tenant's tables, committed when the block ends without an
        error, rolled back otherwise.

        Statements name the tenant's schema (its own file on SQLite) through
        ``schema_translate_map``: tables declared without a schema, as an application
        declares them, and tables in the engine's placeholder schema ``tenant`` both
        resolve to it; ``search_path`` is never read or set. ``readonly`` takes no
        write lock where the backend has one (SQLite). An unknown tenant raises
        :class:`TenantProblem` (404).
        """
        opened = self.store.session(tenant_id, readonly=readonly)
        try:
            session = await opened.__aenter__()
        except TenantNotFoundError:
            self.forget(tenant_id)
            raise _not_found(tenant_id) from None
        try:
            connection = session.connection
            assert connection.sync_connection is not None  # the session's, open
            options = connection.sync_connection.get_execution_options()
            translate = dict(options.get("schema_translate_map") or {})
            translate[None] = session.schema_name
            routed = await connection.execution_options(
                schema_translate_map=translate, compiled_cache=self._compiled
            )
            yield routed
        except BaseException as exc:
            if not await _exit_after(opened, exc):
                raise
        else:
            await opened.__aexit__(None, None, None)

    @asynccontextmanager
    async def session(
        self, tenant_id: str, *, readonly: bool = False
    ) -> AsyncIterator[AsyncSession]:
        """An ORM ``AsyncSession`` on :meth:`connect`'s connection (:func:`orm_session`)."""
        async with (
            self.connect(tenant_id, readonly=readonly) as connection,
            orm_session(connection) as session,
        ):
            yield session


@asynccontextmanager
async def orm_session(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    """An ORM ``AsyncSession`` joining ``connection``'s transaction with a SAVEPOINT.

    The transaction stays the connection's: ``session.commit()`` releases the savepoint
    and the rows are committed when the connection's block ends; ``session.rollback()``
    undoes what the session wrote since its last ``commit()`` and the session goes on
    (after a failed flush, an ``IntegrityError``, as with a session of its own). Pending
    changes are flushed when the block ends without an error; objects stay readable
    afterwards (``expire_on_commit=False``).
    """
    from sqlalchemy.ext.asyncio import AsyncSession

    session = AsyncSession(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    try:
        yield session
        await session.commit()  # releases the savepoint: its rows go with the connection's
    finally:
        await session.close()


def _not_found(tenant_id: str) -> TenantProblem:
    return TenantProblem(
        404, f"no such tenant: '{tenant_id}' is not registered or not active", tenant_id=tenant_id
    )


async def _exit_after(opened: AbstractAsyncContextManager[Any], exc: BaseException) -> bool:
    """Leave ``opened`` (rolling its transaction back) after the block raised ``exc``;
    whether ``opened`` swallowed it.

    The block's own error goes on as it was raised: the store reports a database or OS
    error that leaves its transaction as a :class:`StorageError`, which would hide the
    app's ``IntegrityError`` from its own handler (a 409) or its ``except``. A failure of
    the rollback itself, or the tenant found dropped meanwhile, is raised as before.
    """
    try:
        return bool(await opened.__aexit__(type(exc), exc, exc.__traceback__))
    except StorageError as raised:
        if raised.__cause__ is not exc:
            raise
        return False
