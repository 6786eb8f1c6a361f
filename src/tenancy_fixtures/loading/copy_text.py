"""Rows as PostgreSQL ``COPY ... FROM STDIN`` text: what a parse worker hands over.

A parse worker that sends typed rows makes the loading process unpickle them and the
driver encode them, one Python object at a time, in the one process every row passes
through. Encoding the rows where they were parsed, into the bytes ``COPY`` reads,
leaves the loading process only the bytes to pass on.

One function per table is generated from its columns (as
:class:`~tenancy_fixtures.loading.records.RowBuilder` generates its builder), for the
values a ``RowBuilder`` produces: text, integers, floats, booleans, timestamps, dates,
decimals, UUIDs and JSON. Text escapes backslash, tab, newline and carriage return, as
the format requires; ``NULL`` is ``\\N``. A table with a column of any other type has no
encoder, and its rows travel as rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    Numeric,
    String,
    Table,
    Uuid,
)
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from tenancy_fixtures.loading.copy_lines import ESCAPES, RowEncoder, encoder_from

__all__ = ["RowEncoder", "encoder_expressions", "row_encoder"]


def _needs_escape(column: Column[Any]) -> bool:
    """Whether the column's default is text that holds what ``COPY`` text escapes."""
    default = column.default
    value = default.arg if isinstance(default, ScalarElementColumnDefault) else None
    return isinstance(value, str) and value != value.translate(ESCAPES)


def _expression(column: Column[Any], escape: bool, timestamp_text: bool) -> str | None:
    """A Python expression turning a non-NULL value ``v`` into its ``COPY`` text."""
    column_type = column.type
    if isinstance(column_type, JSON):
        return "J(v)"
    if isinstance(column_type, Boolean):
        return "(T if v else F)"
    if isinstance(column_type, DateTime) and timestamp_text:
        return "v"
    if isinstance(column_type, DateTime | Date):
        return "v.isoformat()"
    if isinstance(column_type, Float):
        return "repr(v)"
    if isinstance(column_type, Integer | Numeric | Uuid):
        return "str(v)"
    if isinstance(column_type, String | Enum):
        return "E(v)" if escape else "v"
    return None


def encoder_expressions(
    table: Table, *, escape: bool = True, timestamp_text: bool = False
) -> tuple[str, ...] | None:
    """Each column's expression for :func:`~tenancy_fixtures.loading.copy_lines.encoder_from`,
    or ``None`` if a column's type has none (see :func:`row_encoder` for the flags)."""
    expressions = []
    for column in table.columns:
        expression = _expression(column, escape or _needs_escape(column), timestamp_text)
        if expression is None:
            return None
        expressions.append(expression)
    return tuple(expressions)


def row_encoder(
    table: Table, *, escape: bool = True, timestamp_text: bool = False
) -> RowEncoder | None:
    """The encoder of ``table``'s rows, or ``None`` if a column's type has none.

    ``escape=False`` is for text known to hold no backslash, tab or line break (JSON
    text without a backslash, whose strings cannot hold raw control characters): it
    saves a pass over every string. ``timestamp_text``: timestamps come as ISO 8601
    text already (the fast path's rows), not as ``datetime``.
    """
    expressions = encoder_expressions(table, escape=escape, timestamp_text=timestamp_text)
    return None if expressions is None else encoder_from(expressions)
