"""Where distributed tenant schemas live, moving one, and Citus's rebalancer.

Read from Citus's metadata on the coordinator: a distributed schema is a colocation
group (``pg_dist_schema``) whose tables each have one shard, all on one worker.
Moving a schema (``citus_schema_move``) copies its shards to the target with logical
replication where every table has a primary key (writes go on during the copy) and
then switches over; the rebalancer moves whole schemas the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import text

from tenancy_fixtures.errors import StorageError
from tenancy_fixtures.store.placement import Node, PlannedMove, TenantPlacement

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = [
    "TRANSFER_MODES",
    "move_schema",
    "placements",
    "rebalance",
    "rebalance_plan",
    "resolve_node",
    "schema_node",
    "workers",
]

#: ``citus.shard_transfer_mode``: auto (logical replication when every table has a
#: replica identity, else refused), force_logical, or block_writes during the copy.
TRANSFER_MODES = ("auto", "force_logical", "block_writes")

# One row per schema and node its shards are on (one, unless a move is half done).
_PLACEMENTS = text(
    """
    SELECT n.nspname AS schema, d.nodeid, d.nodename, d.nodeport,
           count(DISTINCT p.logicalrelid) AS tables,
           coalesce(sum(sizes.size), 0) AS bytes
    FROM pg_dist_schema ds
    JOIN pg_namespace n ON n.oid = ds.schemaid
    JOIN pg_dist_partition p ON p.colocationid = ds.colocationid
    JOIN pg_dist_shard sh ON sh.logicalrelid = p.logicalrelid
    JOIN pg_dist_placement pl ON pl.shardid = sh.shardid
    JOIN pg_dist_node d ON d.groupid = pl.groupid
    LEFT JOIN pg_catalog.citus_shard_sizes() sizes ON sizes.shard_id = sh.shardid
    WHERE n.nspname = ANY(:schemas)
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2
    """
)
_WORKERS = text(
    "SELECT nodeid, nodename, nodeport FROM pg_dist_node "
    "WHERE noderole = 'primary' AND isactive AND shouldhaveshards ORDER BY nodeid"
)
_PLAN = text(
    """
    SELECT n.nspname AS schema, sum(coalesce(sizes.size, plan.shard_size)) AS bytes,
           plan.sourcename || ':' || plan.sourceport AS source,
           plan.targetname || ':' || plan.targetport AS target
    FROM pg_catalog.get_rebalance_table_shards_plan() plan
    JOIN pg_class c ON c.oid = plan.table_name
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_catalog.citus_shard_sizes() sizes ON sizes.shard_id = plan.shardid
    GROUP BY 1, 3, 4
    ORDER BY 1
    """
)


async def placements(conn: AsyncConnection, schemas: dict[str, str]) -> list[TenantPlacement]:
    """Where each tenant (``schemas``: tenant id -> schema) lives; a schema that is not
    distributed is on the coordinator (``node`` is ``None``)."""
    found = await conn.execute(_PLACEMENTS, {"schemas": list(schemas.values())})
    by_schema = {row.schema: row for row in found}
    placed = []
    for tenant_id, schema in sorted(schemas.items()):
        row = by_schema.get(schema)
        node = None if row is None else Node(int(row.nodeid), row.nodename, int(row.nodeport))
        placed.append(
            TenantPlacement(
                tenant_id=tenant_id,
                schema=schema,
                node=node,
                tables=0 if row is None else int(row.tables),
                bytes=0 if row is None else int(row.bytes),
            )
        )
    return placed


async def workers(conn: AsyncConnection) -> list[Node]:
    """The active primary nodes that may hold tenants' shards."""
    return [Node(int(r.nodeid), r.nodename, int(r.nodeport)) for r in await conn.execute(_WORKERS)]


async def resolve_node(conn: AsyncConnection, spec: str) -> Node:
    """The worker ``spec`` names: its node id, or ``host:port``."""
    known = await workers(conn)
    for node in known:
        if spec == str(node.node_id) or spec == str(node):
            return node
    listed = ", ".join(f"{n.node_id} ({n})" for n in known) or "none"
    raise StorageError(f"no worker node {spec!r} in the Citus cluster; its workers: {listed}")


async def schema_node(conn: AsyncConnection, schema: str) -> Node | None:
    """The node holding ``schema``'s shards (``None``: not distributed, or empty)."""
    found = await placements(conn, {schema: schema})
    return found[0].node if found else None


async def move_schema(conn: AsyncConnection, schema: str, node: Node, mode: str) -> None:
    """Move every shard of ``schema`` to ``node`` (outside a transaction block: the
    logical replication Citus moves with commits as it goes)."""
    await conn.execute(
        text(
            "SELECT pg_catalog.citus_schema_move(to_regnamespace(:schema), "
            "CAST(:node AS integer), CAST(:mode AS citus.shard_transfer_mode))"
        ),
        {"schema": schema, "node": node.node_id, "mode": mode},
    )


async def rebalance_plan(conn: AsyncConnection, tenants: dict[str, str]) -> list[PlannedMove]:
    """The moves Citus's rebalancer would make now, one per schema (``tenants``: schema
    -> tenant id; a schema no tenant owns is listed with ``tenant_id`` ``None``)."""
    return [
        PlannedMove(
            tenant_id=tenants.get(row.schema),
            schema=row.schema,
            bytes=int(row.bytes or 0),
            source=row.source,
            target=row.target,
        )
        for row in await conn.execute(_PLAN)
    ]


async def rebalance(conn: AsyncConnection, mode: str) -> None:
    """Run Citus's rebalancer to the end (outside a transaction block)."""
    await conn.execute(
        text(
            "SELECT pg_catalog.rebalance_table_shards("
            "shard_transfer_mode => CAST(:mode AS citus.shard_transfer_mode))"
        ),
        {"mode": mode},
    )
