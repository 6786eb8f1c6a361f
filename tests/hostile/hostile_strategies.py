"""Hypothesis strategies derived from the tenant schema's SQLAlchemy columns.

Each column gives ``(raw, expected)`` pairs: ``raw`` goes into a fixture file and
``expected`` is the typed value a clean load must read back, or :data:`UNKNOWN` where
the loader may convert or refuse the value (a numeric string for an integer column, a
string for a JSON column, a value of the wrong type). Values are drawn right and
wrong: in range and just past it, null where the column allows it and where it does
not, long and unicode text, foreign keys that resolve or not.
"""

from __future__ import annotations

import math
import re
import string
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    String,
    Table,
)
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from tenancy_fixtures.loading.rules import FORMAT_INFO

__all__ = ["UNKNOWN", "Pair", "json_equal", "records_for", "table_records"]

#: ``expected`` of a value the loader may convert or refuse.
UNKNOWN: Any = object()
Pair = tuple[Any, Any]

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_BASE62 = string.ascii_letters + string.digits
#: Any character a UTF-8 file can hold (no lone surrogates) but NUL, which text refuses.
_SAFE_TEXT = st.characters(codec="utf-8", exclude_characters="\x00")
#: Timestamps whose UTC instant stays inside the calendar (see the corpus's
#: "timestamp-that-leaves-the-calendar-in-utc" case for the ones that do not), in zones
#: of whole seconds (an offset with a fraction of one is refused: see test_records.py).
_AWARE = st.datetimes(
    min_value=datetime(1900, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.builds(
        timezone,
        st.integers(-23 * 3600, 23 * 3600).map(lambda seconds: timedelta(seconds=seconds)),
    ),
)
_JSON_SCALARS = (
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(_SAFE_TEXT, max_size=12)
)
_JSON_KEYS = st.text(_SAFE_TEXT, max_size=6)
_JSON_VALUES = st.recursive(
    st.none() | _JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_JSON_KEYS, inner, max_size=3),
    max_leaves=8,
)
#: Arrays and objects: what a JSON column holds (a string would be read as JSON text).
_JSON_CONTAINERS = st.lists(_JSON_VALUES, max_size=3) | st.dictionaries(
    _JSON_KEYS, _JSON_VALUES, max_size=3
)


def _same(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Pair]:
    return values.map(lambda v: (v, v))


def _unknown(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Pair]:
    return values.map(lambda v: (v, UNKNOWN))


#: Values of every JSON type, none of them known to fit.
_WRONG_TYPES = _unknown(_JSON_SCALARS | _JSON_CONTAINERS)


class _Values:
    """A column's values that fit its type and those that may not."""

    def __init__(self, fitting: st.SearchStrategy[Pair], unfitting: st.SearchStrategy[Pair]):
        self.fitting = fitting
        self.unfitting = st.one_of(unfitting, _WRONG_TYPES)


def _check_choices(column: Column[Any]) -> list[str]:
    """The values a ``column IN ('a', 'b')`` CHECK constraint of its table allows."""
    for constraint in column.table.constraints:
        if isinstance(constraint, CheckConstraint):
            found = re.fullmatch(rf'"?{column.name}"? IN \((.*)\)', str(constraint.sqltext))
            if found:
                return re.findall(r"'([^']*)'", found.group(1))
    return []


def _text(column: Column[Any], length: int | None) -> _Values:
    fmt = column.info.get(FORMAT_INFO)
    limit = length if length is not None else 300
    fitting: st.SearchStrategy[str] = st.text(_SAFE_TEXT, max_size=min(limit, 40))
    if fmt == "spotify_id":
        fitting = st.text(_BASE62, min_size=22, max_size=22)
    elif fmt == "email":
        fitting = st.emails().filter(lambda e: len(e) <= limit)
    elif fmt == "country":
        fitting = st.sampled_from(["SE", "US", "DE", "BR", "JP"])
    elif fmt == "isrc":
        fitting = st.from_regex(r"[A-Z]{2}[A-Z0-9]{3}[0-9]{7}", fullmatch=True)
    choices = _check_choices(column)
    if choices:
        fitting = st.sampled_from(choices)
    longest = st.text(_SAFE_TEXT, min_size=limit, max_size=limit) if length else st.nothing()
    return _Values(
        _same(fitting),
        st.one_of(
            _same(longest),
            _unknown(st.text(_SAFE_TEXT, min_size=limit + 1, max_size=limit + 3)),
            _unknown(st.text(min_size=1, max_size=5).map(lambda s: s + "\x00")),
        ),
    )


def _integer(bounds: tuple[int, int]) -> _Values:
    low, high = bounds
    return _Values(
        _same(st.integers(0, 100)),
        st.one_of(
            _same(st.integers(low, high)),
            _same(st.sampled_from([low, high, -1])),
            _unknown(st.sampled_from([low - 1, high + 1, 10**30, -(10**30)])),
            _unknown(st.integers(0, 100).map(str)),
            _unknown(st.floats(allow_nan=False, allow_infinity=False)),
            _unknown(st.booleans()),
        ),
    )


def _float() -> _Values:
    return _Values(
        _same(st.floats(0.001, 1)),
        st.one_of(
            _same(st.floats(allow_nan=False, allow_infinity=False)),
            _same(st.integers(-100, 100).map(float)),
            _unknown(st.sampled_from([math.nan, math.inf, -math.inf])),
            _unknown(st.floats().map(repr)),
        ),
    )


def _timestamp() -> _Values:
    return _Values(
        st.one_of(
            _AWARE.map(lambda d: (d.isoformat(), d)),
            _AWARE.map(lambda d: (d.astimezone(UTC).isoformat(), d)),
        ),
        st.one_of(
            _unknown(_AWARE.map(lambda d: d.replace(tzinfo=None).isoformat())),
            _unknown(st.dates().map(date.isoformat)),
        ),
    )


def _date() -> _Values:
    days = st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 1, 1))
    return _Values(
        days.map(lambda d: (d.isoformat(), d)), _unknown(_AWARE.map(lambda d: d.isoformat()))
    )


def _json() -> _Values:
    return _Values(_same(_JSON_CONTAINERS), _unknown(st.text(_SAFE_TEXT, max_size=8)))


def _values(column: Column[Any]) -> _Values:
    kind = column.type
    if isinstance(kind, JSON):
        return _json()
    if isinstance(kind, Boolean):
        return _Values(_same(st.booleans()), _unknown(st.sampled_from(["yes", "0", 1])))
    if isinstance(kind, DateTime):
        return _timestamp()
    if isinstance(kind, Date):
        return _date()
    if isinstance(kind, BigInteger):
        return _integer(_INT64)
    if isinstance(kind, Integer):
        return _integer(_INT32)
    if isinstance(kind, Float):
        return _float()
    if isinstance(kind, String):
        return _text(column, kind.length)
    return _Values(st.nothing(), _WRONG_TYPES)


def _null(column: Column[Any]) -> Any:
    """What a null (or absent) value reads back as: the default, or null if allowed."""
    if isinstance(column.default, ScalarElementColumnDefault):
        return column.default.arg
    return None if column.nullable and not column.primary_key else UNKNOWN


def column_values(column: Column[Any], *, fitting: bool) -> st.SearchStrategy[Pair]:
    """``(raw, expected)`` for one column: only values that fit its type (null where it
    may be null), or anything, null included."""
    values = _values(column)
    null = st.just((None, _null(column)))
    if fitting:
        return values.fitting if _null(column) is UNKNOWN else st.one_of(values.fitting, null)
    return st.one_of(values.fitting, values.unfitting, values.unfitting, null)


def _record(table: Table, *, fitting: bool) -> st.SearchStrategy[dict[str, Pair]]:
    # str(): column names are SQLAlchemy's quoted_name, which YAML cannot write.
    values = {str(c.name): column_values(c, fitting=fitting) for c in table.columns}
    if fitting:
        required = {k: v for k, v in values.items() if _null(table.columns[k]) is UNKNOWN}
        optional = {k: v for k, v in values.items() if k not in required}
        return st.fixed_dictionaries(required, optional=optional)
    return st.fixed_dictionaries({}, optional=values)


def table_records(
    table: Table, *, max_records: int = 3
) -> st.SearchStrategy[list[dict[str, Pair]]]:
    """1 to ``max_records`` records of ``table``, column -> (raw, expected); a column left
    out stands for null. Either every value fits its column's type, or anything goes
    (unknown columns included)."""
    unknown_column = st.sampled_from(["bogus", "Name", " name"]).map(lambda k: (k, (1, UNKNOWN)))
    anything = st.tuples(_record(table, fitting=False), st.lists(unknown_column, max_size=1)).map(
        lambda drawn: {**drawn[0], **dict(drawn[1])}
    )
    return st.one_of(
        st.lists(_record(table, fitting=True), min_size=1, max_size=max_records),
        st.lists(anything, min_size=1, max_size=max_records),
    )


def records_for(tables: list[Table]) -> st.SearchStrategy[tuple[Table, list[dict[str, Pair]]]]:
    """A table of ``tables`` (those without foreign keys drawn as often as all the others
    together, so that loads can succeed) and records for it."""
    standalone = [t for t in tables if not t.foreign_keys]
    chosen = st.one_of(st.sampled_from(standalone), st.sampled_from(tables))
    return chosen.flatmap(lambda t: st.tuples(st.just(t), table_records(t)))


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def json_equal(expected: Any, actual: Any) -> bool:
    """JSON values equal as JSON: numbers by their decimal value.

    PostgreSQL's jsonb keeps numbers as decimals and prints ``1.2345e+20`` as the
    integer ``123450000000000000000``; read back, that is an int of another value
    than the float written. As JSON both are the same number.
    """
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(
            json_equal(expected[k], actual[k]) for k in expected
        )
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(
            json_equal(e, a) for e, a in zip(expected, actual, strict=True)
        )
    return bool(_number(expected) == _number(actual)) and isinstance(expected, bool) == isinstance(
        actual, bool
    )
