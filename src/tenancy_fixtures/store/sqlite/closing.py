"""SQLite connections that roll back before closing.

A task cancelled in the middle of a statement (``asyncio.wait_for`` around a load, a
service stopping its jobs) leaves a cursor holding that statement while SQLAlchemy
closes the connection; ``sqlite3`` then keeps the connection alive as a zombie, its
transaction open and its write lock held, until the cursor is garbage-collected, and
every other writer waits out its busy timeout. Rolling back first releases the lock
whatever still refers to the cursor.
"""

from __future__ import annotations

import sqlite3
from contextlib import suppress

__all__ = ["RollbackOnClose"]


class RollbackOnClose(sqlite3.Connection):
    """A ``sqlite3`` connection whose ``close`` rolls back an open transaction first."""

    def close(self) -> None:
        if self.in_transaction:
            with suppress(sqlite3.Error):
                self.execute("ROLLBACK")
        super().close()
