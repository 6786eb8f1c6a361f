"""Running revision code on one tenant's connection.

Revision files are plain Alembic: ``from alembic import op`` and operations that name
no schema. Two things make that safe for many tenants in one process:

* Alembic's ``op`` is one module-wide proxy. Here it is routed through a context
  variable, so tenants migrated concurrently (each an asyncio task) each reach their
  own :class:`~alembic.operations.Operations`, never another tenant's.
* Every statement is put in the tenant's schema by the connection's
  ``schema_translate_map``: SQLAlchemy's own constructs (``create_table``,
  ``create_index``, statements on ``sa.Table`` objects) honour it; Alembic's ``ALTER``
  constructs and lightweight ``sa.table()`` objects do not, so they are given the map's
  placeholder for a schema just before they execute.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NoReturn

from sqlalchemy import event, literal
from sqlalchemy.exc import CompileError
from sqlalchemy.sql import visitors
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement, quoted_name
from sqlalchemy.sql.selectable import TableClause
from sqlalchemy.sql.sqltypes import NullType

from tenancy_fixtures.migrations.interrupts import interruptible
from tenancy_fixtures.migrations.scripts import Step
from tenancy_fixtures.store.base import TENANT_SCHEMA

if TYPE_CHECKING:
    from alembic.operations import Operations
    from sqlalchemy.engine import Connection, Dialect
    from sqlalchemy.engine.default import DefaultExecutionContext
    from sqlalchemy.types import TypeEngine

__all__ = ["captured_sql", "run_steps"]

#: The placeholders ``schema_translate_map`` replaces with the tenant's schema on a
#: migrating connection (see TenantStore.migrating), by the schema an operation names.
_PLACEHOLDERS = {
    None: quoted_name("__[SCHEMA__none]", quote=False),
    TENANT_SCHEMA: quoted_name(f"__[SCHEMA_{TENANT_SCHEMA}]", quote=False),
}

_current: ContextVar[Operations | None] = ContextVar("tenancy_migration_operations", default=None)
#: Set while ``op.execute`` runs its statement: one run for its effect, its result unread.
_for_effect: ContextVar[bool] = ContextVar("tenancy_migration_for_effect", default=False)


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


def _qualify_table_clauses(
    conn: Connection, clauseelement: Any, multiparams: Any, params: Any, options: Any
) -> None:
    """Lets ``sa.table()`` objects (as in Alembic's ``bulk_insert`` examples) take the
    schema map like ``sa.Table`` ones; SQLAlchemy leaves lightweight tables out of it."""
    del conn, multiparams, params, options
    if isinstance(clauseelement, ClauseElement):
        for element in visitors.iterate(clauseelement):
            if isinstance(element, TableClause) and not element._use_schema_map:
                element._use_schema_map = True


def _marking_for_effect(execute: Callable[..., None]) -> Callable[..., None]:
    """``execute`` (what ``op.execute`` calls) marking the statements it runs as run
    for their effect."""

    def marked(*args: Any, **kwargs: Any) -> None:
        token = _for_effect.set(True)
        try:
            execute(*args, **kwargs)
        finally:
            _for_effect.reset(token)

    return marked


def _no_autocommit() -> NoReturn:
    """Stands in for ``MigrationContext.autocommit_block``, which ends a transaction of
    Alembic's own: here it failed on an assertion, saying nothing."""
    raise NotImplementedError(
        "autocommit_block() is not available to tenant revisions: a tenant's steps, its "
        "ledger row and its audit record commit in one transaction, so that no tenant is "
        "left half-migrated; build the index without CONCURRENTLY, or run what cannot "
        "run in a transaction outside tenancy-fixtures"
    )


@contextmanager
def _operations(conn: Connection) -> Iterator[Operations]:
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    _route_alembic_op()
    context = MigrationContext.configure(connection=conn)
    context.impl.execute = _marking_for_effect(context.impl.execute)  # type: ignore[method-assign]
    context.autocommit_block = _no_autocommit  # type: ignore[method-assign]
    operations = Operations(context)
    event.listen(conn, "before_execute", _qualify_alter, retval=True)
    event.listen(conn, "before_execute", _qualify_table_clauses)
    token = _current.set(operations)
    try:
        yield operations
    finally:
        _current.reset(token)
        event.remove(conn, "before_execute", _qualify_table_clauses)
        event.remove(conn, "before_execute", _qualify_alter)


def run_steps(conn: Connection, steps: Sequence[Step]) -> None:
    """Run each step's ``upgrade()`` or ``downgrade()`` on ``conn`` (a migrating tenant
    connection, inside its transaction), in order; a Ctrl-C while one runs interrupts
    it there (see :mod:`.interrupts`)."""
    with _operations(conn), interruptible(run_steps.__code__):
        for step in steps:
            getattr(step.module, step.direction)()


def captured_sql(conn: Connection, steps: Sequence[Step], setup: Sequence[str] = ()) -> list[str]:
    """The SQL ``steps`` run on ``conn``, as executed (schema names filled in, values
    inlined as literals, each statement ending in ``;``), ready for ``psql`` or
    ``sqlite3``, after ``setup`` (the session settings they run under, already made);
    the caller rolls the transaction back. The migration's own reads are shown as
    comments (a file of writes does not repeat them), unless they change something: a
    statement given to ``op.execute`` (run for its effect, ``SELECT setval(...)``) or
    one calling a function that writes (``nextval``) is kept as it is."""
    statements = [_ended(statement) for statement in setup]
    last: list[DefaultExecutionContext] = []

    def capture(*args: Any) -> None:
        statement, parameters, context = args[2], args[3], args[4]
        if last and last[0] is context:
            return  # one executemany the driver sends in batches: rendered once
        last[:] = [context]
        for_effect = _for_effect.get() or _writes(statement)
        if for_effect or not _is_reflection(statement):
            statements.extend(_render(conn.dialect, statement, parameters, context, for_effect))

    event.listen(conn, "before_cursor_execute", capture)
    try:
        run_steps(conn, steps)
    finally:
        event.remove(conn, "before_cursor_execute", capture)
    return statements


#: Tables and views of the database's catalogue.
_CATALOGUES = ("sqlite_master", "sqlite_schema", "pg_catalog.", "information_schema.")

_READ_NOTE = (
    "-- read by the migration when this was generated, not repeated here; values in\n"
    "-- the statements below may come from what it returned then:"
)


def _is_read(statement: str) -> bool:
    lowered = statement.lstrip().lower()
    first = lowered.split(None, 1)[0] if lowered else ""
    return first in ("select", "show") or (first == "pragma" and "=" not in lowered)


def _is_reflection(statement: str) -> bool:
    """Reads of the catalogue (Alembic's batch mode reflects the table it rebuilds);
    a statement that writes is never one, whatever it names."""
    lowered = statement.lstrip().lower()
    return _is_read(statement) and (
        lowered.startswith("pragma") or any(name in lowered for name in _CATALOGUES)
    )


#: Functions that change something though a ``SELECT`` calls them (PostgreSQL's
#: sequences, advisory locks, settings, notifications, large objects, backends).
_WRITING_FUNCTIONS = re.compile(
    r"\b(?:setval|nextval|set_config|pg_notify|pg_(?:try_)?advisory_\w+|lo_\w+"
    r"|pg_(?:cancel|terminate)_backend|pg_reload_conf)\s*\(",
    re.IGNORECASE,
)


def _writes(statement: str) -> bool:
    """Whether ``statement`` calls a function that writes (outside quoted text)."""
    return bool(_WRITING_FUNCTIONS.search(_QUOTED.sub("''", statement)))


def _render(
    dialect: Dialect,
    statement: str,
    parameters: Any,
    context: DefaultExecutionContext,
    for_effect: bool,
) -> list[str]:
    """One runnable statement per set of values; a read not ``for_effect`` becomes a
    comment."""
    try:
        texts = _with_literals(dialect, statement, parameters, context)
    except CompileError as exc:
        return [f"-- values not shown as literals ({exc}): {parameters!r}\n{_ended(statement)}"]
    if _is_read(statement) and not for_effect:
        return [_READ_NOTE + "\n" + _commented(text) for text in texts]
    return [_ended(text) for text in texts]


def _with_literals(
    dialect: Dialect, statement: str, parameters: Any, context: DefaultExecutionContext
) -> list[str]:
    """``statement`` with its values inlined: a Core statement compiled again with
    every value a literal, or a driver-level one with its placeholders replaced."""
    if not parameters:
        return [statement]
    compiled = context.compiled
    if not isinstance(compiled, SQLCompiler) or compiled.statement is None:
        rows = parameters if context.executemany else [parameters]
        return [_driver_literals(dialect, statement, row) for row in rows]
    translate = context.execution_options.get("schema_translate_map")
    inlined = compiled.statement.compile(
        dialect=dialect,
        column_keys=compiled.column_keys,
        for_executemany=compiled.for_executemany,
        schema_translate_map=translate,
        render_schema_translate=bool(translate),
        compile_kwargs={"literal_execute": True},
    )
    assert isinstance(inlined, SQLCompiler)
    by_value = _typed_by_value(inlined.render_literal_value)
    inlined.render_literal_value = by_value  # type: ignore[method-assign]
    return [
        inlined._process_parameters_for_postcompile(
            inlined.construct_params(values), _populate_self=False
        ).statement
        for values in context.compiled_parameters
    ]


def _typed_by_value(render: Any) -> Any:
    """``render`` (a compiler's literal renderer), typing a value of no declared type
    (``sa.column("name")``) by its Python type, as the driver would."""

    def rendered(value: Any, type_: TypeEngine[Any]) -> str:
        if isinstance(type_, NullType):
            type_ = literal(value).type
        result: str = render(value, type_)
        return result

    return rendered


#: Quoted text: a string literal or a quoted name.
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
#: Quoted text, or a positional placeholder (``$1``, ``?``, ``%s``).
_PLACEHOLDER = re.compile(_QUOTED.pattern + r"|\$(\d+)|\?|%s")


def _driver_literals(dialect: Dialect, statement: str, values: Any) -> str:
    """A driver-level statement with its positional placeholders replaced by the
    values, typed by their Python types."""
    if isinstance(values, dict):
        raise CompileError("named parameters of a driver-level statement")
    given = list(values)
    following = iter(given)

    def replaced(match: re.Match[str]) -> str:
        token = match.group(0)
        if token[0] in "'\"":
            return token
        value = given[int(match.group(1)) - 1] if match.group(1) else next(following)
        return str(literal(value).compile(dialect=dialect, compile_kwargs={"literal_binds": True}))

    return _PLACEHOLDER.sub(replaced, statement)


def _commented(text: str) -> str:
    return "\n".join(f"-- {line.rstrip()}" for line in text.strip().splitlines())


def _ended(text: str) -> str:
    """``text`` trimmed and ending in ``;`` (on a line of its own after a comment)."""
    lines = [line.rstrip() for line in text.strip().removesuffix(";").rstrip().splitlines()]
    unquoted = _QUOTED.sub("", lines[-1])
    return "\n".join(lines) + ("\n;" if "--" in unquoted else ";")
