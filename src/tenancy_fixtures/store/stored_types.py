"""Whether a column's declared type and the type read back from the database are one.

The database keeps some declared types under another name: PostgreSQL makes
``FLOAT(24)`` a ``real`` and ``NCHAR(3)`` a ``character(3)``; SQLite keeps the declared
text, which reflection reads back by its affinity (``DOUBLE PRECISION`` as ``REAL``,
``CLOB`` as ``TEXT``). Alembic's type comparison reports those as changed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import CompileError

from tenancy_fixtures.store.table_shapes import REAL_PRECISION

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect
    from sqlalchemy.types import TypeEngine

__all__ = ["same_stored_type"]

_FLOAT = re.compile(r"FLOAT(?:\((\d+)\))?")
#: PostgreSQL's names for what it makes of a declared type.
_POSTGRESQL_NAMES = ((re.compile(r"^NCHAR\b"), "CHAR"), (re.compile(r"^NVARCHAR\b"), "VARCHAR"))


def same_stored_type(dialect: Dialect, declared: TypeEngine[Any], found: TypeEngine[Any]) -> bool:
    """Whether the database stores a column declared ``declared`` as the type it was
    read back as, ``found`` (``False`` also when either cannot be rendered)."""
    try:
        written = declared.compile(dialect=dialect)
        read = found.compile(dialect=dialect)
    except CompileError:
        return False
    stored = _STORED.get(dialect.name)
    if stored is None:
        return False
    return stored(dialect, written) == stored(dialect, read)


def _postgresql(dialect: Dialect, text: str) -> str:
    del dialect
    if (plain := _FLOAT.fullmatch(text)) is not None:
        bits = plain.group(1)
        return "REAL" if bits and int(bits) <= REAL_PRECISION else "DOUBLE PRECISION"
    for pattern, name in _POSTGRESQL_NAMES:
        text = pattern.sub(name, text)
    return text


def _sqlite(dialect: Dialect, text: str) -> str:
    """What SQLite's reflection reads back of a column declared ``text``."""
    resolve: Callable[[str], TypeEngine[Any]] = dialect._resolve_type_affinity  # type: ignore[attr-defined]
    return str(resolve(text).compile(dialect=dialect))


_STORED: dict[str, Callable[[Dialect, str], str]] = {
    "postgresql": _postgresql,
    "sqlite": _sqlite,
}
