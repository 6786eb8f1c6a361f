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

The plan (which columns, which types and checks) is worked out from the table in the
loading process (:mod:`~tenancy_fixtures.loading.fast_plans`) and travels to the parse
workers as plain data: this module imports no SQLAlchemy, so a worker on this path
needs none.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from tenancy_fixtures.loading.generated_code import compiled

__all__ = ["FastColumn", "FastPlan", "FastRows"]

#: A UTC timestamp as orjson and ``datetime.isoformat`` write it.
_UTC_TEXT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.(?!000000)[0-9]{6})?\+00:00"
)
#: A key followed by whitespace before its colon (JSON allows it; the key count needs none).
_SPACED_KEY = re.compile(rb'"[ \t\r\n]+:')
#: A check of one column's non-NULL values of a block.
_Check = Callable[[list[Any]], bool]


@dataclass(frozen=True)
class FastColumn:
    """How one column is decoded and what is checked on its values afterwards.

    ``kind``: ``bool``; ``utc`` (a timestamp with time zone kept as its UTC text);
    ``int`` within ``low``..``high``; ``float`` (finite); ``str`` of at most ``limit``
    characters. ``conditions``: Python expressions over ``v`` each value must pass,
    with the names they use (value formats, ``CHECK`` conditions); ``members``: the
    values an enum allows.
    """

    name: str
    kind: Literal["bool", "utc", "int", "float", "str"]
    required: bool
    low: int = 0
    high: int = 0
    limit: int = 0
    conditions: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    members: frozenset[str] | None = None


@dataclass(frozen=True)
class FastPlan:
    """A table's columns on the fast path, in order, and the values missing ones take."""

    columns: tuple[FastColumn, ...]
    #: Column position -> the value a missing or null one takes.
    defaults: Mapping[int, Any] = field(default_factory=dict)


def _utc_texts(values: list[str]) -> bool:
    """Whether every value is a valid timestamp written exactly as its UTC ``isoformat()``."""
    if not all(map(_UTC_TEXT.fullmatch, values)):
        return False
    try:
        deque(map(datetime.fromisoformat, values), maxlen=0)
    except ValueError:
        return False
    return True


def _compiled(expression: str, names: Mapping[str, Any]) -> _Check:
    """A check that every value passes ``expression`` (a condition on ``v``)."""
    test = eval(compiled(f"lambda v: {expression}", "eval"), dict(names))  # noqa: S307 - our own rules
    return lambda values: all(map(test, values))


def _every(test: Callable[[Any], bool]) -> _Check:
    return lambda values: all(map(test, values))


def _floats(values: list[float]) -> bool:
    """Finite, and no negative zero (from the integer ``-0`` the exact path reads as 0.0)."""
    if not all(map(math.isfinite, values)):
        return False
    return 0.0 not in values or all(math.copysign(1.0, v) > 0 for v in values if v == 0)


def _msgspec_type(column: FastColumn) -> Any:
    """The type msgspec decodes the column's values as, checking what it can."""
    if column.kind == "int":
        return Annotated[int, msgspec.Meta(ge=column.low, le=column.high)]
    if column.kind == "str":
        return Annotated[str, msgspec.Meta(max_length=column.limit)]
    return {"bool": bool, "utc": str, "float": float}[column.kind]


def _checks(column: FastColumn) -> tuple[_Check, ...]:
    """What is checked on a block's non-NULL values of the column once decoded."""
    if column.kind == "bool":
        return ()
    if column.kind == "utc":
        return (_utc_texts,)
    checks = [_compiled(expression, names) for expression, names in column.conditions]
    if column.members is not None:
        checks.append(_every(column.members.__contains__))
    return (_floats, *checks) if column.kind == "float" else tuple(checks)


class FastRows:
    """Decodes blocks of one table's JSON Lines in C; see the module's docstring."""

    def __init__(self, plan: FastPlan) -> None:
        # Attributes c0, c1... named in JSON as the columns are (any name a column has).
        fields: list[Any] = []
        required = [c.required for c in plan.columns]
        for i, column in enumerate(plan.columns):
            kind = _msgspec_type(column)
            if column.required:
                fields.append((f"c{i}", kind))
            else:
                fields.append((f"c{i}", kind | None | msgspec.UnsetType, msgspec.UNSET))
        record = msgspec.defstruct(
            "Record",
            fields,
            kw_only=True,
            forbid_unknown_fields=True,
            rename={f"c{i}": column.name for i, column in enumerate(plan.columns)},
        )
        self._decoder = msgspec.json.Decoder(record)
        self._astuple = msgspec.structs.astuple
        checks = [(i, _checks(column)) for i, column in enumerate(plan.columns)]
        self._checks = [(i, found) for i, found in checks if found]
        self._optional = [i for i, needed in enumerate(required) if not needed]
        self._required = len(required) - len(self._optional)
        #: Column position -> the value a missing or null one takes.
        self._defaults = dict(plan.defaults)

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
