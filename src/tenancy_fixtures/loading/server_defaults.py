"""Server defaults of the columns a record leaves out: what the database would store.

A load names every column of its table (``COPY`` does), so a column a record leaves
out would be stored as NULL where an ``INSERT`` leaving it out gets the column's server
default. The loader fills in the server defaults it can know without the database:
literals (``server_default="free"``, ``text("0")``, ``false()``, ``'{}'::jsonb``) and
the current time (``func.now()``, ``CURRENT_TIMESTAMP(p)``, ``LOCALTIMESTAMP``,
``CURRENT_DATE``: the load's transaction time as the database gives it, in the
session's time zone for a column without one, rounded to ``p`` places). Any other
expression (``gen_random_uuid()``), and a value drawn from a sequence (``Sequence``,
``Identity``), is the database's to compute per row: a record that leaves its column
out is refused, naming the column. A value given,
``null`` included, is taken as given, as the database takes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Column, Identity, Sequence
from sqlalchemy.sql.elements import ClauseElement, TextClause
from sqlalchemy.sql.schema import DefaultClause

__all__ = [
    "COMPUTED",
    "DRAWN",
    "NO_SERVER_DEFAULT",
    "CurrentTime",
    "DatabaseComputed",
    "server_default_text",
    "server_value",
]


class _NoServerDefault:
    def __repr__(self) -> str:
        return "NO_SERVER_DEFAULT"


#: What :func:`server_value` gives for a column without a server default.
NO_SERVER_DEFAULT: Final = _NoServerDefault()
#: Why a :class:`DatabaseComputed` expression is not filled in.
COMPUTED = "is an expression only the database evaluates"
#: Why a value drawn from a sequence is not.
DRAWN = "is drawn from a sequence by the database for each row"


@dataclass(frozen=True)
class DatabaseComputed:
    """A server default the loader does not fill in, and why."""

    expression: str
    reason: str = COMPUTED


@dataclass(frozen=True)
class CurrentTime:
    """A server default of the current time (``day``: the current date), kept to
    ``places`` fractional digits of a second (``None``: all six)."""

    day: bool = False
    places: int | None = None
    #: The UTC wall time (``timezone('utc', now())``), for a column without a time zone.
    utc: bool = False


_TYPE_NAME = r'(?:"(?:[^"]|"")+"|[a-z_][a-z0-9_$ ]*)'
_CAST = re.compile(
    rf"\s*::\s*(?:{_TYPE_NAME}\.)?{_TYPE_NAME}(\(\s*\d+(\s*,\s*\d+)?\s*\))?(\[\])?\s*$", re.I
)
_QUOTED = re.compile(r"'((?:[^']|'')*)'")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_NOW = re.compile(
    r"(?:now|transaction_timestamp|statement_timestamp)\(\)"
    r"|(?:current_timestamp|localtimestamp)(?:\(\s*(\d+)\s*\))?",
    re.I,
)
_TODAY = re.compile(r"current_date", re.I)
_UTC_NOW = re.compile(
    r"timezone\(\s*'utc'\s*,\s*(?:now\(\)|current_timestamp)\s*\)"
    r"|\(?\s*(?:now\(\)|current_timestamp)\s*\)?\s+at\s+time\s+zone\s+'utc'",
    re.I,
)


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


def _bare(sql: str) -> str:
    """``sql`` without the casts and parentheses around it."""
    sql = sql.strip()
    while True:
        uncast = _CAST.sub("", sql)
        wrapped = uncast.startswith("(") and uncast.endswith(")")
        unwrapped = uncast[1:-1].strip() if wrapped else uncast
        if unwrapped == sql:
            return sql
        sql = unwrapped


def server_value(column: Column[Any]) -> Any:
    """What the database stores for ``column`` in a row that leaves it out: a literal's
    text for the loader to type like a value given (``None`` for NULL), a
    :class:`CurrentTime`, a :class:`DatabaseComputed`, or ``NO_SERVER_DEFAULT``."""
    if isinstance(column.default, Sequence):
        return DatabaseComputed(f"nextval('{column.default.name}')", DRAWN)
    if isinstance(column.server_default, Identity):
        return DatabaseComputed("GENERATED AS IDENTITY", DRAWN)
    sql = server_default_text(column)
    if sql is None:
        return NO_SERVER_DEFAULT
    bare = _bare(sql)
    if (quoted := _QUOTED.fullmatch(bare)) is not None:
        return quoted.group(1).replace("''", "'")
    if bare.lower() == "null":
        return None
    if bare.lower() in ("true", "false") or _NUMBER.fullmatch(bare) is not None:
        return bare.lower()
    if (now := _NOW.fullmatch(bare)) is not None:
        return CurrentTime(places=int(now.group(1)) if now.group(1) else None)
    if _TODAY.fullmatch(bare) is not None:
        return CurrentTime(day=True)
    if _UTC_NOW.fullmatch(bare) is not None:
        return CurrentTime(utc=True)
    return DatabaseComputed(sql)
