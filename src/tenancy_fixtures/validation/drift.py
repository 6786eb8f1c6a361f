"""Schema drift: where a live tenant schema differs from the code's schema definition.

Alembic's autogenerate comparison finds added or missing tables' columns, types,
nullability, indexes, unique and foreign-key constraints; CHECK constraints, which
it does not compare, are compared here by name. A tenant behind the head is
compared with the schema its revision scripts build, learned in a scratch schema.
The store adds what its backend should have made of the schema besides its tables
(on Citus: a distributed schema whose shards match the coordinator's tables).

A comparison takes Alembic a fifth of a second; its findings are kept per (schema
definition, catalogue text), so the tenants of a fleet, whose catalogues differ only in
their schema's name, are compared once per process, and a changed catalogue is
compared afresh.
"""

from __future__ import annotations

import hashlib
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    BLANK_SCHEMA,
    Enum,
    ForeignKeyConstraint,
    MetaData,
    Table,
    inspect,
)
from sqlalchemy.schema import CreateIndex, CreateTable

from tenancy_fixtures.loading.rules import check_constraints
from tenancy_fixtures.migrations.operations import run_steps
from tenancy_fixtures.migrations.scripts import MigrationScripts
from tenancy_fixtures.store import TenantSession, TenantStore, migration_ledger
from tenancy_fixtures.store.base import created_checks
from tenancy_fixtures.store.migration_ledger import RevisionHistory
from tenancy_fixtures.store.stored_types import same_stored_type
from tenancy_fixtures.store.tenant_tables import copy_table, named_enums

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Dialect

__all__ = ["DriftReport", "check_drift"]


@dataclass
class DriftReport:
    """One tenant's differences from the schema definition, each naming its table and
    column or constraint; ``revision`` is what the ledger records. ``problem``: why the
    schema could not be compared at all (its storage is missing)."""

    tenant_id: str
    revision: str | None
    findings: list[str] = field(default_factory=list)
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """Compared, and no difference found."""
        return not self.findings and self.problem is None

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data (for ``--json``)."""
        return {
            "tenant_id": self.tenant_id,
            "revision": self.revision,
            "ok": self.ok,
            "findings": self.findings,
            "problem": self.problem,
        }


async def check_drift(
    store: TenantStore, session: TenantSession, history: RevisionHistory | None
) -> DriftReport:
    """Compare the session's tenant schema with the schema at its recorded revision:
    ``session.metadata`` at the head (or without a history); below it, the schema the
    history's scripts build up to that revision (learned once, in a scratch schema that
    is rolled back). Read only."""
    _, revision = await migration_ledger.current_revision(session.connection, session.tenant_id)
    if history is not None:
        revision = revision or history.base
    report = DriftReport(session.tenant_id, revision)
    expected = session.metadata
    if history is not None and revision != history.head:
        if not isinstance(history, MigrationScripts) or revision not in history.chain:
            report.findings.append(
                f"schema revision {revision} is not in the history (head {history.head})"
            )
            return report
        expected = await _schema_at(store, history, revision)
    schema = None if session.schema_name == "main" else session.schema_name
    report.findings = await _compared(session, expected, schema)
    if enums := named_enums(expected):
        report.findings += _enum_drift(enums, await session.enum_values())
    report.findings += await store.storage_drift(session)
    return report


def _enum_drift(enums: Sequence[Enum], found: dict[str, tuple[str, ...]] | None) -> list[str]:
    """Of the schema's ``enums``, those whose values differ in the tenant's storage
    (``found``: ``None`` where the backend has no enum types)."""
    if found is None:
        return []
    findings = []
    for enum in enums:
        name, values = str(enum.name), tuple(enum.enums)
        if name not in found:
            findings.append(f"enum type {name} is missing")
        elif found[name] != values:
            findings.append(f"enum type {name} has values {found[name]}, the schema says {values}")
    return findings


#: Findings of comparisons made: (definition digest, catalogue digest) -> findings.
_COMPARED: OrderedDict[tuple[str, str], list[str]] = OrderedDict()
_COMPARED_KEPT = 256
_DEFINITIONS: weakref.WeakKeyDictionary[MetaData, dict[str, str]] = weakref.WeakKeyDictionary()


async def _compared(session: TenantSession, expected: MetaData, schema: str | None) -> list[str]:
    """The findings of comparing the tenant's schema with ``expected``: those of an
    earlier comparison of the same definition with the same catalogue, if any."""
    catalogue = await session.catalog_text()
    if catalogue is None:
        return await session.connection.run_sync(_compare, expected, schema)
    key = (
        _definition(expected, session.connection.dialect),
        hashlib.sha256(f"{schema is None}\n{catalogue}".encode()).hexdigest(),
    )
    known = _COMPARED.get(key)
    if known is not None:
        with suppress(KeyError):  # evicted meanwhile by another thread's comparison
            _COMPARED.move_to_end(key)
        return list(known)
    findings = await session.connection.run_sync(_compare, expected, schema)
    _COMPARED[key] = list(findings)
    if len(_COMPARED) > _COMPARED_KEPT:
        _COMPARED.popitem(last=False)
    return findings


def _definition(metadata: MetaData, dialect: Dialect) -> str:
    """A digest of the DDL ``metadata`` renders on ``dialect`` (its tables, constraints
    and indexes), made once per definition and dialect."""
    digests = _DEFINITIONS.setdefault(metadata, {})
    if dialect.name not in digests:
        ddl = hashlib.sha256(dialect.name.encode())
        for table in metadata.sorted_tables:
            ddl.update(str(CreateTable(table).compile(dialect=dialect)).encode())
            for index in sorted(table.indexes, key=lambda i: str(i.name)):
                ddl.update(str(CreateIndex(index).compile(dialect=dialect)).encode())
            # What CREATE TABLE leaves out: comments, constraints added later (use_alter).
            ddl.update(repr((table.comment, [c.comment for c in table.columns])).encode())
            ddl.update(repr(sorted(_constraint_parts(table))).encode())
        digests[dialect.name] = ddl.hexdigest()
    return digests[dialect.name]


_AT_REVISION: dict[tuple[str, str, str], MetaData] = {}


async def _schema_at(store: TenantStore, history: MigrationScripts, revision: str) -> MetaData:
    """The tables the history's scripts make up to ``revision``, reflected (in the
    scratch schema, which the comparison replaces with the tenant's)."""
    key = (history.location, revision, store.backend)
    if key not in _AT_REVISION:
        async with store.scratch() as conn:
            await conn.run_sync(run_steps, history.from_empty(revision))
            _AT_REVISION[key] = await conn.run_sync(_reflect)
    return _AT_REVISION[key]


def _reflect(conn: Connection) -> MetaData:
    translate = conn.get_execution_options().get("schema_translate_map") or {}
    reflected = MetaData(schema=translate.get(None))
    reflected.reflect(conn)
    return reflected


def _constraint_parts(table: Table) -> list[tuple[str, str, tuple[str, ...]]]:
    parts = []
    for constraint in table.constraints:
        columns = tuple(c.name for c in getattr(constraint, "columns", ()))
        if isinstance(constraint, ForeignKeyConstraint):
            columns += tuple(e.target_fullname for e in constraint.elements)
        parts.append((type(constraint).__name__, str(constraint.name), columns))
    return parts


def _in_schema(metadata: MetaData, schema: str | None) -> MetaData:
    """``metadata``'s tables named in ``schema`` (reflection sees the real names)."""
    copy = MetaData(schema=schema, naming_convention=metadata.naming_convention)

    def referred(table: Table, to: str | None, constraint: Any, referred: str | None) -> Any:
        del constraint
        if referred != table.schema:
            return referred
        return to if to is not None else BLANK_SCHEMA

    for table in metadata.sorted_tables:
        # None: the copy's own schema (none); the stubs do not admit it.
        copy_table(table, copy, schema=cast(str, schema), referred_schema_fn=referred)
    return copy


def _compare(conn: Connection, metadata: MetaData, schema: str | None) -> list[str]:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    expected = _in_schema(metadata, schema)
    declared = {t.name for t in expected.sorted_tables}

    def include(name: str | None, type_: str, parent: Any) -> bool:
        del parent
        if type_ == "schema":
            return name == schema
        if type_ == "table":
            return name in declared
        return True

    context = MigrationContext.configure(
        conn,
        opts={
            "compare_type": _compare_type,
            "include_schemas": schema is not None,
            "include_name": include,
        },
    )
    findings = [_describe(diff) for diff in _flatten(compare_metadata(context, expected))]
    findings.extend(_check_constraints(conn, expected, schema))
    return sorted(f for f in findings if f)


def _compare_type(
    context: Any, inspected: Any, declared: Any, found_type: Any, declared_type: Any
) -> bool | None:
    """Alembic's comparison of a column's types (``None``), except that a type the
    database keeps under another name (``FLOAT(24)`` as ``real``) is the same."""
    del inspected, declared
    return False if same_stored_type(context.dialect, declared_type, found_type) else None


def _flatten(diffs: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for diff in diffs:
        flat.extend(diff if isinstance(diff, list) else [diff])
    return flat


# shape: one message per kind of difference Alembic reports, a flat dispatch
def _describe(diff: Any) -> str:
    kind = diff[0]
    if kind == "add_table":
        return f"table {diff[1].name} is missing"
    if kind in ("add_column", "remove_column"):
        table, column = diff[2], diff[3]
        where = "is missing" if kind == "add_column" else "is not in the schema definition"
        return f"column {table}.{column.name} {where}"
    if kind == "modify_type":
        return f"column {diff[2]}.{diff[3]} has type {diff[5]}, the schema says {diff[6]}"
    if kind == "modify_nullable":
        state = "nullable" if diff[5] else "NOT NULL"
        wanted = "nullable" if diff[6] else "NOT NULL"
        return f"column {diff[2]}.{diff[3]} is {state}, the schema says {wanted}"
    if kind in ("add_index", "remove_index"):
        index = diff[1]
        where = "is missing" if kind == "add_index" else "is not in the schema definition"
        columns = ", ".join(c.name for c in index.columns) or str(index.expressions)
        return f"index {index.name} on {index.table.name} ({columns}) {where}"
    if kind in ("add_constraint", "remove_constraint", "add_fk", "remove_fk"):
        constraint = diff[1]
        what = "foreign key" if kind.endswith("fk") else "unique constraint"
        where = "is missing" if kind.startswith("add") else "is not in the schema definition"
        columns = ", ".join(c.name for c in constraint.columns)
        return f"{what} {constraint.name} on {constraint.table.name} ({columns}) {where}"
    return f"{kind}: {diff[1:]}"


def _check_constraints(conn: Connection, expected: MetaData, schema: str | None) -> list[str]:
    """CHECK constraints missing or extra, by name; a CHECK declared without a name is
    named by the database (``things_n_check``, or none on SQLite), so those are
    compared by count."""
    inspector = inspect(conn)
    findings: list[str] = []
    for table in expected.sorted_tables:
        declared = created_checks(check_constraints(table), conn.dialect.name)
        wanted = {c.name for c in declared if isinstance(c.name, str) and c.name}
        unnamed = len(declared) - len(wanted)
        if not inspector.has_table(table.name, schema):
            continue  # reported missing by the comparison above
        live = [c["name"] for c in inspector.get_check_constraints(table.name, schema)]
        findings += [
            f"CHECK constraint {name} on {table.name} is missing"
            for name in sorted(wanted - {str(n) for n in live if n})
        ]
        others = sorted(str(n) for n in live if not n or str(n) not in wanted)
        if len(others) > unnamed:
            findings += [
                f"CHECK constraint {name} on {table.name} is not in the schema definition"
                for name in others[unnamed:]
            ]
        elif len(others) < unnamed:
            findings.append(
                f"{unnamed - len(others)} CHECK constraint(s) declared without a name on "
                f"{table.name} are missing"
            )
    return findings
