"""One test's transaction on a tenant, with an ORM session in it, rolled back when the
test ends.

The session joins the transaction through a SAVEPOINT (SQLAlchemy's
``join_transaction_mode="create_savepoint"``): ``session.commit()`` releases it and
``session.rollback()`` returns to it, while the transaction itself stays open until the
test ends and is then rolled back, so the next test sees none of the rows. A commit of
the transaction itself (the connection's own ``commit()``) is noticed, since it wrote
to the tenant for good.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from tenancy_fixtures.store import TenantStore

__all__ = ["RolledBackSession"]


class RolledBackSession:
    """An ORM session in a transaction on one tenant that :meth:`close` rolls back."""

    def __init__(self, stack: AsyncExitStack, connection: AsyncConnection) -> None:
        self._stack = stack
        self._connection = connection
        #: The transaction itself was committed (the tenant keeps what the test wrote).
        self.committed = False
        assert connection.sync_connection is not None  # open
        event.listen(connection.sync_connection, "commit", self._on_commit)
        self.session = AsyncSession(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )

    @classmethod
    async def open(
        cls, store: TenantStore, tenant_id: str, *, compiled_cache: Any
    ) -> RolledBackSession:
        """A transaction on ``tenant_id``'s tables, as a routed request gets one.

        Tables declared without a schema and those in the store's placeholder schema both
        resolve to the tenant's schema (its own file on SQLite); statements compiled
        that way go to ``compiled_cache``, apart from the store's.
        """
        stack = AsyncExitStack()
        try:
            # readonly: on SQLite, no write lock until the test writes, and none on the
            # control plane, which the manager may write during the test (PostgreSQL
            # has no such lock to take).
            opened = await stack.enter_async_context(store.session(tenant_id, readonly=True))
            connection = opened.connection
            assert connection.sync_connection is not None  # the session's, open
            options = connection.sync_connection.get_execution_options()
            translate = dict(options.get("schema_translate_map") or {})
            translate[None] = opened.schema_name
            routed = await connection.execution_options(
                schema_translate_map=translate, compiled_cache=compiled_cache
            )
            return cls(stack, routed)
        except BaseException:
            await stack.aclose()
            raise

    def _on_commit(self, _connection: Any) -> None:
        self.committed = True

    async def close(self) -> None:
        """Close the session and roll the transaction back (whatever the test did)."""
        try:
            await self.session.close()
            if self._connection.in_transaction():
                await self._connection.rollback()
        finally:
            await self._stack.aclose()
