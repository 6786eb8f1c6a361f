"""Array columns (PostgreSQL ``ARRAY``): a list of values, each typed and checked as a
value of the element type is.

A record gives an array as a JSON list (in CSV, or any text, as the list's JSON text);
``null`` elements stay null. An ``ARRAY(..., dimensions=n)`` column takes lists nested
``n`` deep, rectangular (PostgreSQL refuses ragged ones, and keeps ``[[]]`` as ``{}``);
without ``dimensions``, one level. SQLite has no arrays: a schema with one is refused
when its store starts.

Refused when the manager starts, with the reason: arrays of enums, JSON or arrays
(their elements would need more than a value's converter), an array in a primary or
unique key (records are compared by key), an array holding personal data, a subject
reference or encrypted values (erasure, pseudonymised exports and encryption work on
whole values; the ``info`` keys of :mod:`tenancy_fixtures.store.column_info`), and an
``ARRAY`` only in a PostgreSQL variant of another type.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    ARRAY,
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Enum,
    Float,
    Index,
    Integer,
    Numeric,
    String,
    Uuid,
)
from sqlalchemy.sql.schema import UniqueConstraint
from sqlalchemy.types import TypeEngine

__all__ = ["array_converter", "array_problem"]


def _shape(value: Any, depth: int) -> tuple[int, ...] | None:
    """The lengths of ``value``'s nested lists, ``depth`` levels down, when every level
    is a non-empty list whose items share one shape; else ``None``."""
    if not isinstance(value, list) or not value:
        return None
    if depth == 1:
        return (len(value),)
    inner = {_shape(v, depth - 1) for v in value}
    if len(inner) != 1:
        return None
    (shape,) = inner
    return None if shape is None else (len(value), *shape)


Converter = Callable[[Any], Any]


def array_converter(element: Converter, dimensions: int | None) -> Converter:
    """A converter of arrays of ``element``'s values, ``dimensions`` deep (default 1)."""
    depth = dimensions or 1

    def items(value: Any, level: int) -> list[Any]:
        if not isinstance(value, list):
            found = type(value).__name__
            inner = " of arrays" * (depth - level)
            raise ValueError(f"expected an array{inner} (a JSON list), found {found}")
        if level < depth:
            return [items(v, level + 1) for v in value]
        return [None if v is None else element(v) for v in value]

    def convert(value: Any) -> list[Any]:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except (json.JSONDecodeError, RecursionError):
                raise ValueError("expected an array: a JSON list, or its JSON text") from None
        if depth > 1 and isinstance(value, list) and value and _shape(value, depth) is None:
            raise ValueError(
                "a multi-dimensional array must be rectangular: inner arrays of one shape, "
                "none empty or null"
            )
        return items(value, 1)

    return convert


_ELEMENTS = (String, Integer, Numeric, Float, Boolean, Date, DateTime, Uuid)
#: ``Column(info=...)`` keys whose values erasure, exports or encryption handle whole.
_WHOLE_VALUE_INFO = ("personal", "subject", "encrypted")


def array_problem(column: Column[Any], stored: TypeEngine[Any]) -> str | None:
    """Why ``column``, an ``ARRAY`` as PostgreSQL stores it (``stored``), is not
    loaded (see the module docstring), or ``None``."""
    kind = column.type
    if not isinstance(kind, ARRAY) or not isinstance(stored, ARRAY):
        return "ARRAY only in a variant for PostgreSQL: declare the column ARRAY"
    element = kind.item_type
    if isinstance(element, Enum | JSON | ARRAY) or not isinstance(element, _ELEMENTS):
        return (
            f"arrays of {element!r} are not loaded (only of text, numbers, booleans, "
            "dates, timestamps and UUIDs)"
        )
    table = column.table
    keyed = (
        column.primary_key
        or column.unique
        or any(
            column.name in c.columns
            for c in [*table.constraints, *table.indexes]
            if isinstance(c, UniqueConstraint) or (isinstance(c, Index) and c.unique)
        )
    )
    if keyed:
        return "an array in a primary or unique key (records are told apart by their keys)"
    if held := [key for key in _WHOLE_VALUE_INFO if column.info.get(key)]:
        return (
            f"an array declared {held[0]!r} (erasure, pseudonymised exports and "
            "encryption work on whole values, not on an array's elements)"
        )
    return None
