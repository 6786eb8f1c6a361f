"""What a tenant schema's catalogue says about its tables, as one text.

Two schemas with the same text have the same relations, columns (type, nullability,
default, identity, collation), constraints, indexes and comments, so a comparison with the
schema definition made for one holds for the other: the drift check compares a fleet
of identical tenants once. The schema's own name is replaced by ``§`` wherever
PostgreSQL writes it (qualified index, foreign-key and type names).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sqlalchemy import text

from tenancy_fixtures.errors import StorageError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["catalog_text"]

_CATALOG = text(
    """
    SELECT 'column', c.relname::text, lpad(a.attnum::text, 5, '0'),
           a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
           || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
           || ' identity:' || a.attidentity::text || ' generated:' || a.attgenerated::text
           || coalesce(' collate ' || coll.collname::text, '')
    FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    LEFT JOIN pg_catalog.pg_collation coll
           ON coll.oid = a.attcollation AND a.attcollation <> 0
    WHERE c.relnamespace = to_regnamespace(:schema) AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'constraint', c.relname::text, con.conname::text,
           con.contype::text || ' ' || pg_catalog.pg_get_constraintdef(con.oid)
           || CASE WHEN con.condeferrable THEN ' deferrable' ELSE '' END
           || CASE WHEN con.convalidated THEN '' ELSE ' not valid' END
    FROM pg_catalog.pg_constraint con
    JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
    WHERE c.relnamespace = to_regnamespace(:schema)
    UNION ALL
    SELECT 'index', c.relname::text, i.relname::text, pg_catalog.pg_get_indexdef(i.oid)
    FROM pg_catalog.pg_index x
    JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
    JOIN pg_catalog.pg_class c ON c.oid = x.indrelid
    WHERE c.relnamespace = to_regnamespace(:schema)
    UNION ALL
    SELECT 'relation', c.relname::text, c.relkind::text,
           c.relpersistence::text || coalesce(' comment ' || d.description, '')
    FROM pg_catalog.pg_class c
    LEFT JOIN pg_catalog.pg_description d
           ON d.objoid = c.oid AND d.classoid = 'pg_catalog.pg_class'::regclass
          AND d.objsubid = 0
    WHERE c.relnamespace = to_regnamespace(:schema)
    UNION ALL
    SELECT 'comment', c.relname::text, a.attname::text, d.description
    FROM pg_catalog.pg_description d
    JOIN pg_catalog.pg_class c ON c.oid = d.objoid
    JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid
    WHERE d.classoid = 'pg_catalog.pg_class'::regclass AND d.objsubid > 0
      AND c.relnamespace = to_regnamespace(:schema)
    ORDER BY 1, 2, 3, 4
    """
)


async def catalog_text(conn: AsyncConnection, schema: str) -> str:
    """The catalogue of ``schema`` as one text, its own name replaced by ``§``."""
    rows = (await conn.execute(_CATALOG, {"schema": schema})).all()
    if any(value is None for row in rows for value in row):
        # pg_get_indexdef() and the like give NULL for an object dropped meanwhile.
        raise StorageError(f"schema {schema} changed while its catalogue was read")
    own_name = re.compile(rf'(?<![\w$"]){re.escape(schema)}\.|"{re.escape(schema)}"\.')
    return "\n".join(own_name.sub("§.", "\t".join(row)) for row in rows)
