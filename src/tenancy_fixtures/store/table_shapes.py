"""What a table's content checksum depends on besides the rows' values.

A content checksum hashes each row's values in column order, with encrypted columns
counted as null; a column added, dropped, moved, retyped or newly encrypted changes the
checksum of rows that did not change. A write stamp is only trusted for the shape the
table had when the write was recorded, and only for tables whose values the database
stores as the loader typed them: a checksum taken while loading describes the stored
rows only then.
"""

from __future__ import annotations

from hashlib import blake2b

from sqlalchemy import (
    CHAR,
    JSON,
    NCHAR,
    REAL,
    Boolean,
    Date,
    DateTime,
    Float,
    Integer,
    Numeric,
    String,
    Table,
    Uuid,
)
from sqlalchemy.types import TypeEngine

from tenancy_fixtures.store.column_info import ENCRYPTED_INFO

__all__ = ["REAL_PRECISION", "checksum_round_trips", "table_shape"]

#: Floats of at most this many bits of precision are stored as ``real`` (4 bytes).
REAL_PRECISION = 24


def table_shape(table: Table) -> str:
    """16 hex digits naming ``table``'s columns, in order, with their types and masking."""
    described = "|".join(
        f"{column.name}:{column.type!r}:{bool(column.info.get(ENCRYPTED_INFO))}"
        for column in table.columns
    )
    return blake2b(described.encode(), digest_size=8).hexdigest()


def checksum_round_trips(table: Table) -> bool:
    """Whether every column of ``table`` reads back exactly as the loader typed it: no
    rounding (``NUMERIC(p, s)``, ``REAL``, ``TIMESTAMP(p)``), padding (``CHAR``, whose
    checksum ignores it, left out to be safe) or change of Python type (``asdecimal``)
    by the database, so a checksum of the rows as loaded is one of the rows as stored."""
    return all(_exact(column.type) for column in table.columns)


def _exact(kind: TypeEngine[object]) -> bool:
    if isinstance(kind, DateTime):
        # TIMESTAMP(p) rounds to p fractional digits.
        return getattr(kind, "precision", None) is None
    if isinstance(kind, JSON | Uuid | Date | Boolean | Integer):
        return True
    if isinstance(kind, Float):
        precision = kind.precision
        return (
            not isinstance(kind, REAL)
            and not kind.asdecimal
            and (precision is None or precision > REAL_PRECISION)
        )
    if isinstance(kind, Numeric):
        return kind.precision is None and kind.scale is None and bool(kind.asdecimal)
    if isinstance(kind, String):
        return not isinstance(kind, CHAR | NCHAR)
    return False
