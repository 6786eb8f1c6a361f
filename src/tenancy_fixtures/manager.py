"""FixtureManager: the front door that provisions, loads, checks and removes tenants.

A thin facade: each method turns its arguments into a call of a use case — tenant
lifecycle in :mod:`tenancy_fixtures.tenancy.tenants`, loads in
:mod:`tenancy_fixtures.loading.load` (:class:`LoadOptions`), checks in
:mod:`tenancy_fixtures.validation` — each audited through
:func:`tenancy_fixtures.tenancy.audit.audited`. ``FixtureManager()`` with no arguments
uses the embedded SQLite default (or whatever ``TENANCY_*`` settings say).
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData

from tenancy_fixtures.errors import (
    ConfigError,
    MigrationError,
    PermissionDeniedError,
    RetentionIncompleteError,
    StorageError,
    TenancyFixturesError,
    TenantError,
    TenantNotFoundError,
    TenantStorageMissingError,
)
from tenancy_fixtures.fixtures.schema import SchemaFixture, tenant_metadata
from tenancy_fixtures.fixtures.templates import TemplateDirectory
from tenancy_fixtures.ids import validate_tenant_id
from tenancy_fixtures.loading.data_loader import DataLoader, ProgressCallback
from tenancy_fixtures.loading.derived import derived_tables
from tenancy_fixtures.loading.load import (
    LoadOptions,
    LoadReport,
    ManyLoadReport,
    load_many,
    load_tenant,
    open_fixtures,
)
from tenancy_fixtures.loading.planning import TenantTemplate
from tenancy_fixtures.loading.records import check_loadable
from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.migrations.report import MigrationReport
from tenancy_fixtures.migrations.runner import FleetOptions, migrate_fleet
from tenancy_fixtures.migrations.runner import ProgressCallback as MigrationProgress
from tenancy_fixtures.migrations.scripts import MigrationScripts, migration_scripts
from tenancy_fixtures.monitoring.catalog import check_catalog
from tenancy_fixtures.monitoring.error_analysis import ErrorAnalysis
from tenancy_fixtures.monitoring.forecast import TenantForecast
from tenancy_fixtures.monitoring.metrics import Metrics
from tenancy_fixtures.monitoring.monitor import FixtureMonitor, TenantStatus, TenantUsage
from tenancy_fixtures.monitoring.usage import UsageSnapshot
from tenancy_fixtures.settings import Settings, ValidationMode, load_settings
from tenancy_fixtures.store import (
    TenantStore,
    audit_chain,
    control_plane,
    migration_ledger,
    open_store,
)
from tenancy_fixtures.store.api_tokens import ApiToken
from tenancy_fixtures.store.audit_chain import ChainReport
from tenancy_fixtures.store.column_info import check_declarations
from tenancy_fixtures.store.control_plane import AuditFilter, AuditRecord, RunRecord, TenantRecord
from tenancy_fixtures.store.migration_ledger import LedgerEntry
from tenancy_fixtures.store.placement import Node, PlannedMove, TenantPlacement
from tenancy_fixtures.tenancy import data_keys, key_rotation, placement, tokens
from tenancy_fixtures.tenancy.audit import Observer, audited
from tenancy_fixtures.tenancy.config import ConfigFixture, TenantConfig
from tenancy_fixtures.tenancy.config_cache import ConfigCache, RedisConfigCache, open_config_cache
from tenancy_fixtures.tenancy.data_keys import TenantCipher
from tenancy_fixtures.tenancy.key_rotation import RewrapReport
from tenancy_fixtures.tenancy.tenants import (
    TenantFixture,
    count_tenants,
    create_tenant,
    drop_tenant,
    get_tenant,
    list_tenants,
)
from tenancy_fixtures.tenancy.tokens import IssuedToken
from tenancy_fixtures.validation.drift import DriftReport, check_drift
from tenancy_fixtures.validation.integrity import DataIntegrityValidator, IntegrityReport

if TYPE_CHECKING:
    # The compliance use cases (export, erasure, retention) are imported by the methods
    # that run them: every CLI command makes a manager, few of them need these.
    from tenancy_fixtures.compliance.erasure import ErasureMode, ErasureReport
    from tenancy_fixtures.compliance.erasure_check import ErasureCheck
    from tenancy_fixtures.compliance.export import ExportReport
    from tenancy_fixtures.compliance.retention import RetentionReport

__all__ = ["FixtureManager", "LoadOptions", "LoadReport", "ManyLoadReport"]

log = get_logger("tenancy_fixtures.manager")

#: How often the catalogue's size is looked at for the budget warning.
_CATALOG_EVERY_SECONDS = 60.0


class FixtureManager:
    """Provision tenants and load their fixtures: isolated, validated, audited."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        metadata: MetaData | None = None,
        migrations: str | Path | None = None,
        store: TenantStore | None = None,
        cache: ConfigCache | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.templates = TemplateDirectory(self.settings.template_dir)
        #: The schema's Alembic history (``migrations``: its directory, for your own
        #: ``metadata``); ``None`` for a schema without one.
        self.migrations = migration_scripts(
            self.settings, metadata_given=metadata is not None, location=migrations
        )
        if store is None:
            metadata = metadata if metadata is not None else tenant_metadata(self.settings)
            check_loadable(metadata)
            check_declarations(metadata)
            store = open_store(self.settings, metadata)
        self.store = store
        self.store.history = self.migrations
        self.cache = cache or open_config_cache(self.settings)
        self.config = ConfigFixture(
            self.settings,
            templates=self.templates,
            store=self.store,
            cache=self.cache,
            history=self.migrations,
        )
        self.schema = SchemaFixture(self.store.metadata, history=self.migrations)
        self.monitor = FixtureMonitor(self.store, derived_tables=derived_tables)
        self.metrics = Metrics()
        self._tenant_template: TenantTemplate | None = None
        self._catalog_read_at = -_CATALOG_EVERY_SECONDS

    def acting_as(self, actor: str) -> FixtureManager:
        """This manager with its audit records naming ``actor`` (the service: the
        request's token); store, cache, templates and metrics are shared."""
        view = copy.copy(self)
        view.settings = self.settings.model_copy(update={"actor": actor})
        view.config = copy.copy(self.config)
        view.config.settings = view.settings
        return view

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
        if not isinstance(tenant, TenantFixture):
            # A str becomes a fixture; anything else (an int, None) is an id refused here.
            tenant = TenantFixture(tenant_id=validate_tenant_id(tenant), tier=tier or "free")
        await self._watch_catalog(adding=tenant.tenant_id)
        config_fixture = self.config.for_tenant(tenant)
        config = await config_fixture.resolve_audited(tenant, action="tenant.create")
        await create_tenant(
            self.store,
            tenant.tenant_id,
            tier=config.tier,
            structural=[self.schema, config_fixture],
            actor=self.settings.actor,
            observe=self._observer("create"),
        )
        await self.config.invalidate(tenant.tenant_id, version=config_fixture.saved_version)
        return config

    async def warm_up(self, spares: int) -> int:
        """Prepare fast provisioning: keep ``spares`` pre-built schemas on PostgreSQL (a
        new tenant then takes one by renaming it); on SQLite, build the template file a
        new tenant's file is copied from. Returns how many spares were created."""
        await self.store.initialize()
        async with audited(
            self.store, actor=self.settings.actor, action="store.warm_up", tenant_id=None
        ) as audit:
            created = await self.store.warm_up(spares)
            await audit.record(
                outcome="ok" if created else "unchanged",
                detail={"spares": spares, "created": created},
            )
        log.info("warmed_up", spares=spares, created=created)
        return created

    async def placements(self, *, prefix: str | None = None) -> list[TenantPlacement]:
        """Which node holds each tenant and its size (a distributed store: Citus)."""
        return await placement.placements(self.store, prefix=prefix)

    async def move_tenant(
        self, tenant_id: str, node: str, *, mode: str = "auto"
    ) -> tuple[Node, Node]:
        """Move a tenant to ``node`` (node id or ``host:port``) online, audited; returns
        the nodes it was on and is on."""
        return await placement.move_tenant(
            self.store, tenant_id, node, actor=self.settings.actor, mode=mode
        )

    async def rebalance_plan(self) -> list[PlannedMove]:
        """The moves the cluster's rebalancer would make now (empty: balanced)."""
        return await self.store.rebalance_plan()

    async def rebalance(self, *, mode: str = "auto") -> list[PlannedMove]:
        """Even the tenants out over the nodes, audited; returns the moves made."""
        return await placement.rebalance(self.store, actor=self.settings.actor, mode=mode)

    async def get_tenant(self, tenant_id: str) -> TenantRecord:
        """The registry record of a tenant."""
        return await get_tenant(self.store, tenant_id)

    async def list_tenants(
        self,
        *,
        prefix: str | None = None,
        tier: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[TenantRecord]:
        """Registered tenants by id: those whose id starts with ``prefix``, of ``tier``,
        in ``status``, where given; ``limit`` of them from ``offset``."""
        await self._watch_catalog()
        return await list_tenants(
            self.store, prefix=prefix, tier=tier, status=status, limit=limit, offset=offset
        )

    async def count_tenants(
        self, *, prefix: str | None = None, tier: str | None = None, status: str | None = None
    ) -> int:
        """How many tenants :meth:`list_tenants` with these filters lists unpaged."""
        return await count_tenants(self.store, prefix=prefix, tier=tier, status=status)

    async def _watch_catalog(self, *, adding: str | None = None) -> None:
        """Warn past the catalogue budget (PostgreSQL; read at most once a minute).
        The store refuses a new tenant past the limit, however it is created."""
        now = time.monotonic()
        if now - self._catalog_read_at < _CATALOG_EVERY_SECONDS:
            return
        self._catalog_read_at = now
        await check_catalog(self.store, self.settings, adding=adding)

    async def get_tenant_config(self, tenant_id: str) -> TenantConfig:
        """A tenant's config, through the cache."""
        return await self.config.get_tenant_config(tenant_id)

    async def apply_tenant_config(
        self, tenant: TenantFixture, *, create: bool = False
    ) -> TenantConfig:
        """Change a tenant's tier, features, limits or settings (audited, cache invalidated).

        An unknown tenant is a :class:`TenantNotFoundError` (a mistyped id must not become
        a new tenant); ``create=True`` creates it, as :meth:`create_tenant` would.
        """
        return await self.config.apply_tenant_config(tenant, create=create)

    async def update_tenant_config(
        self,
        tenant_id: str,
        *,
        tier: str | None = None,
        features: Sequence[str] | None = None,
        limits: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> TenantConfig:
        """Change part of an existing tenant's config, keeping its other overrides (see
        :meth:`ConfigFixture.update_tenant_config`); audited, cache invalidated."""
        return await self.config.update_tenant_config(
            tenant_id, tier=tier, features=features, limits=limits, settings=settings
        )

    def data_fixtures(
        self,
        tier: str,
        source: Path | str | None = None,
        *,
        format: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> list[DataLoader]:
        """The data fixtures a load would apply: the tier's from the template, or those of
        ``source`` (a fixture set, or source files read by ``format`` or as detected)."""
        return open_fixtures(
            self.store.metadata,
            self.settings,
            tier,
            LoadOptions(source=source, format=format, options=options),
        )

    async def load_fixtures(
        self,
        tenant_id: str,
        source: Path | str | None = None,
        *,
        fixtures: Sequence[DataLoader] | None = None,
        progress: ProgressCallback | None = None,
        force: bool = False,
        format: str | None = None,
        options: Mapping[str, Any] | None = None,
        validation: ValidationMode | None = None,
        reject_dir: Path | str | None = None,
    ) -> LoadReport:
        """Load a tenant's data fixtures in one transaction: all of them, or nothing.

        Without ``source`` the fixtures come from the tenant's tier in the tenant
        template; with it, the fixture set at ``source`` is loaded. Fixtures whose
        checksum is already recorded are skipped, so loading twice changes nothing.

        ``validation`` (default: the ``validation_mode`` setting): ``"strict"`` refuses
        the whole load for any bad record, raising :class:`RecordsRefusedError` (a
        ``RecordError`` and a ``ValidationFailedError``) that lists every problem of the
        fixtures; ``"lenient"`` validates first and loads
        all but the bad records, which go to
        ``<reject_dir>/<tenant>-<plane>-<run_id>.jsonl`` (default directory: the
        ``reject_dir`` setting; ``plane``: this database's control-plane id).
        """
        return await self.load(
            tenant_id,
            LoadOptions(
                source=source,
                fixtures=fixtures,
                format=format,
                options=options,
                force=force,
                validation=validation,
                reject_dir=reject_dir,
                progress=progress,
            ),
        )

    async def load(self, tenant_id: str, options: LoadOptions | None = None) -> LoadReport:
        """:meth:`load_fixtures` with its options as one :class:`LoadOptions`."""
        return await load_tenant(
            self.store, self.settings, tenant_id, options, metrics=self.metrics
        )

    async def load_fixtures_many(
        self,
        tenant_ids: Sequence[str],
        source: Path | str | None = None,
        *,
        progress_for: Mapping[str, ProgressCallback] | None = None,
        force: bool = False,
        concurrency: int | None = None,
        format: str | None = None,
        options: Mapping[str, Any] | None = None,
        validation: ValidationMode | None = None,
        reject_dir: Path | str | None = None,
    ) -> ManyLoadReport:
        """Load fixtures into many tenants, ``concurrency`` at a time (default: settings).

        Each tenant's load is its own transaction; one tenant failing does not stop
        or undo the others — the combined report lists what failed and why. On SQLite
        tenants load one at a time (they share the control-plane file's write lock).
        ``validation`` and ``reject_dir`` are as for :meth:`load_fixtures` (one reject
        file per tenant).
        """
        return await self.load_many(
            tenant_ids,
            LoadOptions(
                source=source,
                format=format,
                options=options,
                force=force,
                validation=validation,
                reject_dir=reject_dir,
            ),
            progress_for=progress_for,
            concurrency=concurrency,
        )

    async def load_many(
        self,
        tenant_ids: Sequence[str],
        options: LoadOptions | None = None,
        *,
        progress_for: Mapping[str, ProgressCallback] | None = None,
        concurrency: int | None = None,
    ) -> ManyLoadReport:
        """:meth:`load_fixtures_many` with its options as one :class:`LoadOptions`."""
        return await load_many(
            self.store,
            self.settings,
            tenant_ids,
            options,
            progress_for=progress_for,
            concurrency=concurrency,
            metrics=self.metrics,
        )

    async def validate_tenant(
        self, tenant_id: str, *, record: bool = False, recompute_checksums: bool = False
    ) -> IntegrityReport:
        """Check a tenant's data (read only): orphans, duplicate keys, NOT NULL and CHECK
        violations, row counts and content checksums against its applied fixtures,
        isolation from other tenants, and storage against its limit.

        ``record``: store the report in the control plane as a ``validate`` run and
        audit it (``data.validate``); that takes the control plane's write lock.
        ``recompute_checksums``: read and hash every table again, also those whose rows
        PostgreSQL shows were written by their recorded loads only.
        """
        validator = DataIntegrityValidator(self.store, recompute_checksums=recompute_checksums)
        if not record:
            await get_tenant(self.store, tenant_id)
            report = await validator.check(tenant_id)
        else:
            async with audited(
                self.store, actor=self.settings.actor, action="data.validate", tenant_id=tenant_id
            ) as audit:
                await get_tenant(self.store, tenant_id)
                report = await validator.check(tenant_id)
                await validator.record(
                    report, actor=audit.actor, run_id=audit.run_id, started_at=audit.started_at
                )
        log.bind(tenant_id=tenant_id, run_id=report.run_id).info(
            "tenant_validated", ok=report.ok, failed=report.failed_checks
        )
        return report

    async def validate_all(
        self,
        *,
        record: bool = False,
        concurrency: int | None = None,
        recompute_checksums: bool = False,
    ) -> list[IntegrityReport]:
        """:meth:`validate_tenant` for every registered tenant, by id, and a failed
        ``registry`` report for each orphan: storage without a registry row, or a
        registry row without storage (not recorded: neither is a tenant to record for).

        ``concurrency`` tenants at a time (default: settings; one at a time on SQLite).
        A tenant dropped meanwhile is left out.
        """
        tenants = [t.tenant_id for t in await self.list_tenants()]
        limit = self.store.write_concurrency(concurrency or self.settings.concurrency)
        gate = asyncio.Semaphore(limit)

        async def one(tenant_id: str) -> IntegrityReport | None:
            async with gate:
                try:
                    return await self.validate_tenant(
                        tenant_id, record=record, recompute_checksums=recompute_checksums
                    )
                except TenantNotFoundError:
                    return None

        reports = await asyncio.gather(*(one(t) for t in tenants))
        orphans = await DataIntegrityValidator(self.store).check_registry()
        return sorted([*(r for r in reports if r is not None), *orphans], key=lambda r: r.tenant_id)

    async def migrate(
        self,
        tenants: Sequence[str] | None = None,
        *,
        to: str = "head",
        concurrency: int | None = None,
        canary: int = 0,
        keep_going: bool = False,
        dry_run: bool = False,
        sql: bool = False,
        progress: MigrationProgress | None = None,
    ) -> MigrationReport:
        """Move tenants' schemas to revision ``to`` (default: the head); every
        registered tenant unless ``tenants`` names some.

        Tenants already there are skipped from the ledger alone. Each tenant migrates
        in its own transaction; one that fails is rolled back alone and reported.
        ``canary``: that many tenants go first, and the run stops if any fails;
        without ``keep_going`` no tenant starts after a failure. ``dry_run`` only
        plans; ``sql`` captures the statements of the first pending tenant in a
        transaction that is rolled back. Check :attr:`MigrationReport.ok`.
        """
        tenants = _named_tenants(tenants)
        if canary < 0:  # pending[:-1]: every tenant but the last a canary
            raise ConfigError(f"canary must be 0 or more, not {canary}", key="canary")
        history = self._history()
        await self._watch_catalog()
        options = FleetOptions(
            tenants=tenants,
            to=to,
            concurrency=concurrency or self.settings.migrate_concurrency,
            canary=canary,
            keep_going=keep_going,
            dry_run=dry_run,
            sql=sql,
            actor=self.settings.actor,
        )
        if dry_run or sql:
            return await migrate_fleet(self.store, history, options, progress=progress)
        async with audited(
            self.store, actor=self.settings.actor, action="fleet.migrate", tenant_id=None
        ) as audit:
            options = replace(options, run_id=audit.run_id)
            report = await migrate_fleet(self.store, history, options, progress=progress)
            await audit.record(
                outcome="ok" if report.ok else "failed",
                detail={"to": to, "head": report.head, "counts": report.counts()},
            )
        return report

    async def migration_status(self, tenants: Sequence[str] | None = None) -> list[LedgerEntry]:
        """Each tenant's recorded schema revision and last migration attempt, by id
        (a tenant never migrated shows the history's first revision); a tenant named in
        ``tenants`` that does not exist is a :class:`TenantNotFoundError`."""
        tenants = _named_tenants(tenants)
        history = self._history()
        await self.store.initialize()
        async with self.store.control(readonly=True) as conn:
            entries = await migration_ledger.ledger(conn, tenants=tenants)
        return [replace(e, revision=e.revision or history.base) for e in entries]

    async def check_drift(
        self, tenants: Sequence[str] | None = None, *, report_missing: bool = False
    ) -> list[DriftReport]:
        """Compare each tenant's live schema (every registered one unless ``tenants``
        names some) with the schema definition: columns, types, nullability, indexes,
        unique, CHECK and foreign-key constraints (read only).

        A registered tenant whose storage is missing is a
        :class:`TenantStorageMissingError`, or with ``report_missing`` a report whose
        ``problem`` says so (the others are still compared); a tenant dropped meanwhile
        is left out when ``tenants`` is ``None``."""
        named = _named_tenants(tenants)
        ids = named if named is not None else [t.tenant_id for t in await self.list_tenants()]
        reports = []
        for tenant_id in ids:
            try:
                async with self.store.session(tenant_id, readonly=True) as session:
                    reports.append(await check_drift(self.store, session, self.migrations))
            except TenantStorageMissingError as exc:
                if not report_missing:
                    raise
                reports.append(DriftReport(tenant_id, None, problem=exc.problem))
            except TenantNotFoundError:
                if tenants is not None:
                    raise
        return reports

    def _history(self) -> MigrationScripts:
        if self.migrations is None:
            raise MigrationError(
                "this schema has no migration history: give FixtureManager(migrations=DIR) "
                "or set TENANCY_MIGRATIONS to an Alembic directory holding versions/"
            )
        return self.migrations

    async def tenant_status(self, tenant_id: str, *, report_missing: bool = False) -> TenantStatus:
        """Registry, config, applied fixtures, row counts and size of one tenant; if it is
        registered but its storage is missing, a :class:`TenantStorageMissingError`, or
        with ``report_missing`` a status whose ``problem`` says so."""
        validate_tenant_id(tenant_id)
        return await self.monitor.status(tenant_id, report_missing=report_missing)

    async def usage_snapshot(self, tenant_id: str) -> UsageSnapshot:
        """Measure one tenant's usage now (rows per table, bytes, the counters its limits
        name) and add it to its history; loads take one by themselves."""
        validate_tenant_id(tenant_id)
        return await self.monitor.snapshot(tenant_id)

    async def usage_snapshots(self, tenants: Sequence[str] | None = None) -> list[UsageSnapshot]:
        """:meth:`usage_snapshot` of each tenant (every registered one unless ``tenants``
        names some), one at a time; a tenant dropped meanwhile is left out, and so is
        one whose storage is missing, with a ``usage_snapshot_skipped`` warning. Of every
        tenant, one whose storage fails (a table missing, say) does not keep the others
        from being measured: a ``usage_snapshot_failed`` warning, and its error is raised
        once they are (a lost connection or a missing privilege at once)."""
        named = _named_tenants(tenants)
        ids = named if named is not None else [t.tenant_id for t in await self.list_tenants()]
        taken = []
        failed: StorageError | None = None
        for tenant_id in ids:
            try:
                taken.append(await self.usage_snapshot(tenant_id))
            except TenantNotFoundError as exc:
                if tenants is not None:
                    raise
                if isinstance(exc, TenantStorageMissingError):
                    log.warning("usage_snapshot_skipped", tenant_id=tenant_id, problem=exc.problem)
            except StorageError as exc:
                if tenants is not None or exc.transient or isinstance(exc, PermissionDeniedError):
                    raise
                log.warning("usage_snapshot_failed", tenant_id=tenant_id, error=str(exc))
                failed = failed or exc
        if failed is not None:
            raise failed
        return taken

    async def usage_history(
        self, tenant_id: str, *, since: datetime | None = None
    ) -> list[UsageSnapshot]:
        """One tenant's usage snapshots, oldest first (the newest 500)."""
        validate_tenant_id(tenant_id)
        return (await self.monitor.history([tenant_id], since=since)).get(tenant_id, [])

    async def latest_usage(
        self, tenants: Sequence[str], *, skip_missing: bool = False
    ) -> list[TenantUsage]:
        """Each tenant's newest usage snapshot and its counted limits checked against it
        (warnings at ``limit_warn_ratio``); a tenant never measured has no snapshot. A
        tenant not registered is a :class:`TenantNotFoundError`, or with
        ``skip_missing`` left out (one dropped since a listing named it)."""
        for tenant_id in tenants:
            validate_tenant_id(tenant_id)
        return await self.monitor.latest_usage(
            tenants, warn_ratio=self.settings.limit_warn_ratio, skip_missing=skip_missing
        )

    async def forecast(
        self,
        tenants: Sequence[str] | None = None,
        *,
        confidence: float = 0.9,
        skip_missing: bool = False,
    ) -> list[TenantForecast]:
        """Days until each tenant reaches each limit (Theil-Sen trend of its usage
        snapshots, Sen's ``confidence`` band) and anomalies in its loads' throughput,
        duration and growth; every registered tenant unless ``tenants`` names some.
        A named tenant not registered is a :class:`TenantNotFoundError`, or with
        ``skip_missing`` left out (one dropped since a listing named it).
        Sets the ``tenancy_days_to_limit`` and ``tenancy_anomaly`` gauges."""
        for tenant_id in tenants or ():
            validate_tenant_id(tenant_id)
        forecasts = await self.monitor.forecast(
            tenants, confidence=confidence, skip_missing=skip_missing
        )
        self.metrics.publish_forecasts(forecasts, fleet=tenants is None)
        return forecasts

    async def error_analysis(
        self, *, since: datetime | timedelta = timedelta(days=7)
    ) -> ErrorAnalysis:
        """Refused and failed operations since ``since`` (an instant, or how long ago),
        grouped by tenant, action, error, rule and table, with counts per day."""
        if isinstance(since, timedelta):
            since = control_plane.utcnow() - since
        return await self.monitor.errors(since)

    async def drop_tenant(self, tenant_id: str) -> None:
        """Remove a tenant entirely: storage, registry, run and fixture rows, reject files,
        cached config and its forecast gauges; its audit records keep a minimal trail
        without detail."""
        await drop_tenant(
            self.store, tenant_id, actor=self.settings.actor, observe=self._observer("drop")
        )
        self.metrics.forget_tenant(tenant_id)
        await self.config.forget(tenant_id)

    async def audit_log(
        self,
        tenant_id: str | None = None,
        *,
        limit: int = 100,
        offset: int = 0,
        where: AuditFilter | None = None,
    ) -> list[AuditRecord]:
        """The newest audit records, for one tenant or all, narrowed by ``where``
        (action, outcome, actor, time range); ``limit`` of them from ``offset``."""
        if tenant_id is not None:
            validate_tenant_id(tenant_id)
        await self.store.initialize()
        async with self.store.control(readonly=True) as conn:
            return await control_plane.read_audit(
                conn, tenant_id=tenant_id, limit=limit, offset=offset, where=where
            )

    async def count_audit(self, where: AuditFilter) -> int:
        """How many audit records ``where`` takes."""
        await self.store.initialize()
        async with self.store.control(readonly=True) as conn:
            return await control_plane.count_audit(conn, where)

    async def runs(
        self,
        tenant_id: str,
        *,
        operation: str | None = None,
        run_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[RunRecord], int]:
        """A tenant's recorded runs (loads, recorded validations...), newest first, and
        how many match in all; :class:`TenantNotFoundError` for an unknown tenant."""
        await get_tenant(self.store, tenant_id)
        async with self.store.control(readonly=True) as conn:
            return await control_plane.read_runs(
                conn, tenant_id, operation=operation, run_id=run_id, limit=limit, offset=offset
            )

    async def create_token(
        self, *, scope: str = "read", tenant_id: str | None = None, name: str = ""
    ) -> IssuedToken:
        """Issue a bearer token of the HTTP service (its secret is shown only here)."""
        return await tokens.create_token(
            self.store, actor=self.settings.actor, scope=scope, tenant_id=tenant_id, name=name
        )

    async def list_tokens(
        self, *, tenant_id: str | None = None, include_revoked: bool = False
    ) -> list[ApiToken]:
        """The service's tokens (without secrets), oldest first."""
        return await tokens.list_tokens(
            self.store, tenant_id=tenant_id, include_revoked=include_revoked
        )

    async def revoke_token(self, token_id: str) -> ApiToken:
        """Revoke a live token (audited)."""
        return await tokens.revoke_token(self.store, token_id, actor=self.settings.actor)

    async def authenticate_token(self, bearer: str) -> ApiToken | None:
        """The live token a bearer string proves, or ``None``."""
        return await tokens.authenticate(self.store, bearer)

    async def readiness(self) -> dict[str, str]:
        """Whether the database and (when configured) Redis answer: ``ok``, ``not
        configured``, ``not used`` (Redis with cache optimization off), or the reason
        each does not."""
        checks: dict[str, str] = {}
        try:
            await self.store.initialize()
            async with self.store.control(readonly=True) as conn:
                await control_plane.plane_id(conn)
            checks["database"] = "ok"
        except TenancyFixturesError as exc:
            checks["database"] = str(exc)
        if not self.settings.redis_url:
            checks["redis"] = "not configured"
        elif not self.settings.cache_optimization:
            checks["redis"] = "not used"
        elif isinstance(self.cache, RedisConfigCache):
            try:
                await self.cache.ping()
                checks["redis"] = "ok"
            except TenancyFixturesError as exc:
                checks["redis"] = str(exc)
        return checks

    async def verify_audit(self) -> ChainReport:
        """Walk the audit log's hash chain (read only); the report names the first
        broken link: a record updated, deleted, inserted or moved behind our back."""
        await self.store.initialize()
        async with self.store.control(readonly=True) as conn:
            return await audit_chain.verify(conn)

    async def audit_head(self) -> tuple[int, str]:
        """The audit chain's head (position, hash): anchor it elsewhere to detect a
        rewrite of the whole chain."""
        await self.store.initialize()
        async with self.store.control(readonly=True) as conn:
            current = await audit_chain.head(conn)
        return current if current is not None else (0, audit_chain.GENESIS)

    async def purge_expired(
        self,
        tenants: Sequence[str] | None = None,
        *,
        dry_run: bool = False,
        now: datetime | None = None,
    ) -> list[RetentionReport]:
        """Purge events older than each tenant's ``retention_days`` (every registered
        tenant unless ``tenants`` names some), in batches, each tenant audited as
        ``data.retention``; ``dry_run`` only counts. Which columns hold event times the
        schema declares (``info={"retention": "event_time"}``).

        Of many tenants, one that cannot be purged (its storage missing, its config or
        schema refused) does not stop the others: a :class:`RetentionIncompleteError`
        after them holds their reports and its error. A tenant dropped meanwhile is left
        out when ``tenants`` is ``None``.
        """
        named = _named_tenants(tenants)
        ids = named if named is not None else [t.tenant_id for t in await self.list_tenants()]
        reports = []
        failures: dict[str, TenancyFixturesError] = {}
        for tenant_id in ids:
            try:
                reports.append(await self._purge_one(tenant_id, dry_run=dry_run, now=now))
            except (TenantError, ConfigError) as exc:
                if type(exc) is TenantNotFoundError and tenants is None:
                    continue  # dropped meanwhile
                if len(ids) == 1:
                    raise
                failures[tenant_id] = exc
        if failures:
            verb = "counted" if dry_run else "purged"
            raise RetentionIncompleteError(reports, failures, verb=verb)
        return reports

    async def _purge_one(
        self, tenant_id: str, *, dry_run: bool, now: datetime | None
    ) -> RetentionReport:
        """:meth:`purge_expired` of one tenant; its storage missing is said so."""
        from tenancy_fixtures.compliance.retention import purge_expired

        await get_tenant(self.store, tenant_id)
        try:
            return await purge_expired(
                self.store, tenant_id, actor=self.settings.actor, now=now, dry_run=dry_run
            )
        except TenantNotFoundError as exc:
            missing = await self.store.missing_storage(tenant_id)
            if missing is None:
                raise
            raise missing from exc

    async def export_tenant(
        self,
        tenant_id: str,
        out: Path | str,
        *,
        subject: str | None = None,
        pseudonymise: bool = False,
    ) -> ExportReport:
        """Export the tenant's rows (or one ``subject``'s) to ``out`` as a fixture set
        with a manifest of row counts and checksums; ``pseudonymise`` replaces personal
        columns with keyed HMACs. Needs the tenant's ``data_export`` feature; audited as
        ``data.export``."""
        from tenancy_fixtures.compliance.export import export_tenant

        return await export_tenant(
            self.store,
            tenant_id,
            out,
            actor=self.settings.actor,
            subject=subject,
            pseudonymise=pseudonymise,
        )

    async def erase_subject(
        self, tenant_id: str, subject: str, *, mode: ErasureMode = "delete"
    ) -> ErasureReport:
        """Delete or pseudonymise one person's personal data across the tenant in one
        transaction (aggregates recomputed, audit details and reject files scrubbed);
        the receipt goes into the audit chain as ``data.erase``."""
        from tenancy_fixtures.compliance.erasure import erase_subject

        return await erase_subject(
            self.store, tenant_id, subject, actor=self.settings.actor, mode=mode, cache=self.cache
        )

    async def verify_erasure(self, tenant_id: str, subject: str) -> ErasureCheck:
        """Look for anything left of an erased ``subject``: tables, reject files, audit
        details, config and its cache."""
        from tenancy_fixtures.compliance.erasure_check import verify_erasure

        return await verify_erasure(self.store, tenant_id, subject, cache=self.cache)

    async def tenant_cipher(self, tenant_id: str) -> TenantCipher:
        """The cipher of a tenant's data key: decrypts its stored credentials and
        encrypted columns (its key is made now if it has none; needs
        ``TENANCY_SECRET_KEY``)."""
        await get_tenant(self.store, tenant_id)
        async with self.store.control() as conn:
            return await data_keys.tenant_cipher(conn, tenant_id, self.settings.secret_key)

    async def rewrap_keys(self) -> RewrapReport:
        """Re-wrap every tenant's data key with the first ``TENANCY_SECRET_KEY`` (after
        rotating the master key) and re-encrypt with it the tokens only a master key
        decrypts; one transaction per tenant, audited as ``keys.rewrap``. The report
        counts per tenant the tokens re-encrypted, and those no key decrypts (then it is
        not ``complete``: the old keys cannot go without losing them)."""
        return await key_rotation.rewrap_keys(self.store, actor=self.settings.actor)

    def _observer(self, operation: str) -> Observer | None:
        """Counts ``operation``'s outcomes and durations in this manager's metrics
        (nothing with performance monitoring off)."""
        if not self.settings.performance_monitoring:
            return None
        return partial(self.metrics.observe, operation)

    async def aclose(self) -> None:
        """Close the connections and cache this manager holds."""
        await self.cache.aclose()
        await self.store.dispose()

    async def __aenter__(self) -> FixtureManager:
        await self.store.initialize()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _named_tenants(tenants: Sequence[str] | None) -> list[str] | None:
    """The tenants a fleet operation names, each id checked; one string is refused:
    read as a sequence, each of its letters was taken for a tenant ("tenant 'a' does
    not exist", or tenants ``a``, ``c``... acted on)."""
    if tenants is None:
        return None
    if isinstance(tenants, str | bytes):
        raise ConfigError(
            f"tenants must be a list of tenant ids, e.g. tenants=[{tenants!r}], "
            f"not the string {tenants!r}",
            key="tenants",
        )
    return [validate_tenant_id(tenant_id) for tenant_id in tenants]
