"""Isolation and drift checks of a tenant's distributed schema (read only).

Isolation: the schema is a colocation group of its own — every table of it in the
schema's group, no other schema or table sharing the group — so its shards live
together on one node and never beside another tenant's in one shard.

Drift: the schema is distributed, each of its tables is a Citus table, and each shard
on its worker has the columns of the table on the coordinator (DDL made on the
coordinator with propagation off changes the coordinator's table alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import text

from tenancy_fixtures.store.base import IsolationFindings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["drift_findings", "isolation_findings"]

_SCHEMA_GROUP = text(
    "SELECT colocationid FROM pg_dist_schema WHERE schemaid = to_regnamespace(:schema)"
)
# The schema's tables with their Citus colocation group (NULL: not a Citus table).
_TABLES = text(
    "SELECT c.relname, p.colocationid, p.partmethod, p.repmodel FROM pg_class c "
    "LEFT JOIN pg_dist_partition p ON p.logicalrelid = c.oid "
    "WHERE c.relnamespace = to_regnamespace(:schema) AND c.relkind IN ('r', 'p') "
    "ORDER BY 1"
)
# Other relations, in other schemas, sharing the colocation group.
_SHARING = text(
    "SELECT n.nspname, c.relname FROM pg_dist_partition p "
    "JOIN pg_class c ON c.oid = p.logicalrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE p.colocationid = :group AND n.nspname <> :schema ORDER BY 1, 2"
)
_NODES = text(
    "SELECT DISTINCT d.nodename || ':' || d.nodeport FROM pg_dist_partition p "
    "JOIN pg_dist_shard sh ON sh.logicalrelid = p.logicalrelid "
    "JOIN pg_dist_placement pl ON pl.shardid = sh.shardid "
    "JOIN pg_dist_node d ON d.groupid = pl.groupid WHERE p.colocationid = :group ORDER BY 1"
)
_COLUMNS = (
    "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ';' "
    "ORDER BY attname) FROM pg_attribute WHERE attrelid = '{table}'::regclass "
    "AND attnum > 0 AND NOT attisdropped"
)
# Each shard's columns, read on its worker.
_SHARD_COLUMNS = text(
    "SELECT nodename || ':' || nodeport AS node, shardid, success, result "
    "FROM pg_catalog.run_command_on_placements(CAST(:table AS regclass), :command)"
)


async def isolation_findings(
    conn: AsyncConnection, schema: str, others: Sequence[str]
) -> IsolationFindings:
    """What Citus's metadata says about ``schema`` sharing storage with anyone."""
    findings = IsolationFindings()
    group = (await conn.execute(_SCHEMA_GROUP, {"schema": schema})).scalar_one_or_none()
    if group is None:
        findings.notes.append(
            f"schema {schema!r} is not a Citus distributed schema: its tables are on the "
            "coordinator"
        )
        return findings
    tables = (await conn.execute(_TABLES, {"schema": schema})).all()
    astray = [t.relname for t in tables if t.colocationid != group]
    for name in astray:
        findings.problems.append(
            f"table {schema}.{name} is not colocated with the tenant's distributed schema: "
            "its shards may lie beside other tenants' rows"
        )
    sharing = (await conn.execute(_SHARING, {"group": group, "schema": schema})).all()
    for other, name in sharing:
        whose = f"tenant '{other}'" if other in others else f"schema {other!r}"
        findings.problems.append(
            f"{whose}'s table {other}.{name} shares the colocation group of {schema!r}"
        )
    nodes = (await conn.execute(_NODES, {"group": group})).scalars().all()
    if not astray and not sharing:
        findings.verified.append(
            f"distributed schema {schema!r} is a colocation group of its own "
            f"on {', '.join(nodes) or 'no node yet'}"
        )
    return findings


async def drift_findings(conn: AsyncConnection, schema: str, declared: set[str]) -> list[str]:
    """Where ``schema`` is not what a distributed tenant schema should be (see above)."""
    group = (await conn.execute(_SCHEMA_GROUP, {"schema": schema})).scalar_one_or_none()
    if group is None:
        return [
            f"schema {schema} is not a Citus distributed schema (its tables are on the "
            "coordinator): SELECT citus_schema_distribute('" + schema + "') places it"
        ]
    findings = []
    for table in (await conn.execute(_TABLES, {"schema": schema})).all():
        if table.relname not in declared:
            continue
        if table.colocationid is None:
            findings.append(f"table {table.relname} is not distributed (coordinator only)")
            continue
        findings += await _shard_drift(conn, schema, table.relname)
    return findings


async def _shard_drift(conn: AsyncConnection, schema: str, table: str) -> list[str]:
    quote = conn.dialect.identifier_preparer.quote
    qualified = f"{quote(schema)}.{quote(table)}"
    wanted = (await conn.execute(text(_COLUMNS.format(table=qualified)))).scalar_one()
    shards = await conn.execute(
        _SHARD_COLUMNS, {"table": qualified, "command": _COLUMNS.format(table="%s")}
    )
    findings = []
    for node, shard, success, result in shards:
        if not success:
            findings.append(f"table {table}: its shard {shard} on {node} cannot be read: {result}")
        elif result != wanted:
            have, want = set((result or "").split(";")), set((wanted or "").split(";"))
            for column in sorted(want - have):
                findings.append(f"column {table}.{column} is missing from shard {shard} on {node}")
            for column in sorted(have - want):
                findings.append(
                    f"column {table}.{column} is on shard {shard} on {node} only, "
                    "not on the coordinator's table"
                )
    return findings
