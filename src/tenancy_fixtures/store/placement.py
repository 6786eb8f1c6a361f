"""Where tenants live on a distributed store, and the moves that would rebalance them.

Plain data, the same whichever engine distributes the tenants (Citus today); a store
that keeps every tenant on one server has no placement (:meth:`TenantStore.placements`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Node", "PlannedMove", "TenantPlacement"]


@dataclass(frozen=True)
class Node:
    """A server of the cluster that holds tenants (a Citus worker)."""

    node_id: int
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class TenantPlacement:
    """One tenant's schema: the node holding its tables (``None``: it is not distributed
    and lives on the coordinator), how many tables, and their bytes on disk."""

    tenant_id: str
    schema: str
    node: Node | None
    tables: int
    bytes: int

    def as_dict(self) -> dict[str, Any]:
        """As plain data (for ``--json``)."""
        found = asdict(self)
        found["node"] = None if self.node is None else str(self.node)
        found["node_id"] = None if self.node is None else self.node.node_id
        return found


@dataclass(frozen=True)
class PlannedMove:
    """One tenant the rebalancer would move, with its bytes, from one node to another."""

    tenant_id: str | None
    schema: str
    bytes: int
    source: str
    target: str

    def as_dict(self) -> dict[str, Any]:
        """As plain data (for ``--json``)."""
        return asdict(self)
