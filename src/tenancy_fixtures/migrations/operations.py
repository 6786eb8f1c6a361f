"""Running revision code on one tenant's connection.

Revision files are plain Alembic: ``from alembic import op`` and operations that name
no schema. Two things make that safe for many tenants in one process:

* Alembic's ``op`` is one module-wide proxy. Here it is routed through a context
  variable, so tenants migrated concurrently (each an asyncio task) each reach their
  own :class:`~alembic.operations.Operations`, never another tenant's.
* Every statement is put in the tenant's schema by the connection's
  ``schema_translate_map``: SQLAlchemy's own constructs (``create_table``,
  ``create_index``, statements on ``sa.Table`` objects) honour it; Alembic's ``ALTER``
  constructs do not, so they are given the map's placeholder for a schema just before
  they execute.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.sql.elements import quoted_name

from tenancy_fixtures.migrations.scripts import Step
from tenancy_fixtures.store.base import TENANT_SCHEMA

if TYPE_CHECKING:
    from alembic.operations import Operations
    from sqlalchemy.engine import Connection

__all__ = ["captured_sql", "run_steps"]

#: The placeholders ``schema_translate_map`` replaces with the tenant's schema on a
#: migrating connection (see TenantStore.migrating), by the schema an operation names.
_PLACEHOLDERS = {
    None: quoted_name("__[SCHEMA__none]", quote=False),
    TENANT_SCHEMA: quoted_name(f"__[SCHEMA_{TENANT_SCHEMA}]", quote=False),
}

_current: ContextVar[Operations | None] = ContextVar("tenancy_migration_operations", default=None)


class _RoutedOperations:
    """Stands in for Alembic's module-wide ``op`` proxy: each call goes to the
    Operations of the tenant migration running in the caller's context."""

    def __getattr__(self, name: str) -> Any:
        operations = _current.get()
        if operations is None:
            raise RuntimeError(
                f"alembic.op.{name} called outside a tenant migration (tenancy-fixtures "
                "runs revision files itself; use `tenancy-fixtures migrate`)"
            )
        return getattr(operations, name)


_ROUTER = _RoutedOperations()


def _route_alembic_op() -> None:
    import alembic.op

    # alembic.op's functions call the module global ``_proxy`` on every call.
    alembic.op._proxy = _ROUTER  # type: ignore[attr-defined]


def _qualify_alter(
    conn: Connection, clauseelement: Any, multiparams: Any, params: Any, options: Any
) -> tuple[Any, Any, Any]:
    from alembic.ddl.base import AlterTable

    del options
    translate = conn.get_execution_options().get("schema_translate_map") or {}
    if (
        isinstance(clauseelement, AlterTable)
        and clauseelement.schema in _PLACEHOLDERS
        and clauseelement.schema in translate
    ):
        placeholder = _PLACEHOLDERS[clauseelement.schema]
        clauseelement = copy.copy(clauseelement)
        clauseelement.schema = placeholder
    return clauseelement, multiparams, params


@contextmanager
def _operations(conn: Connection) -> Iterator[Operations]:
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    _route_alembic_op()
    context = MigrationContext.configure(connection=conn)
    operations = Operations(context)
    event.listen(conn, "before_execute", _qualify_alter, retval=True)
    token = _current.set(operations)
    try:
        yield operations
    finally:
        _current.reset(token)
        event.remove(conn, "before_execute", _qualify_alter)


def run_steps(conn: Connection, steps: Sequence[Step]) -> None:
    """Run each step's ``upgrade()`` or ``downgrade()`` on ``conn`` (a migrating tenant
    connection, inside its transaction), in order."""
    with _operations(conn):
        for step in steps:
            getattr(step.module, step.direction)()


def captured_sql(conn: Connection, steps: Sequence[Step]) -> list[str]:
    """The SQL ``steps`` run on ``conn``, as executed (schema names filled in); the
    caller rolls the transaction back."""
    statements: list[str] = []

    def capture(*args: Any) -> None:
        statement, parameters = args[2], args[3]
        if not _is_reflection(statement):
            statements.append(_render(statement, parameters))

    event.listen(conn, "before_cursor_execute", capture)
    try:
        run_steps(conn, steps)
    finally:
        event.remove(conn, "before_cursor_execute", capture)
    return statements


def _is_reflection(statement: str) -> bool:
    """Catalogue reads (Alembic's batch mode reflects the table it rebuilds)."""
    lowered = statement.lstrip().lower()
    return lowered.startswith("pragma") or "sqlite_master" in lowered or "pg_catalog" in lowered


def _render(statement: str, parameters: Any) -> str:
    text = "\n".join(line.rstrip() for line in statement.strip().splitlines())
    if parameters:
        text += f"\n-- parameters: {parameters!r}"
    return text + ";"
