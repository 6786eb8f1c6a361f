"""CHECK constraints reflected from PostgreSQL as arguments ``CheckConstraint`` takes.

SQLAlchemy's PostgreSQL dialect reflects a ``NOT VALID`` (or ``NO INHERIT``) CHECK
constraint with a ``dialect_options`` entry, and ``Inspector.reflect_table`` passes each
reflected entry to ``CheckConstraint`` as keyword arguments: ``dialect_options=`` names
no dialect, so every reflection of such a table (the drift check's Alembic comparison)
warned "Can't validate argument 'dialect_options'". The inspector here gives those
options as the ``postgresql_``-prefixed arguments ``CheckConstraint`` accepts
(``postgresql_not_valid``); one it does not accept (``no_inherit``) is left out, as
the table rebuilt from the reflection could not hold it anyway.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CheckConstraint
from sqlalchemy.dialects.postgresql.base import PGDialect, PGInspector
from sqlalchemy.engine.interfaces import ReflectedCheckConstraint, TableKey

__all__ = ["CheckReflectingInspector"]

#: The PostgreSQL arguments ``CheckConstraint`` accepts, without their prefix.
_ACCEPTED = frozenset(
    name
    for construct, arguments in PGDialect.construct_arguments or ()
    if construct is CheckConstraint
    for name in arguments
)


def _buildable(reflected: ReflectedCheckConstraint) -> ReflectedCheckConstraint:
    """``reflected`` with its ``dialect_options`` as ``postgresql_`` arguments."""
    entry: dict[str, Any] = dict(reflected)
    options = entry.pop("dialect_options", None) or {}
    for name, value in options.items():
        bare = name.removeprefix("postgresql_")
        if bare in _ACCEPTED:
            entry[f"postgresql_{bare}"] = value
    return cast(ReflectedCheckConstraint, entry)


class CheckReflectingInspector(PGInspector):
    """A PostgreSQL inspector whose reflected CHECK constraints can be built again."""

    def get_check_constraints(self, *args: Any, **kw: Any) -> list[ReflectedCheckConstraint]:
        return [_buildable(c) for c in super().get_check_constraints(*args, **kw)]

    def get_multi_check_constraints(
        self, *args: Any, **kw: Any
    ) -> dict[TableKey, list[ReflectedCheckConstraint]]:
        found = super().get_multi_check_constraints(*args, **kw)
        return {key: [_buildable(c) for c in checks] for key, checks in found.items()}
