"""Turning source records into rows of a table: types, required values, unknown columns.

A :class:`RowBuilder` is made once per table from its SQLAlchemy columns; it turns
each record (from JSON, CSV, YAML...) into a tuple in column order with the Python
types the drivers expect, or raises :class:`RecordError` naming the column and rule.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
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

from tenancy_fixtures.errors import RecordError
from tenancy_fixtures.loaders.readers import SourceRecord

__all__ = ["RowBuilder", "unsupported_columns"]

Converter = Callable[[Any], Any]

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_INT_TEXT = re.compile(r"[+-]?[0-9]{1,20}")
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}
_MISSING = object()


def _string(length: int | None) -> Converter:
    def convert(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected text, found {type(value).__name__}")
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
        if length is not None and len(value) > length:
            raise ValueError(f"longer than {length} characters ({len(value)})")
        return value

    return convert


def _integer(bounds: tuple[int, int]) -> Converter:
    low, high = bounds

    def convert(value: Any) -> int:
        if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
            value = int(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, found {value!r:.40}")
        if not low <= value <= high:
            raise ValueError(f"integer {value} out of range [{low}, {high}]")
        return value

    return convert


def _float(value: Any) -> float:
    if isinstance(value, str):
        if not value.isascii():
            raise ValueError(f"expected a number, found {value!r:.40}")
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"expected a number, found {value!r:.40}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, found {type(value).__name__}")
    try:
        result = float(value)
    except OverflowError:
        raise ValueError(f"number too large: {str(value)[:40]}...") from None
    if not math.isfinite(result):
        raise ValueError(f"number must be finite, found {result}")
    return result


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise ValueError(f"expected true or false, found {value!r:.40}")


def _timestamp(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"expected an ISO 8601 timestamp, found {value!r:.40}") from None
    if isinstance(value, date) and not isinstance(value, datetime):
        raise ValueError("expected a timestamp with time and UTC offset, found a date")
    if not isinstance(value, datetime):
        raise ValueError(f"expected an ISO 8601 timestamp, found {type(value).__name__}")
    if value.tzinfo is None:
        raise ValueError("timestamp needs a UTC offset, e.g. 2026-01-01T12:00:00+00:00")
    return value.astimezone(UTC)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = json.loads(value, parse_constant=_no_constants)
        except json.JSONDecodeError as exc:
            raise ValueError(f"expected JSON text: {exc.msg}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value} is not JSON")
    if not isinstance(value, str | int | float | bool | list | dict):
        raise ValueError(f"expected a JSON value, found {type(value).__name__}")
    if isinstance(value, list | dict):
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not representable as JSON: {exc}") from None
    return value


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        raise ValueError("expected a date, found a timestamp")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"expected an ISO 8601 date, found {value!r:.40}") from None
    raise ValueError(f"expected a date, found {type(value).__name__}")


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError(f"expected a number, found {type(value).__name__}")
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"expected a number, found {value!r:.40}") from None
    if not result.is_finite():
        raise ValueError(f"number must be finite, found {value!r:.40}")
    return result


def _uuid(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value.strip())
        except ValueError:
            raise ValueError(f"expected a UUID, found {value!r:.40}") from None
    raise ValueError(f"expected a UUID, found {type(value).__name__}")


def _enum(allowed: Sequence[str], length: int | None) -> Converter:
    as_text = _string(length)
    choices = frozenset(allowed)

    def convert(value: Any) -> str:
        text: str = as_text(value)
        if text not in choices:
            raise ValueError(f"{text!r:.40} is not one of {sorted(choices)}")
        return text

    return convert


def unsupported_columns(table: Table) -> list[str]:
    """Columns of ``table`` whose type no converter reads (``"column: TYPE"``)."""
    problems = []
    for column in table.columns:
        try:
            _converter(column)
        except TypeError:
            problems.append(f"{table.name}.{column.name}: {column.type!r}")
    return problems


def _converter(column: Column[Any]) -> Converter:
    kind = column.type
    if isinstance(kind, JSON):
        return _json
    if isinstance(kind, Enum):
        return _enum(kind.enums, kind.length)
    if isinstance(kind, Uuid):
        return _uuid
    if isinstance(kind, Numeric) and not isinstance(kind, Float):
        return _decimal
    if isinstance(kind, Date):
        return _date
    if isinstance(kind, Boolean):
        return _boolean
    if isinstance(kind, DateTime):
        return _timestamp
    if isinstance(kind, BigInteger):
        return _integer(_INT64)
    if isinstance(kind, Integer):
        return _integer(_INT32)
    if isinstance(kind, Float):
        return _float
    if isinstance(kind, String):
        return _string(kind.length)
    raise TypeError(f"column {column.name}: no converter for {kind!r}")


def _default(column: Column[Any]) -> Any:
    default = column.default
    if isinstance(default, ScalarElementColumnDefault):
        return default.arg
    return _MISSING


def _fast_check(column: Column[Any]) -> str | None:
    """A Python expression on ``v`` true when the value needs no conversion at all."""
    kind = column.type
    if isinstance(kind, JSON | Enum | Uuid | Date | DateTime | Boolean):
        return "(v is True or v is False)" if isinstance(kind, Boolean) else None
    if isinstance(kind, Numeric) and not isinstance(kind, Float):
        return None
    if isinstance(kind, BigInteger):
        return f"(type(v) is int and {_INT64[0]} <= v <= {_INT64[1]})"
    if isinstance(kind, Integer):
        return f"(type(v) is int and {_INT32[0]} <= v <= {_INT32[1]})"
    if isinstance(kind, Float):
        return "(type(v) is float and NEG_INF < v < POS_INF)"
    if isinstance(kind, String):
        limit = f" and len(v) <= {int(kind.length)}" if kind.length else ""
        return f"(type(v) is str{limit} and '\\x00' not in v)"
    return None


class RowBuilder:
    """Builds rows of one table from source records.

    The per-record work is one generated function per table (as attrs and dataclasses
    generate ``__init__``): values already of the right type pass a cheap check, the
    rest go through the column's converter. Column names only ever appear in it as
    string literals.
    """

    def __init__(self, table: Table) -> None:
        self.table = table
        self.columns: tuple[str, ...] = tuple(c.name for c in table.columns)
        self._known = frozenset(self.columns)
        self._build = self._compile(list(table.columns))

    def build(self, source: SourceRecord, *, path: str) -> tuple[Any, ...]:
        """The row for ``source`` in column order; raises :class:`RecordError`."""
        row: tuple[Any, ...] = self._build(source, path)
        return row

    def _compile(self, columns: list[Column[Any]]) -> Callable[[SourceRecord, str], Any]:
        namespace: dict[str, Any] = {
            "M": _MISSING,
            "known": self._known,
            "refuse": self._refuse,
            "unknown": self._unknown,
            "NEG_INF": -math.inf,
            "POS_INF": math.inf,
        }
        lines = [
            "def build(source, path):",
            "    values = source.values",
            "    if not known.issuperset(values):",
            "        raise unknown(source, path)",
            "    get = values.get",
        ]
        for i, column in enumerate(columns):
            name = repr(column.name)
            namespace[f"convert{i}"] = _converter(column)
            default = _default(column)
            lines += [f"    v = get({name}, M)", "    if v is M or v is None:"]
            if default is not _MISSING:
                namespace[f"default{i}"] = default
                lines.append(f"        c{i} = default{i}")
            elif column.nullable:
                lines.append(f"        c{i} = None")
            else:
                lines.append(
                    f"        raise refuse(source, path, {name}, "
                    "'required value is missing' if v is M else 'must not be null')"
                )
            check = _fast_check(column)
            if check is not None:
                lines += [f"    elif {check}:", f"        c{i} = v"]
            lines += [
                "    else:",
                "        try:",
                f"            c{i} = convert{i}(v)",
                "        except ValueError as exc:",
                f"            raise refuse(source, path, {name}, str(exc)) from None",
            ]
        lines.append("    return (" + "".join(f"c{i}, " for i in range(len(columns))) + ")")
        exec("\n".join(lines), namespace)  # noqa: S102 - generated from our own schema
        built: Callable[[SourceRecord, str], Any] = namespace["build"]
        return built

    def _unknown(self, source: SourceRecord, path: str) -> RecordError:
        unknown = sorted(map(str, source.values.keys() - self._known))[0]
        return self._refuse(source, path, unknown, "unknown column for this table")

    def _refuse(self, source: SourceRecord, path: str, column: str, reason: str) -> RecordError:
        return RecordError(
            reason,
            path=path,
            table=self.table.name,
            line=source.line,
            record=None if source.line is not None else source.record,
            column=column,
        )
