"""PostgreSQL's ``real``: which float columns it stores, and the value it keeps.

A ``real`` keeps the nearest 4-byte float of what it is given, and compares an ``IN``
list's numbers as ``real`` too; SQLite keeps 8 bytes whatever the declaration. The
loader rounds as PostgreSQL does on both backends, so that both hold the same rows
and a load's checksum is of what is stored.
"""

from __future__ import annotations

import struct
from typing import Any

from sqlalchemy import REAL, Double, Float

from tenancy_fixtures.loading.variants import postgresql_type

__all__ = ["four_byte_float", "nearest_four_byte_float"]

_FLOAT32 = struct.Struct("<f")


def four_byte_float(kind: Any) -> bool:
    """Whether a float column is stored as ``real``: ``REAL``, or ``Float(p)`` with ``p``
    from 1 to 24 bits (not a ``Double``, whatever its ``p``), or a variant for
    PostgreSQL that is one."""
    kind = postgresql_type(kind)
    if isinstance(kind, REAL):
        return True
    if not isinstance(kind, Float) or isinstance(kind, Double):
        return False
    return kind.precision is not None and 1 <= kind.precision <= 24


def nearest_four_byte_float(value: float) -> float:
    """The nearest 4-byte float; ``OverflowError`` past its range."""
    (rounded,) = _FLOAT32.unpack(_FLOAT32.pack(value))
    return float(rounded)
