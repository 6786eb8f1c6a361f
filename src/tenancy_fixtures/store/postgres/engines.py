"""Engines of one process on one PostgreSQL database share their initialized dialect and
their compiled statements.

SQLAlchemy keys a compiled statement by dialect instance and keeps the cache per engine,
so every new store (a manager per request, per CLI command, per test) compiled its
statements again: about a quarter of creating, loading, validating and dropping a tenant
with a new manager. Engines made with the same URL and plain connection arguments connect
to the same server and are configured alike, so they share both. What the dialect learnt
from the server on the first connection (its version, default schema and isolation level)
holds for the process; dialect events (``do_connect``, ``do_execute``) reach every engine
of the shared dialect, as SQLAlchemy keeps them on the dialect. Connection arguments
holding objects (a TLS context) are not compared: those engines share nothing.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import URL, event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util import LRUCache, await_only

from tenancy_fixtures.store.postgres.calendar_codecs import set_calendar_codecs
from tenancy_fixtures.store.postgres.check_reflection import CheckReflectingInspector

__all__ = ["engine_for", "share_dialect"]

_COMPILED_CACHE_SIZE = 1000
#: Distinct (URL, connection arguments) kept.
_KEPT = 8
_PLAIN = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class _Shared:
    """An initialized dialect and the statements compiled for it."""

    dialect: Dialect
    compiled: LRUCache[Any, Any]


_SHARED: OrderedDict[str, _Shared] = OrderedDict()
_LOCK = threading.Lock()


def _plain(value: Any) -> bool:
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return isinstance(value, _PLAIN)


def _key(url: URL, connect_args: Mapping[str, Any]) -> str | None:
    """A digest of what the engine connects with (the password is not kept as such), or
    ``None`` when an argument is an object that cannot be compared."""
    if not _plain(connect_args):
        return None
    what = f"{url.render_as_string(hide_password=False)} {sorted(connect_args.items())!r}"
    return hashlib.sha256(what.encode()).hexdigest()


def engine_for(
    url: URL, connect_args: Mapping[str, Any], *, pool_size: int, max_overflow: int
) -> AsyncEngine:
    """An engine on ``url``: on the dialect an earlier engine of the same URL and
    arguments initialized, when there is one."""
    key = _key(url, connect_args)
    with _LOCK:
        shared = None if key is None else _SHARED.get(key)
    if shared is None:
        made = create_async_engine(
            url,
            connect_args=dict(connect_args),
            pool_size=pool_size,
            max_overflow=max_overflow,
            execution_options={"compiled_cache": LRUCache(_COMPILED_CACHE_SIZE)},
        )
        event.listen(made.sync_engine.pool, "connect", _exact_calendar)
        # Reflection, as inspect() builds it for this dialect (:mod:`.check_reflection`).
        cast(Any, made.dialect).inspector = CheckReflectingInspector
        return made
    dialect = shared.dialect
    cargs, cparams = dialect.create_connect_args(url)
    cparams.update(connect_args)

    def connect(connection_record: Any = None) -> Any:
        # As create_engine's creator: do_connect listeners may change the arguments or
        # connect themselves.
        args, params = list(cargs), dict(cparams)
        for listener in dialect.dispatch.do_connect:
            connection = listener(dialect, connection_record, args, params)
            if connection is not None:
                return connection
        return dialect.connect(*args, **params)

    pool = AsyncAdaptedQueuePool(
        connect, pool_size=pool_size, max_overflow=max_overflow, dialect=dialect
    )
    # What create_engine runs on each new connection (asyncpg's JSON codecs).
    on_connect = dialect.on_connect_url(url)
    if on_connect is not None:

        def set_up(dbapi_connection: Any, _record: Any) -> None:
            on_connect(dbapi_connection)

        event.listen(pool, "connect", set_up)
    event.listen(pool, "connect", _exact_calendar)
    options = {"compiled_cache": shared.compiled}
    return AsyncEngine(Engine(pool, dialect, url, execution_options=options))


def _exact_calendar(dbapi_connection: Any, _record: Any) -> None:
    """Each new connection stores dates and timestamps at the calendar's ends as given,
    not as asyncpg's infinities (see :mod:`calendar_codecs`)."""
    await_only(set_calendar_codecs(dbapi_connection.driver_connection))


def share_dialect(engine: AsyncEngine, connect_args: Mapping[str, Any]) -> None:
    """Offer ``engine``'s dialect, initialized by its first connection, to later engines
    of its URL and arguments, with the statements it has compiled."""
    key = _key(engine.url, connect_args)
    cache = engine.sync_engine.get_execution_options().get("compiled_cache")
    if key is None or not isinstance(cache, LRUCache):
        return
    shared = _Shared(engine.sync_engine.dialect, cache)
    with _LOCK:
        if key in _SHARED:
            _SHARED.move_to_end(key)
            return
        _SHARED[key] = shared
        while len(_SHARED) > _KEPT:
            _SHARED.popitem(last=False)
