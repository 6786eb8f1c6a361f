"""Isolation checks: no row of another tenant is reachable from a tenant's session.

What "reachable" means here, concretely:

* **Both backends.** Every table of the tenant schema, as the session's connection
  translates it, resolves to the tenant's own schema (PostgreSQL) or to its own file
  (SQLite), so every statement the library runs reads this tenant only.
* **PostgreSQL.** The connection's ``search_path`` names no schema but the tenant's
  own and the system ones (unqualified SQL would read another tenant's rows); no view,
  rule, foreign key or inheritance child in the tenant's schema refers to a relation in
  another schema (``SELECT`` from such a view returns the other tenant's rows, with the
  view owner's rights); and with per-tenant roles, the tenant's role exists, can read
  its own tables, and has ``USAGE`` on no other schema, so reading another tenant's
  tables as that role fails with *permission denied*.
* **SQLite.** The connection's main database is the tenant's own file and no other
  tenant's (a symlink or hard link would make them one); nothing is attached but the
  control plane.

These checks read catalogues, so unlike the rest of the library they are written per
backend; they only read.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData, text
from sqlalchemy.exc import DBAPIError

from tenancy_fixtures.store.base import TENANT_SCHEMA, TenantSession, TenantStore
from tenancy_fixtures.store.control_plane import CONTROL_SCHEMA

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["IsolationFindings", "check_isolation", "role_can_read"]

_INSUFFICIENT_PRIVILEGE = "42501"
#: Schemas every PostgreSQL session may see, holding no tenant's rows.
_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "public")

# Views and rules (through pg_rewrite), foreign keys, and inheritance children of the
# schema's relations, whose target lies in another schema.
_FOREIGN_REFERENCES = text(
    """
    SELECT DISTINCT refs.kind, refs.name, tn.nspname AS ref_schema, t.relname AS ref_name
    FROM (
        SELECT 'view' AS kind, v.relname AS name, d.refobjid
        FROM pg_rewrite r
        JOIN pg_class v ON v.oid = r.ev_class
        JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
        WHERE v.relnamespace = to_regnamespace(:schema)
          AND d.refclassid = 'pg_class'::regclass
        UNION ALL
        SELECT 'foreign key', c.conname, c.confrelid
        FROM pg_constraint c
        WHERE c.connamespace = to_regnamespace(:schema) AND c.contype = 'f'
        UNION ALL
        SELECT 'inherited table', p.relname, i.inhrelid
        FROM pg_inherits i
        JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relnamespace = to_regnamespace(:schema)
    ) refs
    JOIN pg_class t ON t.oid = refs.refobjid
    JOIN pg_namespace tn ON tn.oid = t.relnamespace
    WHERE tn.nspname <> :schema AND tn.nspname NOT IN ('pg_catalog', 'information_schema')
    ORDER BY 1, 2, 3, 4
    """
)
_RELATIONS = text(
    "SELECT c.relname FROM pg_class c WHERE c.relnamespace = to_regnamespace(:schema) "
    "AND c.relkind IN ('r', 'v', 'm', 'p', 'f') ORDER BY 1"
)
_ROLE_SCHEMAS = text(
    "SELECT n.nspname FROM pg_namespace n "
    "WHERE has_schema_privilege(:role, n.oid, 'USAGE') AND n.nspname <> :schema "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'public') "
    "AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1"
)
_ROLE_TABLES = text(
    "SELECT c.relname FROM pg_class c WHERE c.relnamespace = to_regnamespace(:schema) "
    "AND c.relkind IN ('r', 'p') AND NOT has_table_privilege(:role, c.oid, 'SELECT') "
    "ORDER BY 1"
)


@dataclass
class IsolationFindings:
    """What the isolation checks found: failures, remarks, and what was verified."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)


async def check_isolation(
    store: TenantStore, session: TenantSession, *, other_tenants: Sequence[str]
) -> IsolationFindings:
    """Check that nothing of ``other_tenants`` (or anyone) is reachable from ``session``."""
    findings = IsolationFindings()
    tenant_id = session.tenant_id
    if session.connection.dialect.name == "postgresql":
        schema = store.storage_name(tenant_id)
        _check_targets(session, schema, findings)
        await _check_postgres(store, session, schema, other_tenants, findings)
    else:
        _check_targets(session, "main", findings)
        await _check_sqlite(store, session, other_tenants, findings)
    return findings


async def role_can_read(connection: AsyncConnection, role: str, schema: str, table: str) -> bool:
    """Whether ``role`` may read ``schema.table`` (PostgreSQL): the select is tried as
    that role in a savepoint that is rolled back, so the session's role is unchanged.

    *Permission denied* gives ``False``; any other error is raised.
    """
    quote = connection.dialect.identifier_preparer.quote
    savepoint = await connection.begin_nested()
    try:
        await connection.execute(text(f"SET LOCAL ROLE {quote(role)}"))
        await connection.execute(text(f"SELECT 1 FROM {quote(schema)}.{quote(table)} LIMIT 1"))
    except DBAPIError as exc:
        if _sqlstate(exc) == _INSUFFICIENT_PRIVILEGE:
            return False
        raise
    finally:
        await savepoint.rollback()
    return True


def _sqlstate(exc: BaseException) -> str | None:
    for candidate in (exc, getattr(exc, "orig", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def _check_targets(session: TenantSession, expected: str, findings: IsolationFindings) -> None:
    """Every tenant table, as this connection's statements name it, is the tenant's."""
    connection = session.connection.sync_connection
    assert connection is not None, "the session's connection is open"
    translate = connection.get_execution_options().get("schema_translate_map") or {}
    wrong = sorted(
        f"{table.name} -> {translate.get(table.schema, table.schema)}"
        for table in session.metadata.sorted_tables
        if translate.get(table.schema, table.schema) != expected
    )
    if wrong:
        findings.problems.append(
            f"statements of this session resolve tables outside {expected!r}: " + ", ".join(wrong)
        )
    else:
        findings.verified.append(f"every table resolves to {expected!r}")


def _tenant_of(schema: str, others: Sequence[str]) -> str:
    return f"tenant '{schema}''s schema" if schema in others else f"schema {schema!r}"


async def _check_postgres(
    store: TenantStore,
    session: TenantSession,
    schema: str,
    others: Sequence[str],
    findings: IsolationFindings,
) -> None:
    conn = session.connection
    path = (await conn.execute(text("SELECT unnest(current_schemas(false))"))).scalars().all()
    foreign = [s for s in path if s != schema and s not in _SYSTEM_SCHEMAS]
    for name in foreign:
        findings.problems.append(
            f"the connection's search_path includes {_tenant_of(name, others)}: "
            "unqualified SQL on this tenant's connection reads its rows"
        )
    if not foreign:
        findings.verified.append("search_path names no other schema")

    references = (await conn.execute(_FOREIGN_REFERENCES, {"schema": schema})).all()
    for kind, name, ref_schema, ref_name in references:
        findings.problems.append(
            f"{kind} {schema}.{name} reaches {ref_schema}.{ref_name} "
            f"({_tenant_of(ref_schema, others)})"
        )
    if not references:
        findings.verified.append("no view or key refers to another schema")

    relations = (await conn.execute(_RELATIONS, {"schema": schema})).scalars().all()
    _note_unknown(session.metadata, relations, findings)

    role = store.tenant_role(session.tenant_id)
    if role is not None:
        await _check_role(conn, role, schema, others, findings)


async def _check_role(
    conn: AsyncConnection,
    role: str,
    schema: str,
    others: Sequence[str],
    findings: IsolationFindings,
) -> None:
    exists = await conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
    if exists.first() is None:
        findings.problems.append(f"tenant role {role!r} does not exist")
        return
    usable = await conn.execute(
        text("SELECT has_schema_privilege(:role, :schema, 'USAGE')"),
        {"role": role, "schema": schema},
    )
    unreadable = (
        (await conn.execute(_ROLE_TABLES, {"role": role, "schema": schema})).scalars().all()
    )
    if not usable.scalar_one():
        findings.problems.append(f"role {role!r} cannot use its own schema {schema!r}")
    elif unreadable:
        findings.problems.append(f"role {role!r} cannot read its own {', '.join(unreadable)}")
    reachable = (
        (await conn.execute(_ROLE_SCHEMAS, {"role": role, "schema": schema})).scalars().all()
    )
    for name in reachable:
        findings.problems.append(f"role {role!r} has USAGE on {_tenant_of(name, others)}")
    if not reachable:
        findings.verified.append(f"role {role!r} can use no other schema")


async def _check_sqlite(
    store: TenantStore,
    session: TenantSession,
    others: Sequence[str],
    findings: IsolationFindings,
) -> None:
    conn = session.connection
    before = len(findings.problems)
    attached: list[Any] = list((await conn.exec_driver_sql("PRAGMA database_list")).all())
    own_path = store.storage_name(session.tenant_id)
    others_by_file = await asyncio.to_thread(_files_of, store, others)
    own = await asyncio.to_thread(_file_id, own_path)
    shared = others_by_file.get(own) if own is not None else None
    if shared is not None:
        findings.problems.append(
            f"the tenant's file {own_path} is tenant '{shared}''s file: its rows are read here"
        )
    for row in attached:
        name, path = str(row[1]), str(row[2] or "")
        identity = await asyncio.to_thread(_file_id, path) if path else None
        owner = others_by_file.get(identity) if identity is not None else None
        if name == "main":
            if identity != own:
                findings.problems.append(
                    f"the connection's main database is {path}, not the tenant's file {own_path}"
                )
        elif owner is not None:
            findings.problems.append(
                f"tenant '{owner}''s file {path} is attached as {name!r}: its rows are reachable"
            )
        elif name not in (CONTROL_SCHEMA, "temp"):
            findings.problems.append(f"database {path or '(memory)'} is attached as {name!r}")
    if len(findings.problems) == before:
        findings.verified.append("the connection reads the tenant's own file and no other")
    found = await conn.exec_driver_sql(
        "SELECT name FROM main.sqlite_master WHERE type IN ('table', 'view') "
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
    )
    _note_unknown(session.metadata, found.scalars().all(), findings)


def _note_unknown(
    metadata: MetaData, relations: Sequence[str], findings: IsolationFindings
) -> None:
    known = {t.name for t in metadata.sorted_tables if t.schema == TENANT_SCHEMA}
    unknown = [r for r in relations if r not in known]
    if unknown:
        findings.notes.append(
            "relations not in the tenant schema definition: " + ", ".join(unknown)
        )


def _file_id(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_dev, status.st_ino)


def _files_of(store: TenantStore, tenants: Sequence[str]) -> dict[tuple[int, int], str]:
    files: dict[tuple[int, int], str] = {}
    for tenant in tenants:
        identity = _file_id(store.storage_name(tenant))
        if identity is not None:
            files.setdefault(identity, tenant)
    return files
