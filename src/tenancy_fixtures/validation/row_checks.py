"""The statements of the row checks (scans, orphans, duplicates), built once per schema.

Building them is SQLAlchemy expression work that costs more than running them on a
small tenant, and every tenant of one schema asks the same questions: the statements
are kept per (tables present, dialect), each check answered in few statements
(:mod:`tenancy_fixtures.store.single_rows`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ColumnElement,
    Select,
    Table,
    UniqueConstraint,
    and_,
    case,
    exists,
    func,
    not_,
    select,
    type_coerce,
)
from sqlalchemy.sql.expression import Grouping

from tenancy_fixtures.loading.rules import check_constraints
from tenancy_fixtures.store.base import created_checks, partial_index_where
from tenancy_fixtures.store.single_rows import SingleRowQueries

__all__ = ["ForeignKeyCheck", "RowChecks", "ScanCheck", "UniqueKeyCheck", "row_checks"]


@dataclass(frozen=True)
class ScanCheck:
    """One pass over a table: its rows, NULLs per NOT NULL column, rows breaking each CHECK."""

    table: Table
    not_null: tuple[Column[Any], ...]
    checks: tuple[CheckConstraint, ...]


@dataclass(frozen=True)
class ForeignKeyCheck:
    """Rows of ``table`` whose ``columns`` reference a missing ``parent`` row."""

    table: Table
    parent: str
    columns: tuple[Column[Any], ...]


@dataclass(frozen=True)
class UniqueKeyCheck:
    """Values of a primary key, unique constraint or unique index held by two rows."""

    table: Table
    label: str
    columns: tuple[Column[Any], ...]


@dataclass(frozen=True)
class RowChecks:
    """What each row check asks, and the statements that ask it."""

    scans: tuple[ScanCheck, ...]
    scan_queries: SingleRowQueries
    foreign_keys: tuple[ForeignKeyCheck, ...]
    orphan_queries: SingleRowQueries
    unique_keys: tuple[UniqueKeyCheck, ...]
    duplicate_queries: SingleRowQueries


def row_checks(tables: Sequence[Table], existing: set[str], dialect: str) -> RowChecks:
    """The row checks of ``tables`` (foreign keys only to ``existing`` tables) on ``dialect``."""
    present = frozenset(existing & {t.name for t in _parents(tables)})
    return _built(tuple(tables), present, dialect)


def _parents(tables: Sequence[Table]) -> set[Table]:
    return {fk.referred_table for table in tables for fk in table.foreign_key_constraints}


@lru_cache(maxsize=32)
def _built(tables: tuple[Table, ...], present: frozenset[str], dialect: str) -> RowChecks:
    scans = [_scan_check(table, dialect) for table in tables]
    foreign_keys: list[tuple[ForeignKeyCheck, Select[Any]]] = [
        found for table in tables for found in _foreign_keys(table, present)
    ]
    unique_keys = [found for table in tables for found in _unique_keys(table, dialect)]
    return RowChecks(
        scans=tuple(scan for scan, _ in scans),
        scan_queries=SingleRowQueries([query for _, query in scans]),
        foreign_keys=tuple(key for key, _ in foreign_keys),
        orphan_queries=SingleRowQueries([query for _, query in foreign_keys]),
        unique_keys=tuple(key for key, _ in unique_keys),
        duplicate_queries=SingleRowQueries([query for _, query in unique_keys]),
    )


def _scan_check(table: Table, dialect: str) -> tuple[ScanCheck, Select[Any]]:
    not_null = tuple(c for c in table.columns if not c.nullable)
    created = created_checks(check_constraints(table), dialect)
    checks = tuple(sorted(created, key=lambda c: str(c.name)))
    counts: list[ColumnElement[Any]] = [func.count()]
    counts += [func.sum(case((column.is_(None), 1), else_=0)) for column in not_null]
    counts += [
        # NOT (check) is true only where the check is false, not where it is unknown.
        func.sum(case((not_(type_coerce(Grouping(c.sqltext), Boolean)), 1), else_=0))
        for c in checks
    ]
    return ScanCheck(table, not_null, checks), select(*counts).select_from(table)


def _foreign_keys(
    table: Table, present: frozenset[str]
) -> list[tuple[ForeignKeyCheck, Select[Any]]]:
    found = []
    for constraint in sorted(table.foreign_key_constraints, key=lambda c: str(c.name)):
        parent = constraint.referred_table
        if parent.name not in present:
            continue
        # The parent under an alias of its own: a table referencing itself would
        # otherwise be correlated with the outer row and compare it with itself.
        referred_rows = parent.alias()
        pairs = [
            (element.parent, referred_rows.c[element.column.key]) for element in constraint.elements
        ]
        query = (
            select(func.count())
            .select_from(table)
            .where(
                *(child.is_not(None) for child, _ in pairs),
                ~exists().where(and_(*(child == referred for child, referred in pairs))),
            )
        )
        check = ForeignKeyCheck(table, parent.name, tuple(child for child, _ in pairs))
        found.append((check, query))
    return found


def _unique_keys(table: Table, dialect: str) -> list[tuple[UniqueKeyCheck, Select[Any]]]:
    """The table's primary key, unique constraints and unique indexes (with their WHERE)."""
    keys: list[tuple[str, list[Column[Any]], ColumnElement[bool] | None]] = []
    if len(table.primary_key.columns):
        keys.append((f"primary key {table.primary_key.name}", list(table.primary_key), None))
    for constraint in sorted(table.constraints, key=lambda c: str(c.name)):
        if isinstance(constraint, UniqueConstraint):
            keys.append((f"unique constraint {constraint.name}", list(constraint.columns), None))
    for index in sorted(table.indexes, key=lambda i: str(i.name)):
        if index.unique:
            where = partial_index_where(index, dialect)
            keys.append((f"unique index {index.name}", list(index.columns), where))
    return [
        (UniqueKeyCheck(table, label, tuple(columns)), _duplicates_query(table, columns, where))
        for label, columns, where in keys
    ]


def _duplicates_query(
    table: Table, columns: list[Column[Any]], where: ColumnElement[bool] | None
) -> Select[Any]:
    """The values held by more than one row, and those rows (two counts)."""
    conditions: list[ColumnElement[bool]] = [c.is_not(None) for c in columns]
    if where is not None:
        conditions.append(where)
    groups = (
        select(func.count().label("n"))
        .select_from(table)
        .where(*conditions)
        .group_by(*columns)
        .having(func.count() > 1)
        .subquery()
    )
    return select(func.count(), func.coalesce(func.sum(groups.c.n), 0)).select_from(groups)
