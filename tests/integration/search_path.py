"""Every new PostgreSQL connection of a store made to start with a foreign ``search_path``,
as a misconfigured role or pooler would leave it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import event

from tenancy_fixtures.store.postgres.store import PostgresTenantStore

__all__ = ["forced_search_path"]


@contextlib.asynccontextmanager
async def forced_search_path(store: PostgresTenantStore, schema: str) -> AsyncIterator[None]:
    """Inside the block, each connection the store opens runs ``SET search_path TO schema``
    first; the pool is emptied on entry and on exit so that no connection escapes it."""
    engine = store.engine
    await engine.dispose()

    def poison(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET search_path TO {schema}")
        cursor.close()

    event.listen(engine.sync_engine, "connect", poison)
    try:
        yield
    finally:
        event.remove(engine.sync_engine, "connect", poison)
        await engine.dispose()
