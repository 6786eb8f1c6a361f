"""Silence asyncio's ``socket.send() raised exception.`` for our own lost connections.

When the server ends a connection (``pg_terminate_backend``, a restart) in the middle of
a ``COPY``, asyncpg goes on writing into the closed transport until it notices, and
asyncio's transport logs that warning for every write after the fifth — a dozen lines on
stderr that say nothing the driver's own error does not. The error itself still reaches
the store, which maps it to a transient :class:`StorageError` and the retry logs it.

The filter drops only that one message, and only while one of our connections is in use
in the current task (a context variable), so the same warning about an application's
own sockets still shows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["quiet_lost_connection_writes"]

_LOST_WRITE = "socket.send() raised exception."
_ours: ContextVar[bool] = ContextVar("tenancy_fixtures_connection_in_use", default=False)


class _OurLostWrites(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (_ours.get() and record.msg == _LOST_WRITE)


_FILTER = _OurLostWrites()


@contextmanager
def quiet_lost_connection_writes() -> Iterator[None]:
    """Within the block, asyncio's writes-after-connection-lost warning is dropped."""
    logger = logging.getLogger("asyncio")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    previous = _ours.get()
    _ours.set(True)
    try:
        yield
    finally:
        # Not reset(token): an async generator may be closed from another context.
        _ours.set(previous)
