"""The load use case: a tenant's data fixtures, in one audited transaction.

:func:`load_tenant` loads one tenant and :func:`load_many` many, each taking the store
and settings it works with and one frozen :class:`LoadOptions` saying what to load and
how. :class:`tenancy_fixtures.manager.FixtureManager` is a facade over these; they can
be called directly too::

    report = await load_tenant(store, settings, "acme", LoadOptions(source="./set"))
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData

from tenancy_fixtures.errors import (
    ConfigError,
    FixtureError,
    RecordError,
    SettingsError,
    TenancyFixturesError,
)
from tenancy_fixtures.fixtures.base import FixtureResult, apply_fixtures
from tenancy_fixtures.fixtures.context import LoadContext, ProgressCallback
from tenancy_fixtures.fixtures.templates import TemplateDirectory
from tenancy_fixtures.ids import validate_tenant_id
from tenancy_fixtures.loading.data_loader import DataLoader, locate_violation
from tenancy_fixtures.loading.derived import RefreshesDerivedTables, derived_tables
from tenancy_fixtures.loading.fixture_sets import is_archive_name
from tenancy_fixtures.loading.fixture_validator import RejectFile
from tenancy_fixtures.loading.opening import open_loaders
from tenancy_fixtures.loading.planning import TenantTemplate, sort_by_dependencies
from tenancy_fixtures.loading.reports import LoadReport, ManyLoadReport
from tenancy_fixtures.loading.screening import every_problem, set_aside
from tenancy_fixtures.loading.sources import SourceLoader
from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.monitoring.limits import LimitCheck, check_limits, config_limits
from tenancy_fixtures.monitoring.metrics import Metrics
from tenancy_fixtures.monitoring.performance import PerformanceTracker, tracker_for
from tenancy_fixtures.monitoring.usage import UsageSnapshot, measure_usage
from tenancy_fixtures.settings import Settings, ValidationMode
from tenancy_fixtures.store import control_plane, migration_ledger
from tenancy_fixtures.store.base import TenantSession, TenantStore, WriteCounts
from tenancy_fixtures.store.retrying import with_retries
from tenancy_fixtures.store.usage_ledger import record_snapshot
from tenancy_fixtures.tenancy.audit import Audit, audited
from tenancy_fixtures.tenancy.tenants import get_tenant

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = [
    "LoadOptions",
    "LoadReport",
    "ManyLoadReport",
    "defers_keys",
    "load_many",
    "load_tenant",
    "open_fixtures",
]

log = get_logger("tenancy_fixtures.loading.load")


@dataclass(frozen=True)
class LoadOptions:
    """What to load into a tenant, and how.

    The fixtures are ``fixtures`` if given, else those at ``source`` (a fixture set, or
    source files read by ``format`` or as detected, each format given ``options``),
    else the tenant tier's in the tenant template. ``force`` applies fixtures already
    applied. ``validation`` (default: the ``validation_mode`` setting): ``"strict"``
    refuses the whole load for any bad record, listing every problem;
    ``"lenient"`` loads all but the bad records, which go to
    ``<reject_dir>/<tenant>-<plane>-<run_id>.jsonl`` (default: the ``reject_dir``
    setting; ``plane``: the database's control-plane id).
    ``progress`` is told (table, rows) after every batch written.
    """

    source: Path | str | None = None
    fixtures: Sequence[DataLoader] | None = None
    format: str | None = None
    options: Mapping[str, Any] | None = None
    force: bool = False
    validation: ValidationMode | None = None
    reject_dir: Path | str | None = None
    progress: ProgressCallback | None = None


async def load_tenant(
    store: TenantStore,
    settings: Settings,
    tenant_id: str,
    options: LoadOptions | None = None,
    *,
    metrics: Metrics | None = None,
) -> LoadReport:
    """Load a tenant's data fixtures in one transaction: all of them, or nothing.

    Fixtures whose checksum is already recorded are skipped, so loading twice changes
    nothing. A strict load refused for bad records raises
    :class:`RecordsRefusedError`; every refusal and failure is audited.
    """
    validate_tenant_id(tenant_id)
    options = options or LoadOptions()
    _refuse_lenient_without_validation(settings, options)
    if not settings.performance_monitoring:
        metrics = None
    tracker = tracker_for(settings)
    scope = audited(
        store,
        actor=settings.actor,
        action="fixtures.load",
        tenant_id=tenant_id,
        observe=partial(metrics.observe, "load") if metrics is not None else None,
    )
    async with scope as audit, _unpacked(options, settings) as options:
        record = await get_tenant(store, tenant_id)
        with tracker.stage("plan"):
            loaders = _plan(store.metadata, settings, record.tier, options)
        run = _Run(
            store,
            settings,
            tenant_id,
            options,
            loaders,
            tracker,
            audit,
            LoadContext.for_run(audit.run_id, settings, progress=options.progress, tracker=tracker),
            await _reject_file(store, settings, tenant_id, options, audit.run_id),
        )
        with tracker.stage("transaction"):
            results = await _transaction(run)
        report = _report(run, results)
    _count_rows(metrics, report)
    log.info(
        "fixtures_loaded",
        tenant_id=tenant_id,
        run_id=report.run_id,
        rows=report.rows,
        changed=report.changed,
        seconds=round(report.seconds, 3),
    )
    return report


async def load_many(
    store: TenantStore,
    settings: Settings,
    tenant_ids: Sequence[str],
    options: LoadOptions | None = None,
    *,
    progress_for: Mapping[str, ProgressCallback] | None = None,
    concurrency: int | None = None,
    metrics: Metrics | None = None,
) -> ManyLoadReport:
    """Load fixtures into many tenants, ``concurrency`` at a time (default: settings).

    Each tenant's load is its own transaction; one tenant failing does not stop or
    undo the others — the combined report lists what failed and why. On SQLite tenants
    load one at a time (they share the control-plane file's write lock), and so do
    loads of given ``fixtures`` (a loader keeps what its last load wrote). Progress
    goes to ``progress_for[tenant]``; each tenant gets its own reject file.
    """
    for tenant_id in tenant_ids:
        validate_tenant_id(tenant_id)
    # A tenant named twice is loaded once (its report would hide the first load's).
    tenant_ids = list(dict.fromkeys(tenant_ids))
    async with _unpacked(options or LoadOptions(), settings) as unpacked_options:
        return await _load_many(
            store,
            settings,
            tenant_ids,
            unpacked_options,
            progress_for=progress_for,
            concurrency=concurrency,
            metrics=metrics,
        )


@asynccontextmanager
async def _unpacked(options: LoadOptions, settings: Settings) -> AsyncIterator[LoadOptions]:
    """``options`` with a ``source`` naming an archive (``export.tar.gz``) pointing at
    the set unpacked from it, for as long as the load runs."""
    if options.source is None or not is_archive_name(Path(options.source)):
        yield options
        return
    # Imported here: tarfile costs every loading process RSS otherwise (issue 15, goal c).
    from tenancy_fixtures.loading.archives import ArchiveLimits, unpacked

    given = Path(options.source)
    limits = ArchiveLimits.of(settings)
    async with unpacked(given, limits, work_dir=settings.service_work_dir) as source:
        yield options if source == given else replace(options, source=source)


async def _load_many(
    store: TenantStore,
    settings: Settings,
    tenant_ids: list[str],
    options: LoadOptions,
    *,
    progress_for: Mapping[str, ProgressCallback] | None,
    concurrency: int | None,
    metrics: Metrics | None,
) -> ManyLoadReport:
    limit = store.write_concurrency(concurrency or settings.concurrency)
    if options.fixtures is not None:
        limit = 1
    gate = asyncio.Semaphore(limit)
    shared = _shared_fixture_set(store.metadata, settings, options)
    started = time.perf_counter()

    async def one(tenant_id: str) -> LoadReport | TenancyFixturesError:
        async with gate:
            try:
                mine = _for_tenant(options, tenant_id, shared, progress_for, store, settings)
                return await load_tenant(store, settings, tenant_id, mine, metrics=metrics)
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


def _refuse_lenient_without_validation(settings: Settings, options: LoadOptions) -> None:
    """A lenient load finds the records it sets aside by validating them: refused with
    data validation off (the settings refuse the same pair at start-up)."""
    if options.validation == "lenient" and not settings.data_validation:
        raise SettingsError(
            "a lenient load needs data validation to find the records it sets aside: "
            "TENANCY_DATA_VALIDATION is false; load strict, or switch validation on"
        )


async def _reject_file(
    store: TenantStore, settings: Settings, tenant_id: str, options: LoadOptions, run_id: str
) -> RejectFile:
    """The load's reject file, named for this database's control plane too: a database
    sharing the directory never takes it for its own tenant's of the same id."""
    name = control_plane.reject_file_name(tenant_id, await store.plane(), run_id)
    return RejectFile(Path(options.reject_dir or settings.reject_dir) / name)


def open_fixtures(
    metadata: MetaData, settings: Settings, tier: str, options: LoadOptions
) -> list[DataLoader]:
    """The data fixtures ``options`` name for a tenant of ``tier`` (see
    :class:`LoadOptions`), unsorted."""
    if options.source is None and (options.format is not None or options.options):
        named = next(iter(options.options or {}), None)
        raise ConfigError(
            (f"unknown option {named!r}: " if named else "")
            + "--format and options (-o) go to source files at a PATH; "
            + ("the fixtures given" if options.fixtures is not None else "the tier's fixtures")
            + " take none",
            key=f"options.{named}" if named else "format",
        )
    if options.fixtures is not None:
        return list(options.fixtures)
    if options.source is not None:
        return open_loaders(
            options.source,
            metadata=metadata,
            batch_size=settings.batch_size,
            format=options.format,
            options=options.options,
        )
    templates = TemplateDirectory(settings.template_dir)
    return TenantTemplate.load(templates).data_fixtures(
        tier, templates, metadata=metadata, batch_size=settings.batch_size
    )


def _plan(
    metadata: MetaData, settings: Settings, tier: str, options: LoadOptions
) -> list[DataLoader]:
    """The loaders of the load in dependency order, their checksums computed."""
    loaders = sort_by_dependencies(open_fixtures(metadata, settings, tier, options), metadata)
    for loader in loaders:
        loader.checksum()
    return loaders


@dataclass
class _Run:
    """One load in progress: what its transaction attempts share."""

    store: TenantStore
    settings: Settings
    tenant_id: str
    options: LoadOptions
    loaders: list[DataLoader]
    tracker: PerformanceTracker
    audit: Audit
    #: What the loaders get; a lenient attempt adds the records it leaves out.
    context: LoadContext
    rejects: RejectFile
    reject_file: Path | None = None
    #: The usage the load left the tenant with (set by its committed attempt).
    usage: UsageSnapshot | None = None

    @property
    def lenient(self) -> bool:
        return (self.options.validation or self.settings.validation_mode) == "lenient"


async def _transaction(run: _Run) -> list[FixtureResult]:
    """The load's one transaction (retried when the store says so); a refusal is
    pointed at the data it came from, and a strict one lists every problem."""
    try:
        results = await with_retries(partial(_attempt, run))
        run.reject_file = run.rejects.commit()
        return results
    except FixtureError as exc:
        exc.tenant_id = exc.tenant_id or run.tenant_id
        locate_violation(exc, run.loaders, run.context.skip_records)
        for loader in run.loaders:
            loader.relocate(exc)
        if not run.lenient and run.settings.data_validation and isinstance(exc, RecordError):
            # The fast path stops at the first bad record; say what else is (not with
            # validation off: the listing would check the rules the load left out).
            every = await every_problem(
                run.store, exc, run.loaders, settings=run.settings, force=run.options.force
            )
            if every is not None:
                raise every from exc
        raise
    finally:
        run.rejects.discard()  # nothing left to discard once committed
        for loader in run.loaders:
            loader.close()


async def _attempt(run: _Run) -> list[FixtureResult]:
    """One attempt at the load's transaction."""
    async with run.store.session(run.tenant_id) as session:
        # The tenant's lock before its revision, as erasures take them: a migration that
        # holds it (taking the tenant down, say) is waited for, and the revision read is
        # the one it left. (A tenant gone: refuse_outdated says so.)
        await control_plane.lock_tenant(session.connection, run.tenant_id)
        await migration_ledger.refuse_outdated(session.connection, run.tenant_id, run.store.history)
        if run.lenient:
            with run.tracker.stage("prevalidate"):
                skip = await set_aside(
                    session,
                    run.loaders,
                    settings=run.settings,
                    force=run.options.force,
                    rejects=run.rejects,
                )
            run.context = replace(run.context, skip_records=skip, lenient=True)
        large = defers_keys(run.loaders, run.settings.bulk_load_min_bytes)
        now, local_now = await session.clock()
        run.context = replace(
            run.context, stamp_writes=large, started_at=now, local_started_at=local_now
        )
        async with session.bulk_load(defer_keys=large):
            results = await apply_fixtures(
                session, run.loaders, context=run.context, force=run.options.force
            )
        # After the keys are back (a column's highest value is then an index lookup); for
        # every table written, changed or not: a forced reload repairs a tenant loaded
        # before sequences were moved.
        await session.advance_sequences(
            {table for loader in run.loaders for table in loader.write_counts}
        )
        with run.tracker.stage("usage"):
            limits = await _check_usage(session, run)
        await _record_load(session.connection, run, results, limits)
        return results


def defers_keys(loaders: Sequence[DataLoader], min_bytes: int) -> bool:
    """Whether a load into a never-loaded tenant drops its keys and indexes to rebuild
    them once: when its files hold at least ``min_bytes`` (the ``bulk_load_min_bytes``
    setting), or when a loader cannot say how much it reads."""
    sizes = [loader.source_bytes() for loader in loaders]
    known = [size for size in sizes if size is not None]
    return len(known) < len(sizes) or sum(known) >= min_bytes


async def _check_usage(session: TenantSession, run: _Run) -> LimitCheck:
    """Measure what the tenant holds now (this transaction's rows included), record it
    as a usage snapshot, and check it against the tenant's limits: past a hard limit the
    load is refused (the transaction rolls back), past the warning share it warns."""
    usage = await measure_usage(
        session, source="load", run_id=run.audit.run_id, derived_tables=derived_tables()
    )
    config = await control_plane.load_config(session.connection, run.tenant_id)
    check = check_limits(usage, config_limits(config), warn_ratio=run.settings.limit_warn_ratio)
    if run.settings.enforce_limits:
        check.raise_for_breach()
    for use in (*check.warnings, *check.breaches):
        log.warning(
            "limit_near" if use in check.warnings else "limit_exceeded",
            tenant_id=run.tenant_id,
            run_id=run.audit.run_id,
            limit=use.limit,
            value=use.value,
            maximum=use.maximum,
        )
    await record_snapshot(session.connection, usage)
    run.usage = usage
    return check


async def _record_load(
    conn: AsyncConnection, run: _Run, results: Sequence[FixtureResult], limits: LimitCheck
) -> None:
    """The load's run and audit records, in its transaction: what each fixture did, the
    run's throughput, CPU and memory, and its tenant's limits."""
    outcome = "ok" if any(r.status == "applied" for r in results) else "unchanged"
    detail: dict[str, Any] = {
        r.fixture: {"status": r.status, "checksum": r.checksum, "rows": dict(r.row_counts)}
        for r in results
    }
    written = sum(sum(r.row_counts.values()) for r in results if r.status == "applied")
    if run.settings.performance_monitoring:
        detail["performance"] = run.tracker.performance(written)
    else:
        detail["monitoring"] = "off"
    if not run.settings.data_validation:
        detail["validation"] = "off"
    detail["limits"] = limits.as_dict()
    if run.rejects.count:
        # Where the records set aside go, so that dropping or erasing finds them there.
        detail["reject_file"] = str(run.rejects.path.resolve())
    await control_plane.record_run(
        conn,
        run_id=run.audit.run_id,
        tenant_id=run.tenant_id,
        operation="load",
        status=outcome,
        started_at=run.audit.started_at,
        stages=run.tracker.summary(),
        detail=detail,
    )
    await run.audit.record(conn, outcome=outcome, detail=detail)


def _report(run: _Run, results: list[FixtureResult]) -> LoadReport:
    writes: dict[str, WriteCounts] = {}
    for loader in run.loaders:
        for table, counts in loader.write_counts.items():
            writes[table] = writes.get(table, WriteCounts()) + counts
    return LoadReport(
        run.tenant_id,
        run.audit.run_id,
        results,
        run.audit.seconds,
        run.tracker.summary(),
        writes,
        rejected=run.rejects.count,
        reject_file=run.reject_file,
        derived_tables=derived_tables(),
        refreshed=_refreshed(run.loaders, results),
        usage=run.usage,
    )


def _refreshed(loaders: Sequence[DataLoader], results: Sequence[FixtureResult]) -> dict[str, int]:
    """Rows the derivations recomputed after the fixtures applied in this load."""
    applied = {r.fixture for r in results if r.status == "applied"}
    counts: dict[str, int] = {}
    for loader in loaders:
        if isinstance(loader, RefreshesDerivedTables) and loader.name in applied:
            for table, rows in getattr(loader, "refreshed", {}).items():
                counts[table] = counts.get(table, 0) + rows
    return counts


def _count_rows(metrics: Metrics | None, report: LoadReport) -> None:
    if metrics is not None:
        for table, rows in report.row_counts.items():
            metrics.rows_loaded.labels(table).inc(rows)


def _shared_fixture_set(
    metadata: MetaData, settings: Settings, options: LoadOptions
) -> list[DataLoader] | None:
    """The loaders of the fixture set at ``options.source`` when it is a set of table
    files alone: it is read once and shared by every tenant's load (each file's
    checksum computed once), each tenant getting loaders of the same kinds. Anything
    else (source files) gets its loaders per tenant."""
    source = options.source
    if source is None or options.fixtures is not None or options.format or options.options:
        return None
    probe = open_loaders(source, metadata=metadata, batch_size=settings.batch_size)
    return None if any(isinstance(loader, SourceLoader) for loader in probe) else probe


def _for_tenant(
    options: LoadOptions,
    tenant_id: str,
    shared: Sequence[DataLoader] | None,
    progress_for: Mapping[str, ProgressCallback] | None,
    store: TenantStore,
    settings: Settings,
) -> LoadOptions:
    """``options`` for one tenant of a many-tenant load: its progress, and its own
    loaders of the shared set."""
    progress = progress_for.get(tenant_id) if progress_for is not None else options.progress
    if shared is None:
        return replace(options, progress=progress)
    loaders = [
        type(probe)(probe.fixture_set, metadata=store.metadata, batch_size=settings.batch_size)
        for probe in shared
    ]
    return replace(options, source=None, fixtures=loaders, progress=progress)
