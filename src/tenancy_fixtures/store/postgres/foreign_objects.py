"""What a tenant schema holds that its definition does not declare (PostgreSQL).

A tenant schema declares tables with their keys, indexes and CHECK constraints, and
nothing else. Anything more — a table, view, sequence, function, procedure, trigger,
rule, policy, type or operator, or a call from a table to a function outside
``pg_catalog`` — was added behind the library's back. ``validate-data`` reports each as
a failure; a load refuses to start while any of them would run during its writes
(:func:`load_hazards`), since a role switch cannot contain a ``SECURITY DEFINER``
function owned by a superuser (see :mod:`.privileges`).

Objects that belong to an installed extension (``uuid_generate_v4()``, ``citext``) are
trusted: installing an extension takes a superuser or a trusted extension.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from sqlalchemy import ARRAY, String, bindparam, text

from tenancy_fixtures.store.base import SchemaObject
from tenancy_fixtures.store.postgres.privileges import quote

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["RELATION_KINDS", "is_load_hazard", "load_hazards", "undeclared_objects"]

#: Kinds of relation; a declared table's name with any kind but ``table`` is a hazard.
RELATION_KINDS = frozenset(
    {"table", "view", "materialized view", "foreign table", "sequence", "composite type"}
)
#: Kinds that run code when a declared table is written.
_RUN_ON_WRITE = frozenset({"trigger", "rule", "policy", "function call", "column type"})

_NOT_EXTENSION = """NOT EXISTS (
    SELECT 1 FROM pg_depend e
    WHERE e.classid = '{catalog}'::regclass AND e.objid = {oid} AND e.deptype = 'e')"""

#: The schema's relations as an array, for the catalogues' indexes on a relation's oid:
#: joined to ``rels`` alone, the planner (whose row estimates grow with every tenant)
#: read all of ``pg_constraint``, ``pg_index`` and ``pg_trigger`` instead, 22 ms of a
#: 24 ms check with 300 tenants (11 ms with this).
_OF_RELS = "ANY(ARRAY(SELECT oid FROM rels))"

_UNDECLARED = text(
    f"""
    WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = :schema),
    rels AS (SELECT c.oid, c.relname, c.relkind FROM pg_class c, ns
             WHERE c.relnamespace = ns.oid)
    SELECT kind, name, tbl, detail FROM (
        SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                    WHEN 'f' THEN 'foreign table' WHEN 'S' THEN 'sequence'
                    WHEN 'c' THEN 'composite type' ELSE 'table' END AS kind,
               c.relname::text AS name, NULL::text AS tbl,
               'owned by ' || pg_get_userbyid(k.relowner) AS detail
        FROM rels c JOIN pg_class k ON k.oid = c.oid
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S', 'c')
          AND NOT (c.relkind IN ('r', 'p') AND c.relname = ANY(:declared))
          -- a sequence of a declared table's serial or identity column is the table's
          AND NOT (c.relkind = 'S' AND c.relname = ANY(:sequences))
          AND NOT (c.relkind = 'S' AND EXISTS (
              SELECT 1 FROM pg_depend d JOIN rels t ON t.oid = d.refobjid
              WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
                AND t.relname = ANY(:declared)))
        UNION ALL
        SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate'
                    WHEN 'w' THEN 'window function' ELSE 'function' END,
               p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
               NULL,
               CASE WHEN p.prosecdef THEN 'SECURITY DEFINER, ' ELSE '' END
               || 'owned by ' || pg_get_userbyid(p.proowner)
        FROM pg_proc p, ns
        WHERE p.pronamespace = ns.oid
          AND {_NOT_EXTENSION.format(catalog="pg_proc", oid="p.oid")}
        UNION ALL
        SELECT 'trigger', t.tgname, c.relname, 'runs ' || t.tgfoid::regprocedure::text
        FROM pg_trigger t JOIN rels c ON c.oid = t.tgrelid
        WHERE t.tgrelid = {_OF_RELS} AND NOT t.tgisinternal
        UNION ALL
        SELECT 'rule', r.rulename, c.relname, ''
        FROM pg_rewrite r JOIN rels c ON c.oid = r.ev_class
        WHERE r.ev_class = {_OF_RELS} AND r.rulename <> '_RETURN'
        UNION ALL
        SELECT 'policy', p.polname, c.relname, ''
        FROM pg_policy p JOIN rels c ON c.oid = p.polrelid
        WHERE p.polrelid = {_OF_RELS}
        UNION ALL
        SELECT CASE t.typtype WHEN 'd' THEN 'domain' WHEN 'e' THEN 'enum type'
                    WHEN 'r' THEN 'range type' ELSE 'type' END,
               t.typname, NULL, ''
        FROM pg_type t, ns
        WHERE t.typnamespace = ns.oid AND t.typrelid = 0 AND t.typcategory <> 'A'
          AND t.typtype <> 'm' AND NOT (t.typtype = 'e' AND t.typname = ANY(:enums))
          AND {_NOT_EXTENSION.format(catalog="pg_type", oid="t.oid")}
        UNION ALL
        SELECT 'operator', o.oid::regoperator::text, NULL, ''
        FROM pg_operator o, ns
        WHERE o.oprnamespace = ns.oid
          AND {_NOT_EXTENSION.format(catalog="pg_operator", oid="o.oid")}
        UNION ALL
        -- defaults, constraints and indexes of the schema's tables that call a
        -- function outside pg_catalog
        SELECT DISTINCT 'function call', p.oid::regprocedure::text, c.relname,
               CASE WHEN p.prosecdef THEN 'SECURITY DEFINER, ' ELSE '' END
               || 'owned by ' || pg_get_userbyid(p.proowner)
        -- (from the schema's own defaults, constraints and indexes into pg_depend by its
        -- depender index: the cost follows this schema, not the whole catalogue)
        FROM (
            SELECT 'pg_attrdef'::regclass AS classid, a.oid AS objid, a.adrelid AS relid
            FROM pg_attrdef a WHERE a.adrelid = {_OF_RELS}
            UNION ALL SELECT 'pg_constraint'::regclass, k.oid, k.conrelid
            FROM pg_constraint k WHERE k.conrelid = {_OF_RELS}
            UNION ALL SELECT 'pg_class'::regclass, i.indexrelid, i.indrelid
            FROM pg_index i WHERE i.indrelid = {_OF_RELS}
        ) uses
        JOIN pg_depend d ON d.classid = uses.classid AND d.objid = uses.objid
        JOIN pg_proc p ON d.refclassid = 'pg_proc'::regclass AND p.oid = d.refobjid
        JOIN rels c ON c.oid = uses.relid
        WHERE p.pronamespace <> 'pg_catalog'::regnamespace
          AND {_NOT_EXTENSION.format(catalog="pg_proc", oid="p.oid")}
        UNION ALL
        -- columns of a type outside pg_catalog (a domain's CHECK can call anything)
        SELECT 'column type', format_type(a.atttypid, a.atttypmod), c.relname,
               'column ' || a.attname
        FROM pg_attribute a JOIN rels c ON c.oid = a.attrelid
        JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = {_OF_RELS} AND c.relkind IN ('r', 'p')
          AND a.attnum > 0 AND NOT a.attisdropped
          AND t.typnamespace <> 'pg_catalog'::regnamespace
          -- an enum type declared with the tables (its values are checked by
          -- pg_catalog's enum_in: nothing of the schema's runs)
          AND NOT (t.typtype = 'e' AND t.typname = ANY(:enums)
                   AND t.typnamespace = (SELECT oid FROM ns))
          AND {_NOT_EXTENSION.format(catalog="pg_type", oid="t.oid")}
    ) found
    ORDER BY tbl NULLS FIRST, kind, name
    """
).bindparams(bindparam("declared", type_=ARRAY(String)), bindparam("enums", type_=ARRAY(String)))


async def undeclared_objects(
    conn: AsyncConnection,
    schema: str,
    declared: Collection[str],
    enums: Collection[str] = (),
    sequences: Collection[str] = (),
) -> list[SchemaObject]:
    """Everything in ``schema`` that the tables ``declared``, and the enum types
    ``enums`` and ``sequences`` their columns use, do not account for."""
    # The catalogue's row estimates grow with every tenant, and past a few hundred
    # schemas the planner JIT-compiles this query: ~0.8 s of compiling for a query that
    # runs in 2 ms. Off for this statement only, then back as it was.
    previous = (
        await conn.execute(text("SELECT current_setting('jit'), set_config('jit', 'off', true)"))
    ).scalar_one()
    names = {
        "schema": schema,
        "declared": sorted(declared),
        "enums": sorted(enums),
        "sequences": sorted(sequences),
    }
    rows = (await conn.execute(_UNDECLARED, names)).all()
    await conn.execute(text("SELECT set_config('jit', :jit, true)"), {"jit": previous})
    return [SchemaObject(kind, name, table, detail or "") for kind, name, table, detail in rows]


def is_load_hazard(found: SchemaObject, declared: Collection[str]) -> bool:
    """Whether writing the ``declared`` tables would run ``found`` (or write to it)."""
    if found.kind in RELATION_KINDS:
        return found.name in declared
    return found.kind in _RUN_ON_WRITE and found.table in declared


async def load_hazards(
    conn: AsyncConnection,
    schema: str,
    declared: Collection[str],
    existing: Collection[str],
    enums: Collection[str] = (),
    sequences: Collection[str] = (),
) -> list[SchemaObject]:
    """Lock the ``existing`` declared tables against new triggers, then return what
    undeclared code writing them would run.

    ``ROW EXCLUSIVE`` is what writing takes anyway; ``CREATE TRIGGER``, ``CREATE RULE``
    and ``ALTER TABLE`` need a lock that conflicts with it, so nothing can be added
    between this check and the end of the transaction.
    """
    tables = sorted(set(existing) & set(declared))
    if tables:
        names = ", ".join(f"{quote(schema)}.{quote(t)}" for t in tables)
        await conn.execute(text(f"LOCK TABLE ONLY {names} IN ROW EXCLUSIVE MODE"))
    found = await undeclared_objects(conn, schema, declared, enums, sequences)
    return [f for f in found if is_load_hazard(f, declared)]
