"""``INSERT ... OVERRIDING SYSTEM VALUE SELECT ...`` for the merges of a load.

A load gives every column's value, keys included, and ``COPY`` writes them even into a
column PostgreSQL generates ``ALWAYS`` (``Identity(always=True)``); an ``INSERT`` must
say so, or PostgreSQL refuses the value. SQLAlchemy's ``insert().from_select()`` has no
clause for it, so the select it inserts renders the words before itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Select, Table
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

__all__ = ["OverridingSelect", "generated_always"]


class OverridingSelect(Select[Any]):
    """A ``SELECT`` whose rows an ``INSERT`` writes as given into generated columns."""

    inherit_cache = True


@compiles(OverridingSelect, "postgresql")
def _overriding(element: OverridingSelect, compiler: SQLCompiler, **kw: Any) -> str:
    select_sql: Callable[..., str] = compiler.visit_select  # SQLAlchemy leaves it untyped
    return f"OVERRIDING SYSTEM VALUE {select_sql(element, **kw)}"


def generated_always(table: Table, columns: Iterable[str]) -> bool:
    """Whether any of ``columns`` of ``table`` is generated ``ALWAYS`` by PostgreSQL."""
    return any(
        (identity := table.c[name].identity) is not None and bool(identity.always)
        for name in columns
    )
