"""Placing tenants on a distributed store: where each one is, moving one, rebalancing.

Moves and rebalances are audited: the record names the nodes (and, for a rebalance,
each tenant moved), so the log says where a tenant has lived. A store that keeps every
tenant on one server refuses them with a :class:`StorageError` saying so.
"""

from __future__ import annotations

from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.store import TenantStore, control_plane
from tenancy_fixtures.store.placement import Node, PlannedMove, TenantPlacement
from tenancy_fixtures.tenancy.audit import audited
from tenancy_fixtures.tenancy.tenants import get_tenant

__all__ = ["move_tenant", "placements", "rebalance"]

log = get_logger("tenancy_fixtures.tenancy.placement")


async def placements(store: TenantStore, *, prefix: str | None = None) -> list[TenantPlacement]:
    """Which node holds each registered tenant (ids starting with ``prefix``), and its size."""
    await store.initialize()
    async with store.control(readonly=True) as conn:
        tenants = await control_plane.list_tenants(conn, prefix=prefix)
    return await store.placements([t.tenant_id for t in tenants])


async def move_tenant(
    store: TenantStore, tenant_id: str, node: str, *, actor: str, mode: str = "auto"
) -> tuple[Node, Node]:
    """Move a registered tenant's storage to ``node`` (a node id or ``host:port``) while
    it stays readable and writable; returns the nodes it was on and is on now."""
    await get_tenant(store, tenant_id)
    async with audited(store, actor=actor, action="tenant.move", tenant_id=tenant_id) as audit:
        source, target = await store.move_tenant(tenant_id, node, mode=mode)
        await audit.record(
            outcome="ok" if source != target else "unchanged",
            detail={"from": str(source), "to": str(target), "mode": mode},
        )
    log.info("tenant_moved", tenant_id=tenant_id, source=str(source), target=str(target))
    return source, target


async def rebalance(store: TenantStore, *, actor: str, mode: str = "auto") -> list[PlannedMove]:
    """Make the rebalancer's moves (planned first, the plan audited); returns them."""
    plan = await store.rebalance_plan()
    async with audited(store, actor=actor, action="cluster.rebalance", tenant_id=None) as audit:
        if plan:
            await store.rebalance(mode=mode)
        await audit.record(
            outcome="ok" if plan else "unchanged",
            detail={"mode": mode, "moves": [m.as_dict() for m in plan]},
        )
    log.info("rebalanced", moves=len(plan))
    return plan
