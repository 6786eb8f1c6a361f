"""Which value of a batch sqlite3 could not bind, found after its ``executemany`` failed.

sqlite3 raises ``UnicodeEncodeError``, ``OverflowError`` or ``ProgrammingError`` for a
value it cannot bind without saying which row it was; binding each value alone on a
private in-memory database (the same module, the same rules) finds it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from tenancy_fixtures.store.base import ENCODING_ERRORS

__all__ = ["BINDING_ERRORS", "first_unbindable"]

#: What ``executemany`` raises for a value it cannot bind.
BINDING_ERRORS: tuple[type[Exception], ...] = (
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    *ENCODING_ERRORS,
)


def first_unbindable(rows: Sequence[Sequence[Any]]) -> tuple[int, int] | None:
    """``(index in rows, index in row)`` of the first value sqlite3 cannot bind, if any."""
    probe = sqlite3.connect(":memory:")
    try:
        for index, row in enumerate(rows):
            for position, value in enumerate(row):
                try:
                    probe.execute("SELECT ?", (value,))
                except BINDING_ERRORS:
                    return index, position
    finally:
        probe.close()
    return None
