"""Usage: what a tenant holds, measured in a transaction, and which table a limit counts.

A limit counts rows of a table only where a domain says so: the engine knows the
``storage`` limit (bytes of the tenant's storage) and nothing of ``users`` or
``workspaces``; the built-in domain registers ``LimitCounter("users", "users")`` the
way it registers its loaders. Limits nothing counts (rates such as ``api_calls``) are
not checked by loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tenancy_fixtures.store import control_plane
from tenancy_fixtures.store.base import TenantSession
from tenancy_fixtures.store.usage_ledger import UsageSnapshot

__all__ = [
    "LIMIT_COUNTERS",
    "STORAGE_LIMIT",
    "LimitCounter",
    "UsageSnapshot",
    "measure_usage",
    "register_limit_counter",
]

#: The limit the engine counts itself: bytes of the tenant's storage.
STORAGE_LIMIT = "storage"


@dataclass(frozen=True)
class LimitCounter:
    """Limit ``limit`` of a tenant's config counts the rows of table ``table``."""

    limit: str
    table: str


#: The registered counters by limit name (see :func:`register_limit_counter`).
LIMIT_COUNTERS: dict[str, LimitCounter] = {}


def register_limit_counter(counter: LimitCounter) -> LimitCounter:
    """Count limit ``counter.limit`` as the rows of ``counter.table`` (the last
    registration of a limit wins)."""
    LIMIT_COUNTERS[counter.limit] = counter
    return counter


def counters(row_counts: Mapping[str, int], storage_bytes: int) -> dict[str, int]:
    """The value of every limit something counts, given a tenant's rows and bytes."""
    found = {STORAGE_LIMIT: storage_bytes}
    for counter in LIMIT_COUNTERS.values():
        if counter.table in row_counts:
            found[counter.limit] = row_counts[counter.table]
    return found


async def measure_usage(
    session: TenantSession,
    *,
    source: str = "snapshot",
    run_id: str | None = None,
    derived_tables: frozenset[str] = frozenset(),
) -> UsageSnapshot:
    """The tenant's usage as ``session``'s transaction sees it (its own writes included)."""
    rows = await control_plane.count_rows(session.connection, session.metadata.sorted_tables)
    size = await session.storage_bytes()
    return UsageSnapshot(
        tenant_id=session.tenant_id,
        taken_at=control_plane.utcnow(),
        storage_bytes=size,
        row_counts=rows,
        counters=counters(rows, size),
        source=source,
        run_id=run_id,
        derived_tables=derived_tables,
    )
