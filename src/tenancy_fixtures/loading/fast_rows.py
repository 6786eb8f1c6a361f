"""A block of JSON Lines decoded, typed and checked in one compiled call, when it can be.

The exact path (orjson per line, then a :class:`~tenancy_fixtures.loading.records.RowBuilder`
per record) costs a few microseconds of Python a row. For a table whose every column is
text, an integer, a float, a boolean or a timestamp with time zone, msgspec decodes a
whole block into typed records in C, checking unknown and missing keys, types, lengths
and integer ranges as it goes; the value formats and CHECK conditions then run once per
column, not per row.

It only ever says yes to a block the exact path accepts, with the same values: anything
it is not sure of (a type to convert, a repeated key, a NUL, a timestamp not already
written as UTC, a refused value) makes it decline the block, and the exact path parses
it again and names the line, column and rule. Timestamps stay the text they were
written as (``2026-01-01T12:00:00+00:00``): that is already how the checksum and
``COPY`` write them.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import msgspec
from sqlalchemy import Boolean, Column, DateTime, Enum, Float, Integer, String, Table
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from tenancy_fixtures.loading.checksums import blank_padded
from tenancy_fixtures.loading.four_byte_floats import four_byte_float
from tenancy_fixtures.loading.generated_code import compiled
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

__all__ = ["FastRows"]

#: A UTC timestamp as orjson and ``datetime.isoformat`` write it.
_UTC_TEXT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.(?!000000)[0-9]{6})?\+00:00"
)
#: A key followed by whitespace before its colon (JSON allows it; the key count needs none).
_SPACED_KEY = re.compile(rb'"[ \t\r\n]+:')
_ENCRYPTED_INFO = "encrypted"
#: A check of one column's non-NULL values of a block.
_Check = Callable[[list[Any]], bool]


def _utc_texts(values: list[str]) -> bool:
    """Whether every value is a valid timestamp written exactly as its UTC ``isoformat()``."""
    if not all(map(_UTC_TEXT.fullmatch, values)):
        return False
    try:
        deque(map(datetime.fromisoformat, values), maxlen=0)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class _Plan:
    """How one column is decoded and what is checked on its values afterwards."""

    kind: Any
    checks: tuple[_Check, ...]


def _compiled(expression: str, names: dict[str, Any]) -> _Check:
    """A check that every value passes ``expression`` (a condition on ``v``)."""
    test = eval(compiled(f"lambda v: {expression}", "eval"), names)  # noqa: S307 - our own rules
    return lambda values: all(map(test, values))


def _every(test: Callable[[Any], bool]) -> _Check:
    return lambda values: all(map(test, values))


def _floats(values: list[float]) -> bool:
    """Finite, and no negative zero (from the integer ``-0`` the exact path reads as 0.0)."""
    if not all(map(math.isfinite, values)):
        return False
    return 0.0 not in values or all(math.copysign(1.0, v) > 0 for v in values if v == 0)


def _plan(
    column: Column[Any], max_text_length: int, rules: bool, checks_of_table: list[ColumnCheck]
) -> _Plan | None:
    """The column's msgspec type and checks, or ``None`` where only the exact path will do."""
    kind = column.type
    checks: list[_Check] = []
    if rules:
        form = column_format(column)
        if form is not None:
            checks.append(_compiled(form.expression, dict(form.names)))
        for check in checks_of_table:
            if check.column == column.name:
                names: dict[str, Any] = {}

                def constant(value: Any, names: dict[str, Any] = names) -> str:
                    names[f"k{len(names)}"] = value
                    return f"k{len(names) - 1}"

                checks.append(_compiled(check.expression(constant), names))
    if isinstance(kind, Enum):
        checks.append(_every(frozenset(kind.enums).__contains__))
    if isinstance(kind, Boolean):
        return _Plan(bool, ())
    if isinstance(kind, DateTime) and kind.timezone:
        # TIMESTAMP(p) is rounded on the way: the exact path does it.
        return None if fractional_places(kind) is not None else _Plan(str, (_utc_texts,))
    if isinstance(kind, Integer):
        low, high = integer_bounds(kind)
        return _Plan(Annotated[int, msgspec.Meta(ge=low, le=high)], tuple(checks))
    if isinstance(kind, Float):
        # A 4-byte float is rounded on the way: the exact path does it.
        return None if four_byte_float(kind) else _Plan(float, (_floats, *checks))
    if blank_padded(kind):
        return None  # hashed without trailing blanks: the exact path's checksum does it
    if isinstance(kind, String):
        limit = text_limit(column, max_text_length)
        return _Plan(Annotated[str, msgspec.Meta(max_length=limit)], tuple(checks))
    return None


class FastRows:
    """Decodes blocks of one table's JSON Lines in C; see the module's docstring."""

    def __init__(
        self,
        table: Table,
        plans: Sequence[_Plan],
        required: Sequence[bool],
        defaults: dict[int, Any],
    ) -> None:
        # Attributes c0, c1... named in JSON as the columns are (any name a column has).
        fields: list[Any] = []
        for i, (plan, needed) in enumerate(zip(plans, required, strict=True)):
            if needed:
                fields.append((f"c{i}", plan.kind))
            else:
                fields.append((f"c{i}", plan.kind | None | msgspec.UnsetType, msgspec.UNSET))
        record = msgspec.defstruct(
            "Record",
            fields,
            kw_only=True,
            forbid_unknown_fields=True,
            rename={f"c{i}": str(column.name) for i, column in enumerate(table.columns)},
        )
        self._decoder = msgspec.json.Decoder(record)
        self._astuple = msgspec.structs.astuple
        self._checks = [(i, plan.checks) for i, plan in enumerate(plans) if plan.checks]
        self._optional = [i for i, needed in enumerate(required) if not needed]
        self._required = len(plans) - len(self._optional)
        #: Column position -> the value a missing or null one takes.
        self._defaults = defaults

    @classmethod
    def for_table(
        cls, table: Table, *, max_text_length: int = DEFAULT_MAX_TEXT_LENGTH, rules: bool = True
    ) -> FastRows | None:
        """The fast path for ``table``, or ``None`` when a column needs the exact path (a
        type to convert, a default to fill in, an encrypted value)."""
        plans = []
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
            plan = _plan(column, max_text_length, rules, checks)
            if plan is None:
                return None
            plans.append(plan)
        required = [not c.nullable and i not in defaults for i, c in enumerate(table.columns)]
        return cls(table, plans, required, defaults)

    def rows(self, block: bytes) -> list[tuple[Any, ...]] | None:
        """The block's rows in column order, or ``None``: the exact path must parse it."""
        columns = self._columns(block)
        if columns is None:
            return None
        for i, checks in self._checks:
            values = [v for v in columns[i] if v is not None]
            if not all(check(values) for check in checks):
                return None
        for i, default in self._defaults.items():
            if None in columns[i]:  # a default is taken as it is, unchecked
                columns[i] = tuple(default if v is None else v for v in columns[i])
        return list(zip(*columns, strict=True))

    def _columns(self, block: bytes) -> list[tuple[Any, ...]] | None:
        """The block decoded, column by column (``None`` for a missing value), or
        ``None`` if it holds what msgspec does not check (a NUL, a repeated key)."""
        if b"\\u0000" in block or _SPACED_KEY.search(block) is not None:
            return None
        try:
            records = self._decoder.decode_lines(block)
        except msgspec.DecodeError:
            return None
        if not records:
            return [() for _ in range(self._required + len(self._optional))]
        columns = list(zip(*map(self._astuple, records), strict=True))
        # Each key ends in `":` (no whitespace before a colon, checked above); a string
        # holding `":` only raises the count: a repeated key always shows.
        present = len(records) * self._required + sum(
            len(records) - columns[i].count(msgspec.UNSET) for i in self._optional
        )
        if present != block.count(b'":'):
            return None
        for i in self._optional:
            if msgspec.UNSET in columns[i]:
                columns[i] = tuple(None if v is msgspec.UNSET else v for v in columns[i])
        return columns
