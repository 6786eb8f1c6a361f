"""FixtureMonitor: the state of each tenant at a glance (rows, fixtures, size, last
load), its usage history, forecasts of its limits, and the fleet's refusals."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from tenancy_fixtures.errors import PermissionDeniedError, StorageError, TenantNotFoundError
from tenancy_fixtures.monitoring.error_analysis import ErrorAnalysis, analyse_errors
from tenancy_fixtures.monitoring.forecast import TenantForecast, forecast_tenant
from tenancy_fixtures.monitoring.limits import LimitCheck, check_limits, config_limits
from tenancy_fixtures.monitoring.usage import UsageSnapshot, measure_usage
from tenancy_fixtures.store import control_plane, migration_ledger, usage_ledger
from tenancy_fixtures.store.base import TenantStore
from tenancy_fixtures.store.control_plane import AppliedFixture, TenantRecord

__all__ = ["FixtureMonitor", "TenantStatus", "TenantUsage"]

#: How a status's ``problem`` starts when the tenant's storage is there but fails.
UNREADABLE = "unreadable"
#: Snapshots (and loads) per tenant a forecast reads, newest first.
HISTORY_POINTS = 500


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
    #: Tables computed from others: counted as ``derived_rows``, not ``rows``.
    derived_tables: frozenset[str] = frozenset()
    #: Why nothing of the tenant could be read (its storage is missing): no fixtures,
    #: rows or bytes are known then.
    problem: str | None = None

    @property
    def total_rows(self) -> int:
        """Rows across all tables, derived ones included."""
        return sum(self.row_counts.values())

    @property
    def rows(self) -> int:
        """Rows of the data tables (what loads report as ``rows``)."""
        return self.total_rows - self.derived_rows

    @property
    def derived_rows(self) -> int:
        """Rows of derived tables."""
        return sum(n for t, n in self.row_counts.items() if t in self.derived_tables)

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
            "rows": self.rows,
            "derived_rows": self.derived_rows,
            "derived_tables": sorted(self.derived_tables & set(self.row_counts)),
            "total_rows": self.total_rows,
            "storage_bytes": self.storage_bytes,
            "last_load": last,
            "problem": self.problem,
        }


@dataclass(frozen=True)
class TenantUsage:
    """A tenant's newest usage snapshot (``None``: none taken yet) and its counted
    limits checked against it."""

    tenant_id: str
    snapshot: UsageSnapshot | None
    limits: LimitCheck | None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "tenant_id": self.tenant_id,
            "snapshot": self.snapshot.as_dict() if self.snapshot else None,
            "limits": [u.as_dict() for u in self.limits.uses] if self.limits else [],
            "warnings": [u.limit for u in self.limits.warnings] if self.limits else [],
            "breaches": [u.limit for u in self.limits.breaches] if self.limits else [],
        }


class FixtureMonitor:
    """Reads tenant status, usage history and refusals from the store; takes usage
    snapshots. ``derived_tables`` says which tables are computed (asked at each call,
    since domains may register later)."""

    def __init__(
        self,
        store: TenantStore,
        *,
        derived_tables: Callable[[], frozenset[str]] = frozenset,
    ) -> None:
        self.store = store
        self.derived_tables = derived_tables

    async def status(self, tenant_id: str, *, report_missing: bool = False) -> TenantStatus:
        """The current status of one tenant. A registered tenant whose storage is missing
        is a :class:`TenantStorageMissingError`, or with ``report_missing`` a status whose
        ``problem`` says so (for listings that go on with the other tenants); so is, with
        ``report_missing``, one whose storage cannot be read (a table missing, say), but
        not a lost connection or a missing privilege, which every tenant would meet."""
        await self.store.initialize()
        async with self.store.control(readonly=True) as conn:
            record = await control_plane.get_tenant(conn, tenant_id)
            if record is None:
                raise TenantNotFoundError(tenant_id)
            config = await control_plane.load_config(conn, tenant_id)
            last = await control_plane.last_run(conn, tenant_id, "load")
            _, revision = await migration_ledger.current_revision(conn, tenant_id)
        history = self.store.history
        if revision is None and history is not None:
            revision = history.base
        found = partial(TenantStatus, record, config, last_load=last, revision=revision)
        try:
            async with self.store.session(tenant_id, readonly=True) as session:
                counts = await control_plane.count_rows(
                    session.connection, session.metadata.sorted_tables
                )
                fixtures = await control_plane.applied_fixtures(session.connection, tenant_id)
        except TenantNotFoundError as exc:
            missing = await self.store.missing_storage(tenant_id)
            if missing is None:
                raise
            if not report_missing:
                raise missing from exc
            return found({}, {}, 0, problem=missing.problem)
        except StorageError as exc:
            if not report_missing or exc.transient or isinstance(exc, PermissionDeniedError):
                raise
            return found({}, {}, 0, problem=f"{UNREADABLE}: {exc.message}")
        size = await self.store.storage_bytes(tenant_id)
        return found(fixtures, counts, size, derived_tables=self.derived_tables())

    async def snapshot(self, tenant_id: str) -> UsageSnapshot:
        """Measure a tenant's usage now and add it to its history."""
        await self.store.initialize()
        async with self.store.session(tenant_id) as session:
            if not await control_plane.lock_tenant(session.connection, tenant_id):
                raise TenantNotFoundError(tenant_id)
            usage = await measure_usage(session, derived_tables=self.derived_tables())
            await usage_ledger.record_snapshot(session.connection, usage)
        return usage

    async def history(
        self, tenants: Sequence[str] | None = None, *, since: datetime | None = None
    ) -> dict[str, list[UsageSnapshot]]:
        """Usage snapshots per tenant, oldest first (the newest few hundred)."""
        await self.store.initialize()
        async with self.store.control(readonly=True) as conn:
            return await usage_ledger.read_snapshots(
                conn,
                tenants=tenants,
                since=since,
                limit=HISTORY_POINTS,
                derived_tables=self.derived_tables(),
            )

    async def latest_usage(
        self, tenants: Sequence[str], *, warn_ratio: float, skip_missing: bool = False
    ) -> list[TenantUsage]:
        """Each tenant's newest snapshot against its config's limits, in the order given
        (:class:`TenantNotFoundError` for one not registered, or with ``skip_missing``
        left out: a page of a listing, dropped since it was listed)."""
        await self.store.initialize()
        async with self.store.control(readonly=True) as conn:
            newest = await usage_ledger.read_latest_snapshots(
                conn, tenants, derived_tables=self.derived_tables()
            )
            found = []
            for tenant_id in tenants:
                config = await control_plane.load_config(conn, tenant_id)
                if config is None and await control_plane.get_tenant(conn, tenant_id) is None:
                    if skip_missing:
                        continue
                    raise TenantNotFoundError(tenant_id)
                snapshot = newest.get(tenant_id)
                check = (
                    check_limits(snapshot, config_limits(config), warn_ratio=warn_ratio)
                    if snapshot is not None
                    else None
                )
                found.append(TenantUsage(tenant_id, snapshot, check))
        return found

    async def forecast(
        self,
        tenants: Sequence[str] | None = None,
        *,
        confidence: float = 0.9,
        skip_missing: bool = False,
    ) -> list[TenantForecast]:
        """Each tenant's limit forecasts and anomalies, by id (every registered tenant
        unless ``tenants`` names some). A named tenant not registered is a
        :class:`TenantNotFoundError`, or with ``skip_missing`` left out (a page of a
        listing: dropped since it was listed)."""
        await self.store.initialize()
        async with self.store.control(readonly=True) as conn:
            listed = [t.tenant_id for t in await control_plane.list_tenants(conn)]
            registered = set(listed)
            ids = listed if tenants is None else list(tenants)
            if skip_missing:
                ids = [t for t in ids if t in registered]
            for tenant_id in ids:
                if tenant_id not in registered:
                    raise TenantNotFoundError(tenant_id)
            # The whole fleet is read whole, not named a tenant at a time: a query with a
            # parameter per tenant is refused past 32,767 of them (PostgreSQL).
            named = None if tenants is None else ids
            snapshots = await usage_ledger.read_snapshots(
                conn, tenants=named, limit=HISTORY_POINTS, derived_tables=self.derived_tables()
            )
            runs = await usage_ledger.read_load_runs(conn, tenants=named, limit=HISTORY_POINTS)
            configs = await control_plane.load_configs(conn, named)
        return [
            forecast_tenant(
                t,
                snapshots.get(t, []),
                config_limits(configs.get(t)),
                runs.get(t, []),
                confidence=confidence,
            )
            for t in ids
        ]

    async def errors(self, since: datetime) -> ErrorAnalysis:
        """Refusals and failures since ``since``, grouped by tenant, rule and table."""
        await self.store.initialize()
        async with self.store.control(readonly=True) as conn:
            records = await usage_ledger.read_refusals(conn, since=since)
        return analyse_errors(records, since=since)
