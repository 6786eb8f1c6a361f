"""Server defaults of the columns a record leaves out: what the database would store.

A load names every column of its table (``COPY`` does), so a column a record leaves
out would be stored as NULL where an ``INSERT`` leaving it out gets the column's server
default. The loader fills in the server defaults it can know without the database:
literals (``server_default="free"``, ``text("0")``, ``false()``, ``'{}'::jsonb``) and
the current time (``func.now()``, ``CURRENT_TIMESTAMP``, ``CURRENT_DATE``: the run's
time in UTC, one value per run as the database gives one per transaction). Any other
expression (``gen_random_uuid()``, ``nextval(...)``) is computed by the database per
row: a record that leaves its column out is refused, naming the column. A value given,
``null`` included, is taken as given, as the database takes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import Column, Date, DateTime
from sqlalchemy.sql.elements import ClauseElement, TextClause
from sqlalchemy.sql.schema import DefaultClause

__all__ = ["NO_SERVER_DEFAULT", "DatabaseComputed", "server_default_text", "server_value"]


class _NoServerDefault:
    def __repr__(self) -> str:
        return "NO_SERVER_DEFAULT"


#: What :func:`server_value` gives for a column without a server default.
NO_SERVER_DEFAULT: Final = _NoServerDefault()


@dataclass(frozen=True)
class DatabaseComputed:
    """A server default only the database can compute (per row)."""

    expression: str


_CAST = re.compile(r"\s*::\s*[a-z_][a-z0-9_ ]*(\(\s*\d+(\s*,\s*\d+)?\s*\))?(\[\])?\s*$", re.I)
_QUOTED = re.compile(r"'((?:[^']|'')*)'")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_NOW = re.compile(
    r"now\(\)|current_timestamp(\(\s*\d*\s*\))?|localtimestamp(\(\s*\d*\s*\))?"
    r"|transaction_timestamp\(\)|statement_timestamp\(\)",
    re.I,
)
_TODAY = re.compile(r"current_date", re.I)
_NOW_TEXT = "\0now"
_TODAY_TEXT = "\0today"
_NOT_LITERAL = "\0other"


def server_default_text(column: Column[Any]) -> str | None:
    """The SQL of ``column``'s server default as declared, or ``None`` without one
    (identity columns, computed columns and other server-side values included)."""
    default = column.server_default
    if not isinstance(default, DefaultClause):
        return None
    arg = default.arg
    if isinstance(arg, str):
        return "'" + arg.replace("'", "''") + "'"
    if isinstance(arg, TextClause):
        return arg.text
    if isinstance(arg, ClauseElement):
        return str(arg.compile(compile_kwargs={"literal_binds": True}))
    return None


def _literal(sql: str) -> str | None:
    """The text of a literal (``None`` for NULL), a marker of the current time or day,
    or ``_NOT_LITERAL``."""
    sql = sql.strip()
    while True:
        uncast = _CAST.sub("", sql)
        wrapped = uncast.startswith("(") and uncast.endswith(")")
        unwrapped = uncast[1:-1].strip() if wrapped else uncast
        if unwrapped == sql:
            break
        sql = unwrapped
    if (quoted := _QUOTED.fullmatch(sql)) is not None:
        return quoted.group(1).replace("''", "'")
    if sql.lower() == "null":
        return None
    if sql.lower() in ("true", "false") or _NUMBER.fullmatch(sql) is not None:
        return sql.lower()
    if _NOW.fullmatch(sql) is not None:
        return _NOW_TEXT
    if _TODAY.fullmatch(sql) is not None:
        return _TODAY_TEXT
    return _NOT_LITERAL


def server_value(column: Column[Any], now: datetime) -> Any:
    """What the database stores for ``column`` in a row that leaves it out, as text for
    the loader to type like a value given (``None`` for NULL), or ``NO_SERVER_DEFAULT``,
    or a :class:`DatabaseComputed`. ``now``: the run's time (aware, UTC)."""
    sql = server_default_text(column)
    if sql is None:
        return NO_SERVER_DEFAULT
    text = _literal(sql)
    kind = column.type
    if text == _NOW_TEXT and isinstance(kind, DateTime):
        return (now if kind.timezone else now.replace(tzinfo=None)).isoformat()
    if text in (_NOW_TEXT, _TODAY_TEXT) and isinstance(kind, Date):
        return date(now.year, now.month, now.day).isoformat()
    if text in (_NOW_TEXT, _TODAY_TEXT, _NOT_LITERAL):
        return DatabaseComputed(sql)
    return text
