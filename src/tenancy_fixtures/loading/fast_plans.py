"""Which tables the compiled block path can take, and how: worked out from the table.

:func:`fast_plan` reads a table's columns (types, defaults, value formats, ``CHECK``
conditions) into a :class:`~tenancy_fixtures.loading.fast_rows.FastPlan`, plain data a
parse worker receives and compiles without importing SQLAlchemy. It says ``None`` where
a column needs the exact path: a type to convert, a default computed per row, a server
default a missing value takes, an encrypted value.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, Column, DateTime, Enum, Float, Integer, String, Table
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from tenancy_fixtures.loading.fast_rows import FastColumn, FastPlan, FastRows
from tenancy_fixtures.loading.four_byte_floats import four_byte_float
from tenancy_fixtures.loading.records import (
    fractional_places,
    integer_bounds,
    stored_default,
    text_limit,
)
from tenancy_fixtures.loading.rules import (
    DEFAULT_MAX_TEXT_LENGTH,
    ColumnCheck,
    column_format,
    table_checks,
)
from tenancy_fixtures.loading.server_defaults import (
    NO_SERVER_DEFAULT,
    DatabaseComputed,
    server_value,
)
from tenancy_fixtures.loading.table_checksums import blank_padded

__all__ = ["fast_plan", "fast_rows_for"]

_ENCRYPTED_INFO = "encrypted"


def _conditions(
    column: Column[Any], rules: bool, checks_of_table: list[ColumnCheck]
) -> tuple[tuple[str, dict[str, Any]], ...]:
    """The column's value format and ``CHECK`` conditions, as expressions over ``v``."""
    if not rules:
        return ()
    found: list[tuple[str, dict[str, Any]]] = []
    form = column_format(column)
    if form is not None:
        found.append((form.expression, dict(form.names)))
    for check in checks_of_table:
        if check.column == column.name:
            names: dict[str, Any] = {}

            def constant(value: Any, names: dict[str, Any] = names) -> str:
                names[f"k{len(names)}"] = value
                return f"k{len(names) - 1}"

            found.append((check.expression(constant), names))
    return tuple(found)


def _column(
    column: Column[Any],
    required: bool,
    max_text_length: int,
    rules: bool,
    checks_of_table: list[ColumnCheck],
) -> FastColumn | None:
    """The column on the fast path, or ``None`` where only the exact path will do."""
    kind = column.type
    name = str(column.name)
    conditions = _conditions(column, rules, checks_of_table)
    members = frozenset(kind.enums) if isinstance(kind, Enum) else None
    if isinstance(kind, Boolean):
        return FastColumn(name, "bool", required)
    if isinstance(kind, DateTime) and kind.timezone:
        # TIMESTAMP(p) is rounded on the way: the exact path does it.
        return None if fractional_places(kind) is not None else FastColumn(name, "utc", required)
    if isinstance(kind, Integer):
        low, high = integer_bounds(kind)
        return FastColumn(name, "int", required, low=low, high=high, conditions=conditions)
    if isinstance(kind, Float):
        # A 4-byte float is rounded on the way: the exact path does it.
        if four_byte_float(kind):
            return None
        return FastColumn(name, "float", required, conditions=conditions, members=members)
    if blank_padded(kind):
        return None  # hashed without trailing blanks: the exact path's checksum does it
    if isinstance(kind, String):
        limit = text_limit(column, max_text_length)
        return FastColumn(
            name, "str", required, limit=limit, conditions=conditions, members=members
        )
    return None


def fast_plan(
    table: Table, *, max_text_length: int = DEFAULT_MAX_TEXT_LENGTH, rules: bool = True
) -> FastPlan | None:
    """The fast path's plan for ``table``, or ``None`` when a column needs the exact
    path (a type to convert, a default to fill in, an encrypted value)."""
    columns: list[FastColumn] = []
    defaults: dict[int, Any] = {}
    checks = table_checks(table) if rules else []
    for i, column in enumerate(table.columns):
        if column.info.get(_ENCRYPTED_INFO):
            return None
        server = server_value(column) if column.default is None else NO_SERVER_DEFAULT
        if server is not NO_SERVER_DEFAULT and (
            column.nullable or not isinstance(server, DatabaseComputed)
        ):
            # A missing value takes it (or is refused), a null does not: the exact
            # path. A required column (an identity) declines blocks missing it here.
            return None
        if column.default is not None:
            if not isinstance(column.default, ScalarElementColumnDefault):
                return None  # computed per row: the exact path calls it
            defaults[i] = stored_default(column, column.default.arg)
        required = not column.nullable and i not in defaults
        planned = _column(column, required, max_text_length, rules, checks)
        if planned is None:
            return None
        columns.append(planned)
    return FastPlan(tuple(columns), defaults)


def fast_rows_for(
    table: Table, *, max_text_length: int = DEFAULT_MAX_TEXT_LENGTH, rules: bool = True
) -> FastRows | None:
    """The fast path for ``table`` compiled here, or ``None`` (see :func:`fast_plan`)."""
    plan = fast_plan(table, max_text_length=max_text_length, rules=rules)
    return None if plan is None else FastRows(plan)
