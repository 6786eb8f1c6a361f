"""FixtureMonitor: the state of each tenant at a glance (rows, fixtures, size, last load)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tenancy_fixtures.errors import TenantNotFoundError
from tenancy_fixtures.store import control_plane, migration_ledger
from tenancy_fixtures.store.base import TenantStore
from tenancy_fixtures.store.control_plane import AppliedFixture, TenantRecord

__all__ = ["FixtureMonitor", "TenantStatus"]


@dataclass(frozen=True)
class TenantStatus:
    """One tenant's state: registry, fixtures applied, rows per table, bytes on disk."""

    tenant: TenantRecord
    config: dict[str, Any] | None
    fixtures: dict[str, AppliedFixture]
    row_counts: dict[str, int]
    storage_bytes: int
    last_load: dict[str, Any] | None = field(default=None)
    #: The schema revision the migration ledger records (``None``: no history).
    revision: str | None = None

    @property
    def total_rows(self) -> int:
        """Rows across all tables."""
        return sum(self.row_counts.values())

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        last = dict(self.last_load) if self.last_load else None
        if last:
            last = {k: iso(v) if isinstance(v, datetime) else v for k, v in last.items()}
        return {
            "tenant_id": self.tenant.tenant_id,
            "tier": self.tenant.tier,
            "revision": self.revision,
            "status": self.tenant.status,
            "created_at": iso(self.tenant.created_at),
            "config": self.config,
            "fixtures": {
                name: {
                    "kind": f.kind,
                    "checksum": f.checksum,
                    "rows": f.row_counts,
                    "applied_at": iso(f.applied_at),
                }
                for name, f in self.fixtures.items()
            },
            "row_counts": self.row_counts,
            "total_rows": self.total_rows,
            "storage_bytes": self.storage_bytes,
            "last_load": last,
        }


class FixtureMonitor:
    """Reads tenant status from the store (read only)."""

    def __init__(self, store: TenantStore) -> None:
        self.store = store

    async def status(self, tenant_id: str) -> TenantStatus:
        """The current status of one tenant."""
        await self.store.initialize()
        async with self.store.control(readonly=True) as conn:
            record = await control_plane.get_tenant(conn, tenant_id)
            if record is None:
                raise TenantNotFoundError(tenant_id)
            config = await control_plane.load_config(conn, tenant_id)
            last = await control_plane.last_run(conn, tenant_id, "load")
            _, revision = await migration_ledger.current_revision(conn, tenant_id)
        async with self.store.session(tenant_id, readonly=True) as session:
            counts = await control_plane.count_rows(
                session.connection, session.metadata.sorted_tables
            )
            fixtures = await control_plane.applied_fixtures(session.connection, tenant_id)
        size = await self.store.storage_bytes(tenant_id)
        history = self.store.history
        if revision is None and history is not None:
            revision = history.base
        return TenantStatus(record, config, fixtures, counts, size, last, revision)
