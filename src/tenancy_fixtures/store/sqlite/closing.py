"""SQLite connections that let go of their locks when they close.

A task cancelled in the middle of a statement (``asyncio.wait_for`` around a load, a
service stopping its jobs) leaves a cursor holding that statement while SQLAlchemy
closes the connection; ``sqlite3`` then keeps the connection alive as a zombie, its
transaction (or the statement's read lock) held, until the cursor is
garbage-collected, and every writer waits out its busy timeout. Closing here rolls
back and closes every cursor first, whatever still refers to them.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Iterable
from contextlib import suppress
from typing import Any

__all__ = ["RollbackOnClose"]


class RollbackOnClose(sqlite3.Connection):
    """A ``sqlite3`` connection whose ``close`` rolls back an open transaction and
    closes the cursors still open on it (resetting their statements) first."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cursors: weakref.WeakSet[sqlite3.Cursor] = weakref.WeakSet()

    def cursor(self, factory: Any = sqlite3.Cursor) -> Any:
        made = super().cursor(factory)
        self._cursors.add(made)
        return made

    # The C implementations of these make their cursor without calling ``cursor``.
    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        made: sqlite3.Cursor = self.cursor()
        return made.execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> sqlite3.Cursor:
        made: sqlite3.Cursor = self.cursor()
        return made.executemany(sql, parameters)

    def executescript(self, script: str, /) -> sqlite3.Cursor:
        made: sqlite3.Cursor = self.cursor()
        return made.executescript(script)

    def close(self) -> None:
        try:
            busy = self.in_transaction
        except sqlite3.ProgrammingError:  # closed already: closing again does nothing
            return
        if busy:
            with suppress(sqlite3.Error):
                super().execute("ROLLBACK")
        for cursor in list(self._cursors):
            with suppress(sqlite3.Error):
                cursor.close()
        super().close()
