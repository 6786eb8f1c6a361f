"""Turning source records into rows of a table: every rule a record must pass, in one go.

A :class:`RowBuilder` is made once per table from its SQLAlchemy columns; it turns
each record (from JSON, CSV, YAML...) into a tuple in column order with the Python
types the drivers expect, or raises :class:`RecordError` naming the column and the
rule broken: ``unknown_column``, ``not_null``, ``type``, ``range`` (integer width),
``length``, ``timezone``, ``check:<constraint>`` (CHECK constraints compiled by
:mod:`tenancy_fixtures.loading.rules`) or ``format:<format>`` (domain formats).
Loading and the validators share it, so a rule is written, and run, once.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from functools import partial
from typing import Any

from sqlalchemy import (
    ARRAY,
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Uuid,
)
from sqlalchemy.sql import schema as sqlalchemy_schema
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault

from tenancy_fixtures.errors import RecordError, SettingsError
from tenancy_fixtures.loading.arrays import array_converter, array_problem
from tenancy_fixtures.loading.four_byte_floats import four_byte_float, nearest_four_byte_float
from tenancy_fixtures.loading.generated_code import compiled
from tenancy_fixtures.loading.readers import SourceRecord
from tenancy_fixtures.loading.rules import (
    DEFAULT_MAX_TEXT_LENGTH,
    ColumnCheck,
    Condition,
    ValueFormat,
    column_format,
    table_checks,
)
from tenancy_fixtures.loading.server_defaults import (
    NO_SERVER_DEFAULT,
    CurrentTime,
    DatabaseComputed,
    server_default_text,
    server_value,
)
from tenancy_fixtures.loading.table_checksums import blank_padded
from tenancy_fixtures.loading.variants import postgresql_type

__all__ = [
    "RowBuilder",
    "check_loadable",
    "column_converter",
    "column_value",
    "default_function",
    "fractional_places",
    "integer_bounds",
    "parse_timestamp",
    "stored_default",
    "text_limit",
    "unsupported_columns",
]

Converter = Callable[[Any], Any]

_INT16 = (-(2**15), 2**15 - 1)
_INT32 = (-(2**31), 2**31 - 1)
_EXACT_FLOAT_INT = 2**53
_INT64 = (-(2**63), 2**63 - 1)
#: Where PostgreSQL counts timestamps from (it rounds them relative to it).
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_INT_TEXT = re.compile(r"[+-]?[0-9]{1,20}")
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}
_MISSING = object()


class _Invalid(ValueError):
    """A value refused by a converter for a rule other than ``type``."""

    def __init__(self, message: str, rule: str) -> None:
        super().__init__(message)
        self.rule = rule


def _string(length: int) -> Converter:
    def convert(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected text, found {type(value).__name__}")
        if len(value) > length:
            raise _Invalid(f"longer than {length} characters ({len(value)})", "length")
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
        return value

    return convert


def _integer(bounds: tuple[int, int]) -> Converter:
    low, high = bounds

    def convert(value: Any) -> int:
        if isinstance(value, str) and value.isascii() and _INT_TEXT.fullmatch(value.strip()):
            value = int(value)
        if isinstance(value, float) and value.is_integer():
            # Beyond 2**53 a float no longer holds every integer: the value read may not
            # be the one written (orjson reads -(2**63)-1 as a float that rounds into range).
            if abs(value) > _EXACT_FLOAT_INT:
                raise _Invalid(
                    f"integer {value:.0f} out of range: as a JSON number this large it "
                    "has lost precision",
                    "range",
                )
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, found {value!r:.40}")
        if not low <= value <= high:
            raise _Invalid(f"integer {value} out of range [{low}, {high}]", "range")
        return value

    return convert


def _number_text(value: str) -> str:
    """``value``, text of a number, without surrounding whitespace (accepted, as text
    of integers, dates, UUIDs and booleans is); refused holding an underscore or a
    character that is not ASCII. float() and Decimal() read ``1_0.5`` as 10.5 and
    full-width or Arabic-Indic digits (U+FF11 U+FF12) as 12: a file showing something other
    than a plain number would load as one (JSON numbers have neither)."""
    if not value.isascii() or "_" in value:
        raise ValueError(
            f"expected a number in ASCII digits without underscores, found {value!r:.40}"
        )
    return value.strip()


def _float(value: Any) -> float:
    if isinstance(value, str):
        text = _number_text(value)
        try:
            value = float(text)
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


def _float32(value: Any) -> float:
    """A ``real`` value: the nearest 4-byte float, as PostgreSQL stores it (so the load's
    checksum is of what is stored, and SQLite, which keeps 8 bytes, stores the same)."""
    result = _float(value)
    try:
        rounded = nearest_four_byte_float(result)
    except OverflowError:
        raise _Invalid(f"{result} out of range for REAL (a 4-byte float)", "range") from None
    if rounded == 0.0 and result != 0.0:
        raise _Invalid(f"{result} is too small for REAL (a 4-byte float)", "range")
    return rounded


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


def parse_timestamp(value: Any) -> Any:
    """``value`` parsed if it is ISO 8601 text (a fraction of a second rounded to
    microseconds as PostgreSQL rounds it, an offset with one refused); anything else
    as it is."""
    if not isinstance(value, str):
        return value
    if _FRACTIONAL_OFFSET.search(value, max(value.rfind("+"), value.rfind("-"), 0)):
        # Python 3.11 reads "+00:00:00.5" as +00:00, moving the time without a word.
        raise _Invalid(
            f"{value!r:.40}: a UTC offset takes whole seconds at most (e.g. +01:00)", "timezone"
        )
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        # Rarely padded: strip only when the plain parse failed (it is the hot path).
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"expected an ISO 8601 timestamp, found {value!r:.40}") from None
    if len(value) <= _SHORTEST_LONG_FRACTION:
        return parsed
    # A 7th character after the point that is a digit: maybe past microseconds (every
    # timestamp passes here, so the usual one costs a find and a one-character test).
    point = value.find(".")
    if point < 0:
        point = value.find(",")
    if point >= 0 and value[point + 7 : point + 8].isdigit():
        digits = _FRACTION_DIGITS.match(value, point + 1)
        if digits is not None:
            return _rounded_to_microseconds(parsed, digits[0])
    return parsed


def _rounded_to_microseconds(parsed: datetime, digits: str) -> datetime:
    """``parsed``, whose fraction of a second Python cut to microseconds, rounded to them
    as PostgreSQL rounds a timestamp's text: ``rint(strtod(".<digits>") * 1000000)``, a
    double rounded half to even (``round`` of the same double), so a SQLite tenant
    holds what a PostgreSQL one does and the checksum is of what is stored."""
    micros = round(float(f"0.{digits}") * 1_000_000)
    if micros == parsed.microsecond:
        return parsed
    try:
        return parsed + _MICROSECOND * (micros - parsed.microsecond)
    except OverflowError:
        raise _Invalid(f"timestamp {parsed.isoformat()} rounds off the calendar", "range") from None


#: Where SQLAlchemy's wrapper of a default function of no arguments is defined.
_SQLALCHEMY_SCHEMA = sqlalchemy_schema.__file__
#: The digits of a fraction of a second past the microseconds Python keeps (it cuts the
#: rest off).
_FRACTION_DIGITS = re.compile(r"[0-9]{7,}")
#: The length a timestamp's text exceeds when it can have such a fraction (20260101T000000.1234567).
_SHORTEST_LONG_FRACTION = 22
#: A UTC offset with a fraction of a second, at the end of a timestamp's text.
_FRACTIONAL_OFFSET = re.compile(r"[+-]\d{2}:?\d{2}:?\d{2}[.,]\d+\s*$")


def _timestamp(value: Any) -> datetime:
    """For ``DateTime(timezone=True)``: a timestamp with a UTC offset, as UTC."""
    value = parse_timestamp(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        raise ValueError("expected a timestamp with time and UTC offset, found a date")
    if not isinstance(value, datetime):
        raise ValueError(f"expected an ISO 8601 timestamp, found {type(value).__name__}")
    if value.tzinfo is UTC:  # already UTC (+00:00 and Z parse to it): nothing to convert
        return value
    if value.tzinfo is None:
        raise _Invalid("timestamp needs a UTC offset, e.g. 2026-01-01T12:00:00+00:00", "timezone")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise _Invalid(
            f"timestamp {value.isoformat()} is outside the calendar in UTC", "range"
        ) from None


def _naive_timestamp(value: Any) -> datetime:
    """For ``DateTime(timezone=False)``: a timestamp without offset, kept as given.

    One with an offset is refused rather than converted: which zone the column's
    values are in (UTC, the business's local time...) is the application's convention,
    not something a load may guess.
    """
    value = parse_timestamp(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time())
    if not isinstance(value, datetime):
        raise ValueError(f"expected an ISO 8601 timestamp, found {type(value).__name__}")
    if value.tzinfo is not None:
        raise _Invalid(
            "the column holds timestamps without time zone: give one without UTC offset, "
            "e.g. 2026-01-01T12:00:00 (or declare the column DateTime(timezone=True))",
            "timezone",
        )
    return value


def fractional_places(kind: Any) -> int | None:
    """The fractional digits of seconds a ``TIMESTAMP(p)`` column keeps (its variant for
    PostgreSQL's, where it has one), when fewer than the microseconds a timestamp has
    (``None``: it keeps them all)."""
    places = getattr(postgresql_type(kind), "precision", None)
    return places if isinstance(places, int) and 0 <= places < 6 else None


def _rounded_timestamp(convert: Converter, places: int) -> Converter:
    """``convert``, then round to ``places`` fractional digits as PostgreSQL's
    ``TIMESTAMP(places)`` does: half away from zero, counted from 2000-01-01 (so that
    the load's checksum is of what is stored, and SQLite stores the same)."""
    step = 10 ** (6 - places)

    def rounded(value: Any) -> datetime:
        result: datetime = convert(value)
        epoch = _PG_EPOCH if result.tzinfo is not None else _PG_EPOCH.replace(tzinfo=None)
        micros = (result - epoch) // _MICROSECOND
        if micros % step == 0:
            return result
        whole = (abs(micros) + step // 2) // step * step
        try:
            moved: datetime = epoch + _MICROSECOND * (whole if micros >= 0 else -whole)
        except OverflowError:
            raise _Invalid(
                f"timestamp {result.isoformat()} rounds off the calendar", "range"
            ) from None
        return moved

    return rounded


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _holds_nul(value: Any) -> bool:
    """Whether a string key or value anywhere in a JSON value holds a NUL character."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _json_text(text: str) -> Any:
    """The value a JSON column's text (a CSV field, a string) holds; not ``null``, which
    is no value: NULL is an empty field (or a null)."""
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise ValueError(f"expected JSON text: {exc.msg}") from None
    except RecursionError:
        raise ValueError("JSON text nested too deeply") from None
    if value is None:
        raise ValueError("the JSON text null: leave the value empty (or null) for NULL")
    return value


def _json(value: Any) -> Any:
    if isinstance(value, str):
        value = _json_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value} is not JSON")
    if not isinstance(value, str | int | float | bool | list | dict):
        raise ValueError(f"expected a JSON value, found {type(value).__name__}")
    if isinstance(value, list | dict):
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not representable as JSON: {exc}") from None
        except RecursionError:
            raise ValueError("not representable as JSON: nested too deeply") from None
        # PostgreSQL's jsonb refuses NUL in strings; SQLite would keep it: refuse on both.
        if "\\u0000" in text and _holds_nul(value):
            raise ValueError("JSON strings must not contain NUL characters")
    elif isinstance(value, str) and "\x00" in value:
        raise ValueError("JSON strings must not contain NUL characters")
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
    text = _number_text(value) if isinstance(value, str) else str(value)
    try:
        result = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"expected a number, found {value!r:.40}") from None
    if not result.is_finite():
        raise ValueError(f"number must be finite, found {value!r:.40}")
    return result


def _bounded_decimal(precision: int, scale: int) -> Converter:
    """A ``NUMERIC(precision, scale)`` value rounded to ``scale`` places, half away from
    zero, as PostgreSQL stores it (so the load's checksum is of what is stored, and
    SQLite stores the same); what then has more than ``precision - scale`` digits
    before the point PostgreSQL refuses and SQLite would keep: refused on both."""
    whole = precision - scale
    limit = Context(prec=precision + 2).subtract(
        Decimal(10) ** whole, Decimal(5).scaleb(-scale - 1)
    )
    places = Decimal(1).scaleb(-scale)
    rounding = Context(prec=precision + 1, rounding=ROUND_HALF_UP)

    def convert(value: Any) -> Decimal:
        result = _decimal(value)
        if result.copy_abs() >= limit:
            raise _Invalid(
                f"{result} out of range for NUMERIC({precision}, {scale}): at most {whole} "
                "digit(s) before the point",
                "range",
            )
        return result.quantize(places, context=rounding)

    return convert


def _uuid(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value.strip())
        except ValueError:
            raise ValueError(f"expected a UUID, found {value!r:.40}") from None
    raise ValueError(f"expected a UUID, found {type(value).__name__}")


def _uuid_text(value: Any) -> str:
    """For ``Uuid(as_uuid=False)``: the UUID as its canonical text (the column's driver
    takes and gives text)."""
    return str(_uuid(value))


def _enum(allowed: Sequence[str], length: int) -> Converter:
    as_text = _string(length)
    choices = frozenset(allowed)

    def convert(value: Any) -> str:
        text: str = as_text(value)
        if text not in choices:
            raise ValueError(f"{text!r:.40} is not one of {sorted(choices)}")
        return text

    return convert


def check_loadable(metadata: MetaData) -> None:
    """Refuse a tenant schema with a column no loader can read: a type without a
    converter, or a value format no one registered or on a column that is not text; and
    a native enum without a name (PostgreSQL makes a named type of each; the schema's
    checksum is of its PostgreSQL DDL on both backends)."""
    unreadable = [p for t in metadata.sorted_tables for p in unsupported_columns(t)]
    if unreadable:
        raise SettingsError(f"no loader reads these column types: {'; '.join(unreadable)}")
    nameless = [
        f"{table.name}.{column.name}"
        for table in metadata.sorted_tables
        for column in table.columns
        if isinstance(kind := postgresql_type(column.type), Enum)
        and kind.native_enum
        and not kind.name
    ]
    if nameless:
        raise SettingsError(
            f"enum columns without a type name: {', '.join(nameless)}; PostgreSQL makes a "
            'named type of each enum: give one (Enum(..., name="mood")), or declare '
            "native_enum=False for a text column with a CHECK"
        )
    if clashes := _enum_clashes(metadata):
        raise SettingsError(
            f"enum types declared twice with different values: {'; '.join(clashes)}; give "
            "each its own name (the database makes one type of each name)"
        )


def _enum_clashes(metadata: MetaData) -> list[str]:
    """Named enum types declared on two columns with different values."""
    first: dict[str, tuple[str, tuple[str, ...]]] = {}
    clashes = []
    for table in metadata.sorted_tables:
        for column in table.columns:
            kind = column.type
            if not (isinstance(kind, Enum) and kind.native_enum and kind.name):
                continue
            where, values = f"{table.name}.{column.name}", tuple(kind.enums)
            seen = first.setdefault(kind.name, (where, values))
            if seen[1] != values:
                clashes.append(f"{kind.name!r} on {seen[0]} {seen[1]} and on {where} {values}")
    return clashes


def unsupported_columns(table: Table) -> list[str]:
    """Columns of ``table`` whose type no converter reads, or whose format is unknown or
    misplaced (``"table.column: reason"``)."""
    problems = []
    for column in table.columns:
        stored = postgresql_type(column.type)
        arrays = isinstance(column.type, ARRAY) or isinstance(stored, ARRAY)
        if arrays and (problem := array_problem(column, stored)) is not None:
            problems.append(f"{table.name}.{column.name}: {problem}")
            continue
        try:
            _converter(column, DEFAULT_MAX_TEXT_LENGTH)
            column_format(column)
            default_function(column)
        except TypeError as exc:
            problems.append(f"{table.name}.{column.name}: {exc}")
    return problems


def _missing_code(i: int, column: Column[Any], namespace: dict[str, Any], server: Any) -> list[str]:
    """The lines of ``build`` reading column ``i`` into ``v``, and setting ``c{i}`` when
    it is missing or null: its default, or null, or a refusal. A default function is
    called for a row that leaves the column out (an explicit null stays null), and what
    it gives is then typed and checked like a value given; so is a server default
    (``server``, from :func:`_server_default`), which only a missing value takes."""
    name = repr(column.name)
    lines = [f"    v = get({name}, M)"]
    if (made := default_function(column)) is not None:
        namespace[f"make{i}"] = made
        lines += [
            "    if v is M:",
            "        try:",
            f"            v = make{i}()",
            "        except Exception as exc:",
            f"            raise invalid(source, path, {name}, failed_default(exc)) from None",
            "    if v is None:",
        ]
    elif (default := _default(column)) is not _MISSING:
        namespace[f"default{i}"] = stored_default(column, default)
        return [*lines, "    if v is M or v is None:", f"        c{i} = default{i}"]
    elif isinstance(server, DatabaseComputed):
        namespace[f"computed{i}"] = (
            f"left out, but its server default {server.expression} {server.reason}, and a "
            "load writes every column: give it a value"
        )
        lines += [
            "    if v is M:",
            f"        raise refuse(source, path, {name}, computed{i}, 'default')",
            "    elif v is None:",
        ]
    elif server is not NO_SERVER_DEFAULT:
        namespace[f"server{i}"] = server
        lines += ["    if v is M:", f"        c{i} = server{i}", "    elif v is None:"]
    else:
        lines.append("    if v is M or v is None:")
    if column.nullable:
        lines.append(f"        c{i} = None")
    else:
        lines.append(
            f"        raise refuse(source, path, {name}, "
            "'required value is missing' if v is M else 'must not be null', 'not_null')"
        )
    return lines


def _server_default(
    column: Column[Any], max_text_length: int, now: datetime, local_now: datetime
) -> Any:
    """``column``'s server default typed as the loader types a value given (or
    ``NO_SERVER_DEFAULT``, or a :class:`DatabaseComputed` for one it does not fill in).
    ``now``/``local_now``: the load's transaction time, aware and as the session's wall
    time."""
    server = server_value(column)
    if isinstance(column.type, ARRAY) and server == "{}":
        return []  # PostgreSQL's empty array literal
    if isinstance(server, CurrentTime):
        server = _current_time(column, server, now, local_now)
    if server is NO_SERVER_DEFAULT or server is None or isinstance(server, DatabaseComputed):
        return server
    try:
        return stored_default(column, _converter(column, max_text_length)(server))
    except ValueError as exc:
        sql = server_default_text(column) or repr(server)
        return DatabaseComputed(sql, f"does not fit the column ({exc})")


def _current_time(
    column: Column[Any], current: CurrentTime, now: datetime, local_now: datetime
) -> str | DatabaseComputed:
    """The time ``current`` stands for as ``column`` takes it: aware, or the session's
    wall time for a column without a time zone, or its date; rounded to its places."""
    kind = column.type
    if current.utc:
        if isinstance(kind, DateTime) and not kind.timezone:
            return now.astimezone(UTC).replace(tzinfo=None).isoformat()
        return DatabaseComputed(server_default_text(column) or "")
    if isinstance(kind, DateTime) and not current.day:
        value = now if kind.timezone else local_now
        if current.places is not None and current.places < 6:
            value = _rounded_timestamp(lambda v: v, current.places)(value)
        return value.isoformat()
    if isinstance(kind, Date):
        return local_now.date().isoformat()
    return DatabaseComputed(server_default_text(column) or "")


def _failed_default(exc: Exception) -> ValueError:
    return _Invalid(f"its default function failed: {exc!r:.200}", "default")


def default_function(column: Column[Any]) -> Callable[[], Any] | None:
    """The function a column's Python default calls for each row that leaves the column
    out (``default=uuid.uuid4``), or ``None``; a ``TypeError`` for one that takes the
    statement's context, which a load does not have."""
    default = column.default
    if not isinstance(default, CallableColumnDefault):
        return None
    call = default.arg
    # SQLAlchemy wraps a function of no arguments (a partial, an object with __call__)
    # in a lambda of its own that ignores the context; it keeps one of the context.
    if getattr(getattr(call, "__code__", None), "co_filename", None) != _SQLALCHEMY_SCHEMA:
        raise TypeError("its default function takes the statement's context, which loads lack")
    return partial(call, None)  # type: ignore[arg-type]  # the wrapper ignores it


def column_value(column: Column[Any], value: Any) -> Any:
    """``value`` (text from a command line, say) typed as the loader types a value of
    ``column``; a ``ValueError`` saying why when it cannot be one."""
    return _converter(column, DEFAULT_MAX_TEXT_LENGTH)(value)


def column_converter(column: Column[Any]) -> Converter:
    """What :func:`column_value` calls, built once for typing many values of ``column``
    (building it costs more than calling it); a ``TypeError`` for a column type the
    loader does not convert."""
    return _converter(column, DEFAULT_MAX_TEXT_LENGTH)


def text_limit(column: Column[Any], max_text_length: int) -> int:
    """A column's longest value: its declared length (the shorter of the type's and its
    PostgreSQL variant's), else 1 for a ``CHAR`` (PostgreSQL makes ``CHAR`` without a
    length ``CHAR(1)``), else the unbounded-text limit."""
    kinds = (column.type, postgresql_type(column.type))
    lengths = [int(length) for kind in kinds if (length := getattr(kind, "length", None))]
    if lengths:
        return min(lengths)
    return 1 if blank_padded(column.type) else max_text_length


def _converter(column: Column[Any], max_text_length: int) -> Converter:
    kind = column.type
    if isinstance(kind, ARRAY):
        element = Column(column.name, kind.item_type)
        return array_converter(_converter(element, max_text_length), kind.dimensions)
    if isinstance(kind, JSON):
        return _json
    if isinstance(kind, Enum):
        return _enum(kind.enums, text_limit(column, max_text_length))
    if isinstance(kind, Uuid):
        return _uuid if kind.as_uuid else _uuid_text
    if isinstance(kind, Numeric | Float | DateTime):
        return _as_stored(kind)
    if isinstance(kind, Date):
        return _date
    if isinstance(kind, Boolean):
        return _boolean
    if isinstance(kind, Integer):
        return _integer(integer_bounds(kind))
    if isinstance(kind, String):
        return _string(text_limit(column, max_text_length))
    raise TypeError(f"no converter for {kind!r}")


def _as_stored(kind: Numeric[Any] | Float[Any] | DateTime) -> Converter:
    """A number or timestamp, rounded as PostgreSQL stores it where the column keeps
    less than the value has (``NUMERIC(p, s)``, ``REAL``, ``TIMESTAMP(p)``)."""
    if isinstance(kind, DateTime):
        convert = _timestamp if kind.timezone else _naive_timestamp
        places = fractional_places(kind)
        return convert if places is None else _rounded_timestamp(convert, places)
    if isinstance(kind, Float):
        return _float32 if four_byte_float(kind) else _float
    stored = postgresql_type(kind)
    if not isinstance(stored, Numeric) or isinstance(stored, Float) or stored.precision is None:
        return _decimal
    return _bounded_decimal(stored.precision, stored.scale or 0)


def integer_bounds(kind: Integer) -> tuple[int, int]:
    """The values an integer column holds: 64, 16 or 32 bits wide."""
    if isinstance(kind, BigInteger):
        return _INT64
    if isinstance(kind, SmallInteger):
        return _INT16
    return _INT32


def stored_default(column: Column[Any], default: Any) -> Any:
    """A number or timestamp default as the database stores it (typed and rounded like
    a loaded value, so that the load's checksum holds); any other default, or one of a
    column read back as another Python type (``asdecimal``), as it is."""
    kind = column.type
    if default is None or not isinstance(kind, Numeric | Float | DateTime):
        return default
    if isinstance(kind, Numeric | Float) and not _reads_back_converted(kind):
        return default
    try:
        return _as_stored(kind)(default)
    except ValueError:
        return default  # the database refuses it as it would have


def _reads_back_converted(kind: Numeric[Any] | Float[Any]) -> bool:
    """Whether the database gives back the Python type the loader converts to: a
    ``Decimal`` for ``Numeric``, a ``float`` for ``Float``."""
    return bool(kind.asdecimal) != isinstance(kind, Float)


def _default(column: Column[Any]) -> Any:
    default = column.default
    if isinstance(default, ScalarElementColumnDefault):
        return default.arg
    return _MISSING


#: Bound -> (value, strict): the tightest lower and upper bounds of a numeric column.
Bound = tuple[float, bool]
_LOWER = {">=": False, ">": True}
_UPPER = {"<=": False, "<": True}


def _range(
    low: Bound, high: Bound, checks: Sequence[ColumnCheck], *, as_float: bool
) -> tuple[str, list[Condition]]:
    """One chained comparison for the type's range and every CHECK bound, plus the
    conditions that are not bounds (``==``, ``!=``, ``in``)."""
    rest: list[Condition] = []
    for check in checks:
        for op, operand in check.conditions:
            if op in _LOWER:
                low = max(low, (operand, _LOWER[op]))
            elif op in _UPPER:
                # At the same value a strict bound is the tighter one.
                high = min(high, (operand, _UPPER[op]), key=lambda b: (b[0], not b[1]))
            else:
                rest.append((op, operand))
    lower = "NEG_INF" if low[0] == -math.inf else _literal(low[0], as_float)
    upper = "POS_INF" if high[0] == math.inf else _literal(high[0], as_float)
    chain = f"{lower} {'<' if low[1] else '<='} v {'<' if high[1] else '<='} {upper}"
    return chain, rest


def _literal(bound: float, as_float: bool) -> str:
    """``bound`` as Python source; a float for a float column where that is exact
    (comparing a float with an int is slower)."""
    if as_float and isinstance(bound, int) and abs(bound) <= 2**53:
        return repr(float(bound))
    return repr(bound)


def _fast_check(
    column: Column[Any],
    limit: int,
    form: ValueFormat | None,
    checks: Sequence[ColumnCheck],
    constant: Callable[[Any], str],
) -> str | None:
    """A Python expression on ``v`` true when the value needs no conversion and passes
    every format and CHECK condition of its column — the one test a good value takes."""
    kind = column.type
    if isinstance(kind, JSON | Enum | Uuid | Date | DateTime | Boolean):
        return "(v is True or v is False)" if isinstance(kind, Boolean) else None
    if isinstance(kind, Numeric) and not isinstance(kind, Float):
        return None
    if four_byte_float(kind):
        return None  # rounded to 4 bytes on the way
    if isinstance(kind, Integer | Float):
        if isinstance(kind, Float):
            test, bounds = "type(v) is float", ((-math.inf, True), (math.inf, True))
        else:
            wide = integer_bounds(kind)
            test, bounds = "type(v) is int", ((wide[0], False), (wide[1], False))
        chain, rest = _range(*bounds, checks, as_float=isinstance(kind, Float))
        extra = ColumnCheck("", column.name, "", tuple(rest)).expression(constant) if rest else ""
        return f"({test} and {chain}{' and ' + extra if extra else ''})"
    if isinstance(kind, String):
        if form is not None and form.max_length is not None and form.max_length <= limit:
            # The format admits nothing longer and no NUL: it is the whole text check.
            parts = ["type(v) is str", form.expression]
        else:
            parts = ["type(v) is str", f"len(v) <= {limit}", "'\\x00' not in v"]
            if form is not None:
                parts.append(form.expression)
        parts += [f"({check.expression(constant)})" for check in checks]
        return f"({' and '.join(parts)})"
    return None


class RowBuilder:
    """Builds rows of one table from source records.

    The per-record work is one generated function per table (as attrs and dataclasses
    generate ``__init__``): values already of the right type that pass the column's
    CHECK and format conditions take one inline test; the rest go through the
    column's converter, then each condition in turn, so a refusal names the rule it
    broke. Column names only ever appear in it as string literals.

    ``rules=False`` (data validation off) leaves out the schema's rules — compiled CHECK
    constraints and value formats — and keeps what turning a record into a row needs:
    known columns, NOT NULL, types, lengths, integer and NUMERIC ranges, time zones.
    """

    def __init__(
        self,
        table: Table,
        *,
        max_text_length: int = DEFAULT_MAX_TEXT_LENGTH,
        rules: bool = True,
        now: datetime | None = None,
        local_now: datetime | None = None,
    ) -> None:
        self.table = table
        self.max_text_length = max_text_length
        self.rules = rules
        #: What a column defaulting to the current time gets in a row leaving it out: the
        #: load's transaction time, aware and as the session's wall time.
        self.now = now or datetime.now(UTC)
        self.local_now = local_now or self.now.astimezone(UTC).replace(tzinfo=None)
        self.columns: tuple[str, ...] = tuple(c.name for c in table.columns)
        self._known = frozenset(self.columns)
        self.checks: tuple[ColumnCheck, ...] = tuple(table_checks(table))
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
            "invalid": self._invalid,
            "failed_default": _failed_default,
            "unformatted": self._unformatted,
            "unchecked": self._unchecked,
            "NEG_INF": -math.inf,
            "POS_INF": math.inf,
        }

        def constant(value: Any) -> str:
            name = f"K{len(namespace)}"
            namespace[name] = value
            return name

        lines = [
            "def build(source, path):",
            "    values = source.values",
            "    if not known.issuperset(values):",
            "        raise unknown(source, path)",
            "    get = values.get",
        ]
        for i, column in enumerate(columns):
            lines += self._column_code(i, column, namespace, constant)
        lines.append("    return (" + "".join(f"c{i}, " for i in range(len(columns))) + ")")
        exec(compiled("\n".join(lines)), namespace)  # noqa: S102 - generated from our own schema
        built: Callable[[SourceRecord, str], Any] = namespace["build"]
        return built

    def _column_code(
        self,
        i: int,
        column: Column[Any],
        namespace: dict[str, Any],
        constant: Callable[[Any], str],
    ) -> list[str]:
        """The lines of ``build`` that read, check and convert column ``i`` into ``c{i}``
        (what they call goes into ``namespace``)."""
        name = repr(column.name)
        limit = text_limit(column, self.max_text_length)
        try:
            namespace[f"convert{i}"] = _converter(column, self.max_text_length)
            form = column_format(column) if self.rules else None
        except TypeError as exc:
            raise TypeError(f"{self.table.name}.{column.name}: {exc}") from None
        checks = [c for c in self.checks if c.column == column.name] if self.rules else []
        conditions: list[tuple[str, str]] = []
        if form is not None:
            namespace.update(form.names)
            namespace[f"format{i}"] = form
            conditions.append(
                (form.expression, f"raise unformatted(source, path, {name}, v, format{i})")
            )
        for check in checks:
            held = constant(check)
            conditions.append(
                (
                    check.expression(constant),
                    f"raise unchecked(source, path, {name}, v, {held})",
                )
            )
        server = _server_default(column, self.max_text_length, self.now, self.local_now)
        lines = _missing_code(i, column, namespace, server)
        fast = _fast_check(column, limit, form, checks, constant)
        if fast is not None:
            lines += [f"    elif {fast}:", f"        c{i} = v"]
        lines += [
            "    else:",
            "        try:",
            f"            v = convert{i}(v)",
            "        except ValueError as exc:",
            f"            raise invalid(source, path, {name}, exc) from None",
        ]
        for expression, refusal in conditions:
            lines += [f"        if not ({expression}):", f"            {refusal}"]
        lines.append(f"        c{i} = v")
        return lines

    def check_columns(self, names: Iterable[str], *, path: str, line: int | None = None) -> None:
        """Refuse column names this table does not have (a CSV header, before any row)."""
        unknown = sorted(set(names) - self._known)
        if unknown:
            raise RecordError(
                "unknown column for this table",
                path=path,
                table=self.table.name,
                line=line,
                column=unknown[0],
                rule="unknown_column",
            )

    def _unknown(self, source: SourceRecord, path: str) -> RecordError:
        unknown = sorted(map(str, source.values.keys() - self._known))[0]
        return self._refuse(
            source, path, unknown, "unknown column for this table", "unknown_column"
        )

    def _invalid(
        self, source: SourceRecord, path: str, column: str, exc: ValueError
    ) -> RecordError:
        return self._refuse(source, path, column, str(exc), getattr(exc, "rule", "type"))

    def _unformatted(
        self, source: SourceRecord, path: str, column: str, value: str, form: ValueFormat
    ) -> RecordError:
        return self._refuse(
            source, path, column, f"{value!r:.60} is not {form.description}", f"format:{form.name}"
        )

    def _unchecked(
        self, source: SourceRecord, path: str, column: str, value: Any, check: ColumnCheck
    ) -> RecordError:
        return self._refuse(
            source, path, column, f"{value!r:.60} breaks CHECK ({check.sql})", check.rule
        )

    def _refuse(
        self, source: SourceRecord, path: str, column: str, reason: str, rule: str
    ) -> RecordError:
        return RecordError(
            reason,
            path=path,
            table=self.table.name,
            line=source.line,
            record=None if source.line is not None else source.record,
            column=column,
            rule=rule,
        )
