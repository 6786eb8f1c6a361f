"""FixtureManager: the front door that provisions, loads, checks and removes tenants.

It only orchestrates: tenant lifecycle lives in :mod:`tenancy_fixtures.tenants`,
fixtures in :mod:`tenancy_fixtures.fixtures` and the loaders, storage behind the
:class:`TenantStore`. ``FixtureManager()`` with no arguments uses the embedded SQLite
default (or whatever ``TENANCY_*`` settings say).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import MetaData

from tenancy_fixtures import control_plane
from tenancy_fixtures.config import ConfigFixture, TenantConfig
from tenancy_fixtures.config_cache import ConfigCache, open_config_cache
from tenancy_fixtures.control_plane import AuditRecord, TenantRecord
from tenancy_fixtures.errors import FixtureError, TenancyFixturesError
from tenancy_fixtures.fixtures import FixtureResult, apply_fixtures
from tenancy_fixtures.loaders import DataLoader
from tenancy_fixtures.loaders.data_loader import ProgressCallback, locate_violation
from tenancy_fixtures.loaders.fixture_sets import open_fixture_set
from tenancy_fixtures.monitoring.metrics import Metrics
from tenancy_fixtures.monitoring.monitor import FixtureMonitor, TenantStatus
from tenancy_fixtures.monitoring.performance import PerformanceTracker
from tenancy_fixtures.retrying import with_retries
from tenancy_fixtures.schema import SchemaFixture
from tenancy_fixtures.settings import Settings, load_settings
from tenancy_fixtures.store import TenantStore, open_store
from tenancy_fixtures.store.base import WriteCounts
from tenancy_fixtures.templates import TemplateDirectory
from tenancy_fixtures.tenant_ids import validate_tenant_id
from tenancy_fixtures.tenant_template import TenantTemplate, sort_by_dependencies
from tenancy_fixtures.tenants import (
    TenantFixture,
    audit_failure,
    create_tenant,
    drop_tenant,
    get_tenant,
    list_tenants,
)
from tenancy_fixtures.validation.integrity import DataIntegrityValidator, IntegrityReport

__all__ = ["FixtureManager", "LoadReport", "ManyLoadReport"]

log = structlog.get_logger("tenancy_fixtures.manager")


@dataclass(frozen=True)
class LoadReport:
    """What one ``load_fixtures`` call did to one tenant."""

    tenant_id: str
    run_id: str
    results: Sequence[FixtureResult]
    seconds: float
    stages: Mapping[str, float] = field(default_factory=dict)
    #: Per table: rows inserted, updated, and given but already as they were.
    writes: Mapping[str, WriteCounts] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """Whether any fixture was applied (``False``: everything was already in place)."""
        return any(r.status == "applied" for r in self.results)

    @property
    def row_counts(self) -> dict[str, int]:
        """Rows written per table by this call."""
        counts: dict[str, int] = {}
        for result in self.results:
            if result.status == "applied":
                for table, rows in result.row_counts.items():
                    counts[table] = counts.get(table, 0) + rows
        return counts

    @property
    def rows(self) -> int:
        """Rows written by this call."""
        return sum(self.row_counts.values())


@dataclass(frozen=True)
class ManyLoadReport:
    """One fixture load into many tenants: a report per tenant that loaded, an error per
    tenant that did not."""

    reports: Mapping[str, LoadReport]
    failures: Mapping[str, TenancyFixturesError]
    seconds: float

    @property
    def rows(self) -> int:
        """Rows written across all tenants."""
        return sum(r.rows for r in self.reports.values())

    @property
    def ok(self) -> bool:
        """Whether every tenant loaded."""
        return not self.failures


class FixtureManager:
    """Provision tenants and load their fixtures: isolated, validated, audited."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        metadata: MetaData | None = None,
        store: TenantStore | None = None,
        cache: ConfigCache | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.templates = TemplateDirectory(self.settings.template_dir)
        self.store = store or open_store(self.settings, metadata)
        self.cache = cache or open_config_cache(self.settings)
        self.config = ConfigFixture(
            self.settings, templates=self.templates, store=self.store, cache=self.cache
        )
        self.schema = SchemaFixture(self.store.metadata)
        self.monitor = FixtureMonitor(self.store)
        self.metrics = Metrics()
        self._tenant_template: TenantTemplate | None = None

    @property
    def tenant_template(self) -> TenantTemplate:
        """The validated tenant template (read once)."""
        if self._tenant_template is None:
            self._tenant_template = TenantTemplate.load(self.templates)
        return self._tenant_template

    async def create_tenant(
        self, tenant: str | TenantFixture, *, tier: str | None = None
    ) -> TenantConfig:
        """Create an isolated tenant: storage, schema and config; its tables stay empty.

        Raises :class:`InvalidTenantIdError` before touching storage for a bad id and
        :class:`TenantAlreadyExistsError` if the tenant exists.
        """
        started = time.perf_counter()
        if isinstance(tenant, str):
            tenant = TenantFixture(tenant_id=tenant, tier=tier or "free")
        config_fixture = self.config.for_tenant(tenant)
        config = await config_fixture.resolve_audited(tenant, action="tenant.create")
        outcome = "error"
        try:
            await create_tenant(
                self.store,
                tenant.tenant_id,
                tier=config.tier,
                structural=[self.schema, config_fixture],
                actor=self.settings.actor,
            )
            outcome = "ok"
        finally:
            self.metrics.observe("create", outcome, time.perf_counter() - started)
        await self.config.invalidate(tenant.tenant_id, version=config_fixture.saved_version)
        return config

    async def warm_up(self, spares: int) -> int:
        """Prepare fast provisioning: keep ``spares`` pre-built schemas on PostgreSQL (a
        new tenant then takes one by renaming it); on SQLite, build the template file a
        new tenant's file is copied from. Returns how many spares were created."""
        created = await self.store.warm_up(spares)
        log.info("warmed_up", spares=spares, created=created)
        return created

    async def get_tenant(self, tenant_id: str) -> TenantRecord:
        """The registry record of a tenant."""
        return await get_tenant(self.store, tenant_id)

    async def list_tenants(self, *, prefix: str | None = None) -> list[TenantRecord]:
        """Every registered tenant, by id."""
        return await list_tenants(self.store, prefix=prefix)

    async def get_tenant_config(self, tenant_id: str) -> TenantConfig:
        """A tenant's config, through the cache."""
        return await self.config.get_tenant_config(tenant_id)

    async def apply_tenant_config(self, tenant: TenantFixture) -> TenantConfig:
        """Change a tenant's tier, features, limits or settings (audited, cache invalidated)."""
        return await self.config.apply_tenant_config(tenant)

    def data_fixtures(self, tier: str, source: Path | str | None = None) -> list[DataLoader]:
        """The data fixtures a load would apply: the tier's from the template, or ``source``."""
        if source is not None:
            return [
                DataLoader(
                    source, metadata=self.store.metadata, batch_size=self.settings.batch_size
                )
            ]
        return self.tenant_template.data_fixtures(
            tier,
            self.templates,
            metadata=self.store.metadata,
            batch_size=self.settings.batch_size,
        )

    async def load_fixtures(
        self,
        tenant_id: str,
        source: Path | str | None = None,
        *,
        fixtures: Sequence[DataLoader] | None = None,
        progress: ProgressCallback | None = None,
        force: bool = False,
    ) -> LoadReport:
        """Load a tenant's data fixtures in one transaction: all of them, or nothing.

        Without ``source`` the fixtures come from the tenant's tier in the tenant
        template; with it, the fixture set at ``source`` is loaded. Fixtures whose
        checksum is already recorded are skipped, so loading twice changes nothing.
        """
        validate_tenant_id(tenant_id)
        started = time.perf_counter()
        run_id = control_plane.new_run_id()
        tracker = PerformanceTracker()
        bound = log.bind(tenant_id=tenant_id, run_id=run_id)
        started_at = control_plane.utcnow()
        try:
            record = await get_tenant(self.store, tenant_id)
            with tracker.stage("plan"):
                loaders = sort_by_dependencies(
                    list(fixtures)
                    if fixtures is not None
                    else self.data_fixtures(record.tier, source),
                    self.store.metadata,
                )
                for loader in loaders:
                    loader.progress = progress
                    loader.tracker = tracker
                    loader.checksum()

            async def attempt() -> list[FixtureResult]:
                async with self.store.session(tenant_id) as session, session.bulk_load():
                    results = await apply_fixtures(session, loaders, run_id=run_id, force=force)
                    await self._record_load(
                        session.connection, tenant_id, run_id, results, started_at, tracker
                    )
                    return results

            with tracker.stage("transaction"):
                try:
                    results = await with_retries(attempt)
                except FixtureError as exc:
                    exc.tenant_id = exc.tenant_id or tenant_id
                    locate_violation(exc, loaders)
                    raise
        except Exception as exc:
            self.metrics.observe("load", "error", time.perf_counter() - started)
            await audit_failure(
                self.store,
                actor=self.settings.actor,
                action="fixtures.load",
                tenant_id=tenant_id,
                error=exc,
                run_id=run_id,
            )
            if isinstance(exc, TenancyFixturesError):
                bound.info("load_refused", error=str(exc))
            else:
                bound.error("load_failed", exc_info=exc)
            raise
        writes: dict[str, WriteCounts] = {}
        for loader in loaders:
            for table, counts in loader.write_counts.items():
                writes[table] = writes.get(table, WriteCounts()) + counts
        report = LoadReport(
            tenant_id, run_id, results, time.perf_counter() - started, tracker.summary(), writes
        )
        self.metrics.observe("load", "ok" if report.changed else "unchanged", report.seconds)
        for table, rows in report.row_counts.items():
            self.metrics.rows_loaded.labels(table).inc(rows)
        bound.info(
            "fixtures_loaded",
            rows=report.rows,
            changed=report.changed,
            seconds=round(report.seconds, 3),
        )
        return report

    async def load_fixtures_many(
        self,
        tenant_ids: Sequence[str],
        source: Path | str | None = None,
        *,
        progress_for: Mapping[str, ProgressCallback] | None = None,
        force: bool = False,
        concurrency: int | None = None,
    ) -> ManyLoadReport:
        """Load fixtures into many tenants, ``concurrency`` at a time (default: settings).

        Each tenant's load is its own transaction; one tenant failing does not stop
        or undo the others — the combined report lists what failed and why. On SQLite
        tenants load one at a time (they share the control-plane file's write lock).
        """
        for tenant_id in tenant_ids:
            validate_tenant_id(tenant_id)
        limit = concurrency or self.settings.concurrency
        if self.store.backend == "sqlite":
            limit = 1
        gate = asyncio.Semaphore(limit)
        fixture_set = (
            open_fixture_set(source, metadata=self.store.metadata) if source is not None else None
        )
        started = time.perf_counter()

        async def one(tenant_id: str) -> LoadReport | TenancyFixturesError:
            async with gate:
                try:
                    # One set object for all: each file's checksum is computed once.
                    shared = (
                        [
                            DataLoader(
                                fixture_set,
                                metadata=self.store.metadata,
                                batch_size=self.settings.batch_size,
                            )
                        ]
                        if fixture_set is not None
                        else None
                    )
                    return await self.load_fixtures(
                        tenant_id,
                        fixtures=shared,
                        progress=(progress_for or {}).get(tenant_id),
                        force=force,
                    )
                except TenancyFixturesError as exc:
                    return exc

        outcomes = await asyncio.gather(*(one(t) for t in tenant_ids))
        return ManyLoadReport(
            reports={r.tenant_id: r for r in outcomes if isinstance(r, LoadReport)},
            failures={
                t: o
                for t, o in zip(tenant_ids, outcomes, strict=True)
                if isinstance(o, TenancyFixturesError)
            },
            seconds=time.perf_counter() - started,
        )

    async def _record_load(
        self,
        conn: Any,
        tenant_id: str,
        run_id: str,
        results: Sequence[FixtureResult],
        started_at: Any,
        tracker: PerformanceTracker,
    ) -> None:
        changed = any(r.status == "applied" for r in results)
        detail: dict[str, Any] = {
            r.fixture: {"status": r.status, "checksum": r.checksum, "rows": dict(r.row_counts)}
            for r in results
        }
        await control_plane.record_run(
            conn,
            run_id=run_id,
            tenant_id=tenant_id,
            operation="load",
            status="ok" if changed else "unchanged",
            started_at=started_at,
            stages=tracker.summary(),
            detail=detail,
        )
        await control_plane.append_audit(
            conn,
            actor=self.settings.actor,
            action="fixtures.load",
            tenant_id=tenant_id,
            outcome="ok" if changed else "unchanged",
            run_id=run_id,
            detail=detail,
        )

    async def validate_tenant(self, tenant_id: str) -> IntegrityReport:
        """Check a tenant's data after loading: row counts, orphans, missing rows."""
        await get_tenant(self.store, tenant_id)
        return await DataIntegrityValidator(self.store).check(tenant_id)

    async def tenant_status(self, tenant_id: str) -> TenantStatus:
        """Registry, config, applied fixtures, row counts and size of one tenant."""
        validate_tenant_id(tenant_id)
        return await self.monitor.status(tenant_id)

    async def drop_tenant(self, tenant_id: str) -> None:
        """Remove a tenant entirely: storage, registry rows and cached config."""
        started = time.perf_counter()
        outcome = "error"
        try:
            await drop_tenant(self.store, tenant_id, actor=self.settings.actor)
            outcome = "ok"
        finally:
            self.metrics.observe("drop", outcome, time.perf_counter() - started)
        await self.config.invalidate(tenant_id, dropped=True)

    async def audit_log(
        self, tenant_id: str | None = None, *, limit: int = 100
    ) -> list[AuditRecord]:
        """The newest audit records, for one tenant or all."""
        await self.store.initialize()
        async with self.store.control(readonly=True) as conn:
            return await control_plane.read_audit(conn, tenant_id=tenant_id, limit=limit)

    async def aclose(self) -> None:
        """Close the connections and cache this manager holds."""
        await self.cache.aclose()
        await self.store.dispose()

    async def __aenter__(self) -> FixtureManager:
        await self.store.initialize()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
