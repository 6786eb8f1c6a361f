"""A user's ``MetaData``, as users declare it, placed in the tenant placeholder schema.

Users declare tables without a schema (``MetaData()``); every statement of the engine
names :data:`TENANT_SCHEMA` and lets ``schema_translate_map`` replace it with the
tenant's own schema or file. :func:`place_in_tenant_schema` bridges the two by copying
the tables into the placeholder schema, leaving the user's ``MetaData`` untouched.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    Constraint,
    Enum,
    ForeignKeyConstraint,
    Index,
    MetaData,
    Sequence,
    Table,
)
from sqlalchemy.sql.schema import ColumnCollectionConstraint
from sqlalchemy.util import set_creation_order

from tenancy_fixtures.errors import SettingsError
from tenancy_fixtures.store.base import TENANT_SCHEMA

__all__ = [
    "column_sequences",
    "copy_table",
    "enum_names",
    "named_enums",
    "place_in_tenant_schema",
]


def place_in_tenant_schema(metadata: MetaData) -> MetaData:
    """``metadata`` with every table in schema :data:`TENANT_SCHEMA`.

    A ``MetaData`` already there is returned as it is; otherwise a copy is made with
    the same naming convention, constraints, indexes, ``info`` and foreign keys (between
    its tables, self-references included). A table declared in any other explicit
    schema would be shared by all tenants: it is refused with :class:`SettingsError`.
    """
    tables = list(metadata.tables.values())
    foreign = [t.fullname for t in tables if t.schema not in (None, TENANT_SCHEMA)]
    if foreign:
        raise SettingsError(
            "tenant tables must not be declared in a schema of their own (it would be "
            "shared by every tenant): declare them without one, e.g. MetaData(), or in "
            f"the placeholder schema {TENANT_SCHEMA!r}; these are not: {', '.join(foreign)}"
        )
    _refuse_long_names(tables)
    if all(t.schema == TENANT_SCHEMA for t in tables):
        return metadata
    placed = MetaData(
        schema=TENANT_SCHEMA, naming_convention=metadata.naming_convention, info=dict(metadata.info)
    )
    options: dict[str, Any] = {"schema": TENANT_SCHEMA, "referred_schema_fn": _referred_schema}
    copies = [(table, copy_table(table, placed, **options)) for table in tables]
    # Once every table is copied: a foreign key to a table declared later resolves then.
    for table, copy in copies:
        _keep_declared_order(table, copy)
    return placed


#: PostgreSQL's identifier limit, in bytes (NAMEDATALEN - 1): it cuts longer names short.
_MAX_NAME_BYTES = 63


def _refuse_long_names(tables: list[Table]) -> None:
    """A :class:`SettingsError` naming every table or column name PostgreSQL would cut
    short, silently: the tenant would hold a table or column the schema does not name."""
    names = [(t.name, t.name) for t in tables]
    names += [(f"{t.name}.{c.name}", c.name) for t in tables for c in t.columns]
    long = [label for label, name in names if len(name.encode()) > _MAX_NAME_BYTES]
    if long:
        raise SettingsError(
            f"names longer than {_MAX_NAME_BYTES} bytes (PostgreSQL's limit, which cuts "
            f"them short) must be shortened: {', '.join(long)}"
        )


def copy_table(table: Table, metadata: MetaData, **options: Any) -> Table:
    """``table.to_metadata(metadata, **options)``, with the indexes and unique
    constraints its columns declare (``index=True``, ``unique=True``) named as in
    ``table``.

    ``to_metadata`` makes those anew, named by the naming convention in the copy's
    schema: SQLAlchemy's ``ix_%(column_0_label)s`` would name an index
    ``ix_tenant_owners_email`` in the placeholder schema and after the tenant's own
    schema where drift is checked, never ``ix_owners_email`` as the user's schema (and
    their migrations) do.
    """
    copy = table.to_metadata(metadata, **options)
    _keep_column_index_names(table, copy)
    for column in copy.columns:
        # A column's sequence lives in the table's schema, as ``to_metadata`` leaves a
        # sequence without one where the search path finds it.
        if isinstance(sequence := column.default, Sequence) and sequence.schema is None:
            sequence.schema = copy.schema
    return copy


def _keep_column_index_names(table: Table, copy: Table) -> None:
    declared: list[Index | Constraint] = [*table.indexes, *table.constraints]
    names = {_flagged(item): item.name for item in declared if _flagged(item) is not None}
    copied: list[Index | Constraint] = [*copy.indexes, *copy.constraints]
    for item in copied:
        name = names.get(_flagged(item))
        if name is not None:
            item.name = name


def _flagged(item: Index | Constraint) -> tuple[str, tuple[str, ...]] | None:
    """What tells an index or unique constraint a column declares from the others (its
    kind and columns); ``None`` for one declared on its own."""
    if not getattr(item, "_column_flag", False):
        return None
    columns = getattr(item, "columns", ())
    return type(item).__name__, tuple(column.name for column in columns)


def _keep_declared_order(table: Table, copy: Table) -> None:
    """Give ``copy``'s constraints the order of ``table``'s.

    ``to_metadata`` copies them in the order of a set, which changes from process to
    process, and CREATE TABLE lists them in the order they were made: without this,
    one schema would render, and checksum, differently each run (a new SQLite template
    file, every spare schema dropped as stale).
    """
    declared = sorted(table.constraints, key=lambda c: getattr(c, "_creation_order", 0))
    rank = {_signature(c): i for i, c in enumerate(declared)}
    for constraint in sorted(copy.constraints, key=lambda c: rank.get(_signature(c), len(rank))):
        set_creation_order(constraint)


def _signature(constraint: Constraint) -> tuple[Any, ...]:
    """What tells a constraint from the others of its table, in a copy as in the original."""
    columns = (
        tuple(c.name for c in constraint.columns)
        if isinstance(constraint, ColumnCollectionConstraint)
        else ()
    )
    referred = (
        tuple((e.column.table.name, e.column.name) for e in constraint.elements)
        if isinstance(constraint, ForeignKeyConstraint)
        else ()
    )
    sql = str(constraint.sqltext) if isinstance(constraint, CheckConstraint) else ""
    return (type(constraint).__name__, str(constraint.name or ""), columns, referred, sql)


def _referred_schema(
    table: Table, to_schema: str | None, constraint: ForeignKeyConstraint, referred: str | None
) -> str | None:
    """A reference to a table without a schema follows it into the placeholder schema."""
    del table, constraint
    return to_schema if referred in (None, TENANT_SCHEMA) else referred


def named_enums(metadata: MetaData) -> list[Enum]:
    """The PostgreSQL enum types the tables' columns use, once each by name: each
    tenant schema holds its own, as its tables refer to them."""
    found: dict[str, Enum] = {}
    for table in metadata.sorted_tables:
        for column in table.columns:
            kind = column.type
            if isinstance(kind, Enum) and kind.native_enum and kind.name:
                found.setdefault(kind.name, kind)
    return list(found.values())


def column_sequences(
    metadata: MetaData,
) -> dict[str, tuple[Sequence, list[tuple[Table, Column[Any]]]]]:
    """The sequences the tenant tables' columns draw from (``Sequence`` defaults in the
    tenant schema; one elsewhere is the database's, shared), each with its columns."""
    found: dict[str, tuple[Sequence, list[tuple[Table, Column[Any]]]]] = {}
    for table in metadata.sorted_tables:
        for column in table.columns:
            sequence = column.default
            if isinstance(sequence, Sequence) and sequence.schema == TENANT_SCHEMA:
                found.setdefault(sequence.name, (sequence, []))[1].append((table, column))
    return found


def enum_names(metadata: MetaData) -> list[str]:
    """The names of :func:`named_enums`."""
    return [str(enum.name) for enum in named_enums(metadata)]
