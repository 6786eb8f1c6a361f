"""``NUMERIC`` values SQLite would not give back as they were loaded.

SQLite keeps a ``NUMERIC`` value that is not a 64-bit integer as a 64-bit float, and
SQLAlchemy reads it back rounded to the column's scale: past 15 significant digits, or
past the scale it reads back, the value read is not the value loaded. Such a value is
bound as an :class:`InexactNumeric`, which sqlite3 refuses to bind, so that the write
fails naming the record and the column instead of storing another number.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import Float, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

__all__ = ["InexactNumeric", "exact_numeric"]


class InexactNumeric:
    """A loaded value and the different one SQLite would give back."""

    __slots__ = ("given", "kept", "places")

    def __init__(self, given: Decimal, kept: Decimal, places: int) -> None:
        self.given = given
        self.kept = kept
        self.places = places

    def __str__(self) -> str:
        return (
            f"SQLite would keep {self.kept} for {self.given} (it stores NUMERIC values as "
            f"64-bit floats, about 15 significant digits, read back to {self.places} "
            "decimal places); use PostgreSQL for exact decimals, or a String column"
        )


def exact_numeric(
    column_type: TypeEngine[Any], dialect: Dialect, bind: Callable[[Any], Any]
) -> Callable[[Any], Any]:
    """``bind`` for a ``NUMERIC`` column, refusing (as :class:`InexactNumeric`) each
    value SQLite would give back changed; other types' ``bind`` as it is."""
    if not isinstance(column_type, Numeric) or isinstance(column_type, Float):
        return bind
    read = column_type.result_processor(dialect, None)  # type: ignore[no-untyped-call]
    if read is None:
        return bind
    places = column_type._effective_decimal_return_scale

    def convert(value: Any) -> Any:
        stored = bind(value)
        if isinstance(value, Decimal) and isinstance(stored, float):
            kept = read(stored)
            if kept != value:
                return InexactNumeric(value, kept, places)
        return stored

    return convert
