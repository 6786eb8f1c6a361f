"""PostgreSQL isolation checks: what the catalogues say a tenant's session can reach.

* The connection's ``search_path`` names no schema but the tenant's own and the system
  ones (unqualified SQL would read another tenant's rows).
* No view, rule, foreign key or inheritance child in the tenant's schema refers to a
  relation in another schema (``SELECT`` from such a view returns the other tenant's
  rows, with the view owner's rights).
* With per-tenant roles, the tenant's role exists, can read its own tables, and has
  ``USAGE`` on no other schema, so reading another tenant's tables as that role fails
  with *permission denied*.

Every check only reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tenancy_fixtures.store.base import IsolationFindings
from tenancy_fixtures.store.postgres.sqlstate import sqlstate

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["check_isolation", "role_can_read"]

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


async def check_isolation(
    connection: AsyncConnection, *, schema: str, role: str | None, others: Sequence[str]
) -> IsolationFindings:
    """Check the tenant whose schema is ``schema`` (and whose role is ``role``, if it has
    one) on its own session's ``connection``; ``others`` are the other tenants' ids."""
    findings = IsolationFindings()
    path = (await connection.execute(text("SELECT unnest(current_schemas(false))"))).scalars().all()
    foreign = [s for s in path if s != schema and s not in _SYSTEM_SCHEMAS]
    for name in foreign:
        findings.problems.append(
            f"the connection's search_path includes {_tenant_of(name, others)}: "
            "unqualified SQL on this tenant's connection reads its rows"
        )
    if not foreign:
        findings.verified.append("search_path names no other schema")

    references = (await connection.execute(_FOREIGN_REFERENCES, {"schema": schema})).all()
    for kind, name, ref_schema, ref_name in references:
        findings.problems.append(
            f"{kind} {schema}.{name} reaches {ref_schema}.{ref_name} "
            f"({_tenant_of(ref_schema, others)})"
        )
    if not references:
        findings.verified.append("no view or key refers to another schema")

    if role is not None:
        await _check_role(connection, role, schema, others, findings)
    return findings


async def role_can_read(connection: AsyncConnection, role: str, schema: str, table: str) -> bool:
    """Whether ``role`` may read ``schema.table``: the select is tried as that role in a
    savepoint that is rolled back, so the session's role is unchanged.

    *Permission denied* gives ``False``; any other error is raised.
    """
    quote = connection.dialect.identifier_preparer.quote
    savepoint = await connection.begin_nested()
    try:
        await connection.execute(text(f"SET LOCAL ROLE {quote(role)}"))
        await connection.execute(text(f"SELECT 1 FROM {quote(schema)}.{quote(table)} LIMIT 1"))
    except DBAPIError as exc:
        if sqlstate(exc) == _INSUFFICIENT_PRIVILEGE:
            return False
        raise
    finally:
        await savepoint.rollback()
    return True


def _tenant_of(schema: str, others: Sequence[str]) -> str:
    return f"tenant '{schema}''s schema" if schema in others else f"schema {schema!r}"


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
