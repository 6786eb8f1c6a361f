"""Which value of a batch asyncpg could not encode, found after its ``COPY`` failed.

asyncpg's binary ``COPY`` raises a bare ``TypeError``, ``ValueError`` or
``OverflowError`` that names neither the row nor the column. The row and column are
found here by the rules of asyncpg's binary encoders, for the Python values a
``RowBuilder`` and the session's preparer produce: text must be UTF-8 (no lone
surrogates), integers must fit the column's width, ``REAL`` takes only what a float32
holds, a timestamp without time zone takes no offset, and each type wants its own
Python type.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    REAL,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Table,
    Uuid,
)
from sqlalchemy.types import TypeEngine

__all__ = ["first_unencodable"]

_FLOAT32_MAX = 3.4028234663852886e38
#: The widest precision PostgreSQL's FLOAT(p) keeps as ``real``.
_REAL_PRECISION = 24
#: Whether asyncpg can encode a value for one column.
_Check = Callable[[Any], bool]


def first_unencodable(
    table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> tuple[int, str] | None:
    """``(index in rows, column)`` of the first value asyncpg cannot encode, if one is
    found."""
    checks = [_encodable(table.c[name].type) for name in columns]
    for index, row in enumerate(rows):
        for name, encodable, value in zip(columns, checks, row, strict=True):
            if value is not None and not encodable(value):
                return index, name
    return None


def _integer_bits(kind: Integer) -> int:
    if isinstance(kind, SmallInteger):
        return 15
    return 63 if isinstance(kind, BigInteger) else 31


def _encodable(kind: TypeEngine[Any]) -> _Check:
    """Whether asyncpg encodes a (non-NULL) value for a column of type ``kind``; made
    once per column."""
    if isinstance(kind, Boolean):
        return lambda value: isinstance(value, bool)
    if isinstance(kind, Integer):
        return _fits_integer(_integer_bits(kind))
    if isinstance(kind, Float):
        return _fits_float(kind)
    if isinstance(kind, Numeric):
        return lambda value: isinstance(value, Decimal | int | float)
    if isinstance(kind, DateTime):
        return _is_timestamp(aware=bool(kind.timezone))
    if isinstance(kind, Date):
        return lambda value: isinstance(value, date)
    if isinstance(kind, Uuid):
        return lambda value: isinstance(value, uuid.UUID) or _utf8(value)
    if isinstance(kind, String):
        return _utf8
    # JSON goes as text (the session's preparer); other types: text is checked, the
    # rest cannot be judged here.
    return lambda value: not isinstance(value, str) or _utf8(value)


def _fits_integer(bits: int) -> _Check:
    low, high = -(2**bits), 2**bits
    return lambda value: isinstance(value, int) and low <= value < high


def _fits_float(kind: Float[Any]) -> _Check:
    """A number; for ``REAL`` (or ``FLOAT(p)`` kept as real) one a float32 holds."""
    real = isinstance(kind, REAL) or (
        kind.precision is not None and kind.precision <= _REAL_PRECISION
    )

    def encodable(value: Any) -> bool:
        if not isinstance(value, int | float):
            return False
        return not real or not math.isfinite(value) or abs(value) <= _FLOAT32_MAX

    return encodable


def _is_timestamp(*, aware: bool) -> _Check:
    def encodable(value: Any) -> bool:
        if isinstance(value, datetime):
            # asyncpg subtracts a naive epoch for ``timestamp``: an aware value fails.
            return aware or value.tzinfo is None
        return isinstance(value, date)

    return encodable


def _utf8(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
