"""FixtureManager: the front door that provisions, loads, checks and removes tenants.

It only orchestrates: tenant lifecycle lives in :mod:`tenancy_fixtures.tenancy.tenants`,
fixtures in :mod:`tenancy_fixtures.fixtures.base` and the loaders, storage behind the
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

from sqlalchemy import MetaData

from tenancy_fixtures.errors import (
    FixtureError,
    RecordError,
    RecordsRefusedError,
    TenancyFixturesError,
    TenantNotFoundError,
    ValidationTimeoutError,
)
from tenancy_fixtures.fixtures.base import FixtureResult, apply_fixtures
from tenancy_fixtures.fixtures.schema import SchemaFixture, tenant_metadata
from tenancy_fixtures.fixtures.templates import TemplateDirectory
from tenancy_fixtures.ids import validate_tenant_id
from tenancy_fixtures.loading.data_loader import DataLoader, ProgressCallback, locate_violation
from tenancy_fixtures.loading.opening import open_loaders
from tenancy_fixtures.loading.planning import TenantTemplate, sort_by_dependencies
from tenancy_fixtures.loading.sources import SourceLoader
from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.monitoring.metrics import Metrics
from tenancy_fixtures.monitoring.monitor import FixtureMonitor, TenantStatus
from tenancy_fixtures.monitoring.performance import PerformanceTracker
from tenancy_fixtures.settings import Settings, ValidationMode, load_settings
from tenancy_fixtures.store import TenantStore, control_plane, open_store
from tenancy_fixtures.store.base import TenantSession, WriteCounts
from tenancy_fixtures.store.control_plane import AuditRecord, TenantRecord
from tenancy_fixtures.store.retrying import with_retries
from tenancy_fixtures.tenancy.config import ConfigFixture, TenantConfig
from tenancy_fixtures.tenancy.config_cache import ConfigCache, open_config_cache
from tenancy_fixtures.tenancy.tenants import (
    TenantFixture,
    audit_failure,
    create_tenant,
    drop_tenant,
    get_tenant,
    list_tenants,
)
from tenancy_fixtures.validation.fixture_validator import (
    FixtureValidator,
    RejectFile,
    ValidationReport,
)
from tenancy_fixtures.validation.integrity import DataIntegrityValidator, IntegrityReport

__all__ = ["FixtureManager", "LoadReport", "ManyLoadReport"]

log = get_logger("tenancy_fixtures.manager")


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
    #: Lenient loads: records refused and left out, and the file listing them.
    rejected: int = 0
    reject_file: Path | None = None

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
        if store is None:
            metadata = metadata if metadata is not None else tenant_metadata(self.settings)
            store = open_store(self.settings, metadata)
        self.store = store
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
        if source is not None:
            return open_loaders(
                source,
                metadata=self.store.metadata,
                batch_size=self.settings.batch_size,
                format=format,
                options=options,
            )
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
        all but the bad records, which go to ``<reject_dir>/<tenant>-<run_id>.jsonl``
        (default directory: the ``reject_dir`` setting).
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
                    else self.data_fixtures(record.tier, source, format=format, options=options),
                    self.store.metadata,
                )
                for loader in loaders:
                    loader.progress = progress
                    loader.tracker = tracker
                    loader.max_text_length = self.settings.max_text_length
                    loader.parse_workers = self.settings.workers_for_parsing
                    loader.settings = loader.settings or self.settings
                    loader.skip_records = {}
                    loader.checksum()

            mode = validation or self.settings.validation_mode
            rejects = RejectFile(
                Path(reject_dir or self.settings.reject_dir) / f"{tenant_id}-{run_id}.jsonl"
            )

            async def attempt() -> list[FixtureResult]:
                async with self.store.session(tenant_id) as session:
                    if mode == "lenient":
                        with tracker.stage("prevalidate"):
                            await self._set_aside(session, loaders, force=force, rejects=rejects)
                    async with session.bulk_load():
                        results = await apply_fixtures(session, loaders, run_id=run_id, force=force)
                        await self._record_load(
                            session.connection, tenant_id, run_id, results, started_at, tracker
                        )
                    return results

            with tracker.stage("transaction"):
                try:
                    results = await with_retries(attempt)
                    reject_file = rejects.commit()
                except FixtureError as exc:
                    exc.tenant_id = exc.tenant_id or tenant_id
                    locate_violation(exc, loaders)
                    for loader in loaders:
                        loader.relocate(exc)
                    if mode == "strict" and isinstance(exc, RecordError):
                        # The fast path stops at the first bad record; say what else is.
                        every = await self._every_problem(exc, loaders, force=force)
                        if every is not None:
                            raise every from exc
                    raise
                finally:
                    rejects.discard()  # nothing left to discard once committed
                    for loader in loaders:
                        loader.close()
        except Exception as exc:
            if isinstance(exc, TenancyFixturesError) and exc.tenant_id is None:
                exc.tenant_id = tenant_id  # refused before the transaction (opening the set)
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
            tenant_id,
            run_id,
            results,
            time.perf_counter() - started,
            tracker.summary(),
            writes,
            rejected=rejects.count,
            reject_file=reject_file,
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
        for tenant_id in tenant_ids:
            validate_tenant_id(tenant_id)
        limit = concurrency or self.settings.concurrency
        if self.store.backend == "sqlite":
            limit = 1
        gate = asyncio.Semaphore(limit)
        # A plain set of table files is read once and shared; anything else (source
        # files, domain loaders named by a manifest) gets its loaders per tenant.
        probe = (
            open_loaders(source, metadata=self.store.metadata, batch_size=self.settings.batch_size)
            if source is not None and format is None and not options
            else []
        )
        fixture_set = (
            probe[0].fixture_set if len(probe) == 1 and type(probe[0]) is DataLoader else None
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
                        None if shared is not None else source,
                        format=format,
                        options=options,
                        fixtures=shared,
                        progress=(progress_for or {}).get(tenant_id),
                        force=force,
                        validation=validation,
                        reject_dir=reject_dir,
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

    def _fixture_validator(self) -> FixtureValidator:
        return FixtureValidator(
            self.store.metadata,
            max_problems=self.settings.validation_max_problems,
            timeout_seconds=self.settings.validation_timeout_seconds,
            max_text_length=self.settings.max_text_length,
        )

    async def _validate_pending(
        self,
        session: TenantSession,
        loaders: Sequence[DataLoader],
        *,
        force: bool,
        rejects: RejectFile | None = None,
    ) -> tuple[list[DataLoader], ValidationReport]:
        """Validate the fixtures this load will apply (those not already applied as they
        are), against the set and the tenant's rows."""
        recorded = await control_plane.applied_fixtures(session.connection, session.tenant_id)
        pending = [
            loader
            for loader in loaders
            if force
            or (prior := recorded.get(loader.name)) is None
            or (prior.checksum, prior.version) != (loader.checksum(), loader.version)
        ]
        for loader in pending:
            if isinstance(loader, SourceLoader):
                await asyncio.to_thread(loader.stage)

        def relocate(error: FixtureError) -> None:
            for loader in pending:
                loader.relocate(error)

        report = await self._fixture_validator().validate_for_tenant(
            [file for loader in pending for file in loader.files],
            session,
            rejects=rejects,
            replaced={t for loader in pending for t, m in loader.modes.items() if m == "replace"},
            locate=relocate,
        )
        return pending, report

    async def _set_aside(
        self,
        session: TenantSession,
        loaders: Sequence[DataLoader],
        *,
        force: bool,
        rejects: RejectFile,
    ) -> None:
        """Lenient loading: validate first, write the bad records to ``rejects`` and have
        the loaders leave them out. A file that cannot be read to its end refuses the
        load: its remaining records are unknown."""
        rejects.open()
        pending, report = await self._validate_pending(
            session, loaders, force=force, rejects=rejects
        )
        if report.unreadable:
            raise report.unreadable[0]
        for loader in pending:
            loader.skip_records = {
                file.path: frozenset(report.rejected[file.path])
                for file in loader.files
                if file.path in report.rejected
            }

    async def _every_problem(
        self, refusal: RecordError, loaders: Sequence[DataLoader], *, force: bool
    ) -> RecordsRefusedError | None:
        """Strict loading, after ``refusal``: every problem of the fixtures as one error,
        the first in load order first. ``None`` — the refusal stands alone — when they
        cannot all be read again (a source that fails to stage, the validation timeout)."""
        tenant_id = refusal.tenant_id or ""
        try:
            async with self.store.session(tenant_id, readonly=True) as session:
                _, report = await self._validate_pending(session, loaders, force=force)
        except (FixtureError, ValidationTimeoutError):
            return None
        errors, rules, total = list(report.errors), dict(report.rules), report.total
        where = (refusal.path, refusal.line, refusal.record, refusal.column, refusal.rule)
        if not any(where == (e.path, e.line, e.record, e.column, e.rule) for e in errors):
            # A loader's own check (not a schema rule): the validator cannot see it.
            errors.insert(0, refusal)
            rule = refusal.rule or "record"
            if rule not in rules:
                rules[rule], total = 1, total + 1
        return RecordsRefusedError(
            [str(e) for e in errors], errors=errors, tenant_id=tenant_id, rules=rules, total=total
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

    async def validate_tenant(self, tenant_id: str, *, record: bool = False) -> IntegrityReport:
        """Check a tenant's data (read only): orphans, duplicate keys, NOT NULL and CHECK
        violations, row counts and content checksums against its applied fixtures,
        isolation from other tenants, and storage against its limit.

        ``record``: store the report in the control plane as a ``validate`` run and
        audit it (``data.validate``); that takes the control plane's write lock.
        """
        run_id = control_plane.new_run_id()
        started_at = control_plane.utcnow()
        validator = DataIntegrityValidator(self.store)
        try:
            await get_tenant(self.store, tenant_id)
            report = await validator.check(tenant_id)
        except Exception as exc:
            if record:
                await audit_failure(
                    self.store,
                    actor=self.settings.actor,
                    action="data.validate",
                    tenant_id=tenant_id,
                    error=exc,
                    run_id=run_id,
                )
            raise
        if record:
            await validator.record(
                report, actor=self.settings.actor, run_id=run_id, started_at=started_at
            )
        log.bind(tenant_id=tenant_id, run_id=run_id).info(
            "tenant_validated", ok=report.ok, failed=report.failed_checks
        )
        return report

    async def validate_all(
        self, *, record: bool = False, concurrency: int | None = None
    ) -> list[IntegrityReport]:
        """:meth:`validate_tenant` for every registered tenant, by id.

        ``concurrency`` tenants at a time (default: settings; one at a time on SQLite).
        A tenant dropped meanwhile is left out.
        """
        tenants = [t.tenant_id for t in await self.list_tenants()]
        limit = 1 if self.store.backend == "sqlite" else concurrency or self.settings.concurrency
        gate = asyncio.Semaphore(limit)

        async def one(tenant_id: str) -> IntegrityReport | None:
            async with gate:
                try:
                    return await self.validate_tenant(tenant_id, record=record)
                except TenantNotFoundError:
                    return None

        reports = await asyncio.gather(*(one(t) for t in tenants))
        return [r for r in reports if r is not None]

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
