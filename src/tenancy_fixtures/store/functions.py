"""SQL functions whose SQL differs per backend, compiled for each by the store.

A domain writes ``utc_date(events.c.played_at)`` in its SQLAlchemy Core statements;
which SQL that becomes is the store's business, like every other dialect detail.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Date, String, and_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

__all__ = ["bytewise", "starts_with", "utc_date"]

_LAST = chr(0x10FFFF)


class utc_date(FunctionElement[date]):
    """The UTC calendar date of a timezone-aware timestamp column, on every backend.

    PostgreSQL stores ``timestamptz``; SQLite stores SQLAlchemy's UTC text
    (``2026-01-01 12:00:00.000000``), which ``date()`` reads (and an explicit offset,
    if some other writer left one, is applied).
    """

    type = Date()
    inherit_cache = True
    name = "utc_date"


@compiles(utc_date, "postgresql")
def _utc_date_postgresql(element: utc_date, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(({compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC') AS DATE)"


@compiles(utc_date, "sqlite")
def _utc_date_sqlite(element: utc_date, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(utc_date)
def _utc_date_default(element: utc_date, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS DATE)"


class bytewise(FunctionElement[str]):
    """A text column compared byte for byte, for ``GROUP BY`` and ``DISTINCT``: the same
    groups as under any deterministic collation, without its comparison rules.

    PostgreSQL sorts to group, and a locale's comparisons cost most of a big
    aggregate's sort (``COLLATE "C"``); SQLite compares bytes already.
    """

    type = String()
    inherit_cache = True
    name = "bytewise"


@compiles(bytewise, "postgresql")
def _bytewise_postgresql(element: bytewise, compiler: SQLCompiler, **kw: Any) -> str:
    return f'({compiler.process(element.clauses, **kw)} COLLATE "C")'


@compiles(bytewise)
def _bytewise_default(element: bytewise, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


def starts_with(column: ColumnElement[str], prefix: str) -> ColumnElement[bool]:
    """Whether a text column's value starts with ``prefix``, letter case included, on
    every backend: a range in code point order (:class:`bytewise`), which an index in
    that order serves. ``LIKE`` ignores case on SQLite and heeds it on PostgreSQL."""
    key = bytewise(column)
    stem = prefix.rstrip(_LAST)
    if not stem:  # only the last code point: every value at or past the prefix
        return key >= prefix
    after = ord(stem[-1]) + 1
    after = 0xE000 if 0xD800 <= after <= 0xDFFF else after  # no surrogates in text
    return and_(key >= prefix, key < stem[:-1] + chr(after))
