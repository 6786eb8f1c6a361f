"""Rules derived from the tenant schema that every record must pass before it is written.

Two kinds, both enforced by :class:`~tenancy_fixtures.loading.records.RowBuilder` (so
the load path and the validators share one implementation):

- **CHECK constraints**, compiled from their SQL text into Python conditions. Only
  simple forms are compiled — a column compared with a number (``c >= 0``, ``c < 1``,
  ``c = 2``), ``c IN (...)`` / ``c BETWEEN a AND b`` with literals, joined by ``AND``;
  anything else stays the database's job and is listed by :func:`uncompiled_checks`.
  As in SQL, a NULL value passes.
- **Value formats**, named by a column's ``info={"format": ...}``
  (:data:`FORMAT_INFO`); a foreign-key column takes the format of the column it
  references. The engine defines the formats any domain may use (``email``,
  ``country``); a domain adds its own with :func:`register_value_format` (the
  built-in one adds Spotify ids and URIs, ISRCs and release dates).

Every rule has a name that errors carry as ``rule``: ``check:<constraint>`` and
``format:<format>``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
)
from sqlalchemy.exc import NoReferenceError

from tenancy_fixtures.loading.value_formats import (
    COUNTRY_CODES,
    FORMATS,
    ValueFormat,
    is_email,
    register_value_format,
)

__all__ = [
    "COUNTRY_CODES",
    "DEFAULT_MAX_TEXT_LENGTH",
    "FORMATS",
    "FORMAT_INFO",
    "ColumnCheck",
    "ValueFormat",
    "check_constraints",
    "column_format",
    "compile_check",
    "is_email",
    "register_value_format",
    "table_checks",
    "table_formats",
    "uncompiled_checks",
]

#: Column ``info`` key naming the value format the validators check.
FORMAT_INFO = "format"

#: The longest value of an unbounded Text column, in characters (1 MiB).
DEFAULT_MAX_TEXT_LENGTH = 1 << 20


def column_format(column: Column[Any]) -> ValueFormat | None:
    """The format ``column`` must follow: its own, or that of the column it references.

    Raises :class:`TypeError` for a format name no one defined, or a format on a
    column that does not hold text.
    """
    name = _format_name(column, set())
    if name is None:
        return None
    found = FORMATS.get(name)
    if found is None:
        raise TypeError(f"unknown format {name!r} (known: {', '.join(sorted(FORMATS))})")
    if not isinstance(column.type, String):
        raise TypeError(f"format {name!r} needs a text column, not {column.type!r}")
    return found


def table_formats(table: Table) -> list[ValueFormat]:
    """The formats the columns of ``table`` follow, own or inherited through keys."""
    found: dict[str, ValueFormat] = {}
    for column in table.columns:
        form = column_format(column)
        if form is not None:
            found[form.name] = form
    return list(found.values())


def _format_name(column: Column[Any], seen: set[Column[Any]]) -> str | None:
    own = column.info.get(FORMAT_INFO)
    if own is not None:
        return str(own)
    seen.add(column)
    for key in column.foreign_keys:
        try:
            parent = key.column
        except NoReferenceError:  # a reference out of this MetaData: no format to inherit
            continue
        if parent not in seen:
            inherited = _format_name(parent, seen)
            if inherited is not None:
                return inherited
    return None


# --- CHECK constraints ---------------------------------------------------------------

#: A condition on one value: ``(operator, operand)``; ``in`` takes a frozenset.
Condition = tuple[str, Any]

_COMPARISONS = {">=": ">=", ">": ">", "<=": "<=", "<": "<", "=": "==", "<>": "!=", "!=": "!="}
_MIRRORED = {">=": "<=", ">": "<", "<=": ">=", "<": ">", "=": "=", "<>": "<>", "!=": "!="}
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>-?[0-9]+(?:\.[0-9]+)?)
      | (?P<string>'(?:[^']|'')*')
      | (?P<quoted>"(?:[^"]|"")+")
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op>>=|<=|<>|!=|=|<|>)
      | (?P<punct>[(),])
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class ColumnCheck:
    """The part of one CHECK constraint that concerns one column, compiled."""

    rule: str
    column: str
    sql: str
    conditions: tuple[Condition, ...]

    def expression(self, constant: Callable[[Any], str]) -> str:
        """A Python expression over ``v`` true when the value passes.

        ``constant(value)`` returns the name under which a set operand is reachable.
        """
        parts = []
        for op, operand in self.conditions:
            if op == "in":
                parts.append(f"v in {constant(operand)}")
            else:
                parts.append(f"v {op} {operand!r}")
        return " and ".join(parts)

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` passes (the compiled check, for one value; NULL passes)."""
        if value is None:
            return True
        names: dict[str, Any] = {}

        def constant(operand: Any) -> str:
            names[f"k{len(names)}"] = operand
            return f"k{len(names) - 1}"

        return bool(eval(self.expression(constant), names, {"v": value}))  # noqa: S307


class _Unsupported(Exception):
    """The CHECK's SQL is not one of the forms compiled here."""


def _tokens(sql: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    position = 0
    text = sql.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise _Unsupported(text[position:])
        kind = match.lastgroup
        assert kind is not None
        found.append((kind, match.group(kind)))
        position = match.end()
    return found


class _Parser:
    """Recursive descent over ``term (AND term)*``; each term constrains one column."""

    def __init__(self, sql: str, table: Table) -> None:
        self.tokens = _tokens(sql)
        self.at = 0
        self.table = table

    def parse(self) -> list[tuple[str, Condition]]:
        found = self.conjunction()
        if self.at != len(self.tokens):
            raise _Unsupported("trailing text")
        return found

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise _Unsupported("unexpected end")
        self.at += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == "name" and token[1].upper() == word:
            self.at += 1
            return True
        return False

    def expect(self, value: str) -> None:
        if self.take()[1] != value:
            raise _Unsupported(f"expected {value}")

    def conjunction(self) -> list[tuple[str, Condition]]:
        found = self.term()
        while self.keyword("AND"):
            found += self.term()
        return found

    def term(self) -> list[tuple[str, Condition]]:
        token = self.peek()
        if token == ("punct", "("):
            self.take()
            inner = self.conjunction()
            self.expect(")")
            return inner
        if token is not None and token[0] in ("number", "string"):
            value = self.literal(self.take())
            op = self.take()
            if op[0] != "op":
                raise _Unsupported("expected a comparison")
            column = self.column()
            return [(column.name, self.comparison(column, _MIRRORED[op[1]], value))]
        column = self.column()
        if self.keyword("IN"):
            return [(column.name, ("in", self.in_list(column)))]
        if self.keyword("BETWEEN"):
            low = self.number(column)
            if not self.keyword("AND"):
                raise _Unsupported("BETWEEN without AND")
            high = self.number(column)
            return [(column.name, (">=", low)), (column.name, ("<=", high))]
        op = self.take()
        if op[0] != "op":
            raise _Unsupported("expected a comparison")
        value = self.literal(self.take())
        return [(column.name, self.comparison(column, op[1], value))]

    def column(self) -> Column[Any]:
        kind, text = self.take()
        if kind == "quoted":
            name = text[1:-1].replace('""', '"')
        elif kind == "name" and text.upper() not in ("AND", "OR", "NOT", "IN", "NULL", "IS"):
            name = text
        else:
            raise _Unsupported("expected a column")
        # By name, as the SQL names it (a column's ``key`` may be another column's name).
        found = next((c for c in self.table.columns if c.name == name), None)
        if found is None:
            raise _Unsupported(f"no column {name}")
        return found

    @staticmethod
    def literal(token: tuple[str, str]) -> int | float | str:
        kind, text = token
        if kind == "number":
            number = float(text) if "." in text else int(text)
            if isinstance(number, float) and not math.isfinite(number):
                raise _Unsupported("a number beyond float range")
            return number
        if kind == "string":
            return text[1:-1].replace("''", "'")
        raise _Unsupported("expected a literal")

    def number(self, column: Column[Any]) -> int | float:
        value = self.literal(self.take())
        if isinstance(value, str) or not _numeric(column):
            raise _Unsupported("BETWEEN needs numbers on a numeric column")
        return value

    def comparison(self, column: Column[Any], op: str, value: int | float | str) -> Condition:
        if isinstance(value, str):
            # Ordering text depends on the database's collation; only equality is safe.
            if op not in ("=", "<>", "!=") or not isinstance(column.type, String):
                raise _Unsupported("text compared by order")
        elif not _numeric(column):
            raise _Unsupported("number compared with a non-numeric column")
        return (_COMPARISONS[op], value)

    def in_list(self, column: Column[Any]) -> frozenset[Any]:
        self.expect("(")
        values = [self.literal(self.take())]
        while self.peek() == ("punct", ","):
            self.take()
            values.append(self.literal(self.take()))
        self.expect(")")
        texts = all(isinstance(v, str) for v in values)
        numbers = not any(isinstance(v, str) for v in values)
        if not ((texts and isinstance(column.type, String)) or (numbers and _numeric(column))):
            raise _Unsupported("IN list of the wrong kind for its column")
        return frozenset(values)


def _numeric(column: Column[Any]) -> bool:
    return isinstance(column.type, Integer | Float | Numeric)


def _rule_name(constraint: CheckConstraint, table: Table, fallback: str) -> str:
    name = str(constraint.name) if constraint.name else ""
    prefix = f"ck_{table.name}_"
    if name.startswith(prefix):
        name = name[len(prefix) :]
    return f"check:{name or fallback}"


def compile_check(constraint: CheckConstraint, table: Table) -> list[ColumnCheck] | None:
    """``constraint`` as one :class:`ColumnCheck` per column it names, or ``None`` when
    its SQL is not a form compiled here (the database still enforces it).

    Splitting ``a ... AND b ...`` per column keeps SQL's meaning: the CHECK fails when
    any comparison is false, and a comparison with NULL is never false.
    """
    sql = str(constraint.sqltext)
    try:
        terms = _Parser(sql, table).parse()
    except _Unsupported:
        return None
    by_column: dict[str, list[Condition]] = {}
    for column, condition in terms:
        by_column.setdefault(column, []).append(condition)
    rule = _rule_name(constraint, table, fallback=next(iter(by_column)))
    return [
        ColumnCheck(rule, column, sql, tuple(conditions))
        for column, conditions in by_column.items()
    ]


def check_constraints(table: Table) -> list[CheckConstraint]:
    """``table``'s CHECK constraints: declared on the table, and on a column
    (``Column("n", Integer, CheckConstraint("n > 0"))``, which SQLAlchemy keeps with the
    column, not in ``table.constraints``)."""
    found = [c for c in table.constraints if isinstance(c, CheckConstraint)]
    found += [
        c for column in table.columns for c in column.constraints if isinstance(c, CheckConstraint)
    ]
    return sorted(set(found), key=lambda c: str(c.name or c.sqltext))


def table_checks(table: Table) -> list[ColumnCheck]:
    """Every compiled CHECK of ``table``, per column."""
    checks: list[ColumnCheck] = []
    for constraint in check_constraints(table):
        compiled = compile_check(constraint, table)
        if compiled is not None:
            checks += compiled
    return checks


def uncompiled_checks(tables: MetaData | Iterable[Table]) -> list[str]:
    """CHECK constraints left to the database: ``"table.constraint: SQL"`` each."""
    found = tables.sorted_tables if isinstance(tables, MetaData) else list(tables)
    return [
        f"{table.name}.{constraint.name}: {constraint.sqltext}"
        for table in found
        for constraint in check_constraints(table)
        if compile_check(constraint, table) is None
    ]
