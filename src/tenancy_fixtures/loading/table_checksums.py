"""A table's content checksum: which of its columns the canonical encoding treats apart.

:class:`~tenancy_fixtures.loading.checksums.ContentChecksum` hashes rows and knows no
SQLAlchemy (parse workers hash rows without importing it); this module reads a table's
column types to set it up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import CHAR, JSON, NCHAR, Column, DateTime, Enum, Float, Numeric, Table
from sqlalchemy.types import TypeEngine

from tenancy_fixtures.loading.checksums import ContentChecksum

__all__ = [
    "blank_padded",
    "enum_members",
    "enum_stored_text",
    "table_checksum",
    "table_checksum_over",
]

# store.column_info.ENCRYPTED_INFO, spelled out: parse workers import this module (for
# the exact path) and must not pull in the store package.
_ENCRYPTED_INFO = "encrypted"


def blank_padded(kind: TypeEngine[Any]) -> bool:
    """Whether a column of type ``kind`` is ``CHAR``/``NCHAR`` on some backend (itself,
    or a variant for one: ``String(5).with_variant(CHAR(5), "postgresql")``)."""
    variants: Mapping[str, TypeEngine[Any]] = getattr(kind, "_variant_mapping", {})
    return any(isinstance(k, CHAR | NCHAR) for k in (kind, *variants.values()))


def enum_members(kind: TypeEngine[Any]) -> bool:
    """Whether a column of type ``kind`` reads back members of a Python enum (stored by
    their names)."""
    return isinstance(kind, Enum) and kind.enum_class is not None


def _hashed_as_float(kind: TypeEngine[Any]) -> bool:
    """Whether a number column's values are hashed as floats although a load gives
    decimals: ``Numeric(asdecimal=False)``."""
    return isinstance(kind, Numeric) and not isinstance(kind, Float) and not kind.asdecimal


def enum_stored_text(kind: TypeEngine[Any]) -> dict[Any, str]:
    """The text an ``Enum`` of a Python enum stores for each member: its name, or what
    the type's ``values_callable`` gives."""
    assert isinstance(kind, Enum)
    assert kind.enum_class is not None
    members = list(kind.enum_class)
    if kind.values_callable is None:
        return {m: m.name for m in members}
    return dict(zip(members, kind.values_callable(kind.enum_class), strict=True))


def table_checksum(
    table: Table,
    columns: Sequence[Column[Any]] | None = None,
    *,
    picked: Sequence[int] | None = None,
) -> ContentChecksum:
    """A checksum of rows of ``table`` in its column order, or of rows holding only
    ``columns`` of it, in that order (``picked``: the positions of those columns in
    the rows it is given, where rows hold them all)."""
    chosen = list(table.columns if columns is None else columns)
    return ContentChecksum(
        [i for i, c in enumerate(chosen) if isinstance(c.type, JSON)],
        [i for i, c in enumerate(chosen) if isinstance(c.type, DateTime)],
        [i for i, c in enumerate(chosen) if c.info.get(_ENCRYPTED_INFO)],
        [i for i, c in enumerate(chosen) if blank_padded(c.type)],
        {i: enum_stored_text(c.type) for i, c in enumerate(chosen) if enum_members(c.type)},
        [i for i, c in enumerate(chosen) if _hashed_as_float(c.type)],
        columns=[c.name for c in chosen],
        picked=picked,
    )


def table_checksum_over(table: Table, names: Sequence[str] | None) -> ContentChecksum:
    """A checksum of whole rows of ``table`` that hashes only its columns ``names``, in
    that order (those the table's recorded checksums cover, so that this one adds up
    with them); all of them where ``names`` is ``None`` or names a column the table
    lacks."""
    present = {column.name: column for column in table.columns}
    if names is None or tuple(names) == tuple(present) or not set(names) <= present.keys():
        return table_checksum(table)
    order = list(present)
    return table_checksum(
        table,
        [present[name] for name in names],
        picked=[order.index(name) for name in names],
    )
