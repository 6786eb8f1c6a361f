"""Migrating tenants: one in one transaction, a fleet with bounded concurrency.

One tenant's steps, its ledger row and its audit record commit together or not at all,
so a process killed mid-run leaves every tenant at a revision the ledger names, and a
second run finishes the rest. The tenant's registry row is locked first: two runs (or
a run and a load) on one tenant take turns, and the second reads the revision the
first left: a tenant no longer where the run's plan started is skipped, so no revision
is ever applied twice (nor a ``-1`` counted twice). The lock is per tenant, not per
fleet run, so two runs share the work instead of one waiting for the other.

Up-to-date tenants are found from the ledger alone, in one control-plane query; their
schemas are never opened.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial

from tenancy_fixtures.errors import (
    MigrationError,
    TenancyFixturesError,
    TenantNotFoundError,
    TenantStorageMissingError,
    UnknownRevisionError,
)
from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.migrations.operations import captured_sql, run_steps
from tenancy_fixtures.migrations.report import MigrationReport, Outcome, TenantMigration
from tenancy_fixtures.migrations.scripts import MigrationScripts
from tenancy_fixtures.store import TenantStore, control_plane, migration_ledger
from tenancy_fixtures.store.migration_ledger import LedgerEntry
from tenancy_fixtures.store.retrying import with_retries

__all__ = ["FleetOptions", "ProgressCallback", "migrate_fleet", "migrate_tenant"]

log = get_logger("tenancy_fixtures.migrations")

#: How long an interrupted migration may take to record itself.
_RECORD_INTERRUPTION_SECONDS = 5.0

#: Called with each tenant's result as it finishes.
ProgressCallback = Callable[[TenantMigration], None]


@dataclass(frozen=True)
class FleetOptions:
    """How a fleet run goes: ``tenants`` (``None``: every registered tenant), the target
    (``head``, ``base``, an id, ``-1``...), tenants at once, ``canary`` tenants first
    (the run stops if any fails), whether to go on past a failure, whether to only plan,
    and ``sql`` to capture one tenant's statements in a rolled-back transaction."""

    tenants: Sequence[str] | None = None
    to: str = "head"
    concurrency: int = 4
    canary: int = 0
    keep_going: bool = False
    dry_run: bool = False
    sql: bool = False
    actor: str = "unknown"
    run_id: str | None = None


class _Rollback(Exception):
    """Ends a ``--sql`` capture: its transaction must not commit."""


async def migrate_tenant(
    store: TenantStore,
    scripts: MigrationScripts,
    tenant_id: str,
    *,
    to: str = "head",
    actor: str = "unknown",
    run_id: str | None = None,
    sql: bool = False,
    planned_from: str | None = None,
) -> TenantMigration:
    """Move one tenant to ``to`` in one transaction (tried again after a transient
    storage error); a failure is recorded in the ledger and returned (the tenant is
    left as it was), never raised, except for an unknown tenant or target. An
    interruption during its steps (Ctrl-C, a cancelled task) is recorded as a failure
    too, and goes on.

    ``planned_from``: the revision a plan started from; a tenant found elsewhere once
    locked (another run moved it meanwhile) is skipped, so no unplanned step runs."""
    started = time.perf_counter()
    result = TenantMigration(tenant_id, None, None, "skipped")
    attempt = partial(_attempt, store, scripts, result, to, actor, run_id, sql, planned_from)
    try:
        await with_retries(attempt)
    except _Rollback:
        result.outcome = "planned"
    except TenantStorageMissingError as exc:
        # Still registered: its ledger row is in the control plane and takes the failure
        # like any other; the caller reports it, as it does a tenant dropped meanwhile.
        if not sql:
            result.from_revision, result.to_revision = planned_from, to
            result.error = str(exc)
            await _record_failure(store, result, result.error, started, actor=actor, run_id=run_id)
        raise
    except (TenantNotFoundError, MigrationError):
        raise
    except (KeyboardInterrupt, asyncio.CancelledError) as stopped:
        if result.steps and not sql:
            await _record_interruption(store, result, stopped, started, actor=actor, run_id=run_id)
        raise
    except Exception as exc:  # a revision's own code may raise anything
        result.outcome, result.error = "failed", _described(exc)
        log.warning("tenant_migration_failed", tenant_id=tenant_id, error=result.error)
        if not sql:  # a --sql preview is rolled back whole: it records no failure either
            await _record_failure(store, result, result.error, started, actor=actor, run_id=run_id)
    result.seconds = time.perf_counter() - started
    if result.outcome == "migrated":  # committed: logged whether or not it was audited
        log.info(
            "tenant_migrated",
            tenant_id=tenant_id,
            run_id=run_id,
            to=result.to_revision,
            seconds=round(result.seconds, 3),
            **{"from": result.from_revision},
        )
    return result


async def _attempt(
    store: TenantStore,
    scripts: MigrationScripts,
    result: TenantMigration,
    to: str,
    actor: str,
    run_id: str | None,
    sql: bool,
    planned_from: str | None,
) -> None:
    """One try at the tenant's transaction; fills in ``result`` as it learns."""
    started = time.perf_counter()
    tenant_id = result.tenant_id
    async with store.migrating(tenant_id) as session:
        conn = session.connection
        if not await control_plane.lock_tenant(conn, tenant_id):
            raise TenantNotFoundError(tenant_id)
        found, current = await migration_ledger.current_revision(conn, tenant_id)
        current = current or scripts.base
        if planned_from is not None and current != planned_from:
            log.info("tenant_moved_since_planned", tenant_id=tenant_id, planned=planned_from)
            result.from_revision = result.to_revision = current
            return
        target = scripts.resolve(to, current)
        steps = scripts.steps(current, target)
        result.from_revision, result.to_revision = current, target
        result.steps = [s.revision for s in steps]
        if not steps:
            result.outcome = "skipped"
            if not found:
                await migration_ledger.set_revision(conn, tenant_id, current)
            return
        async with session.altering():
            if sql:
                setup = session.altering_setup()
                result.sql = await conn.run_sync(captured_sql, steps, setup)
                raise _Rollback
            await conn.run_sync(run_steps, steps)
        result.outcome = "migrated"
        await migration_ledger.set_revision(
            conn, tenant_id, target, duration_seconds=_timed(store, started)
        )
        if store.settings.audit_logging:
            await control_plane.append_audit(
                conn,
                actor=actor,
                action="tenant.migrate",
                tenant_id=tenant_id,
                outcome="ok",
                run_id=run_id,
                detail={"from": current, "to": target, "steps": result.steps},
            )


def _described(exc: Exception) -> str:
    """A failure as the report shows it: a revision's own error names its type."""
    return str(exc) if isinstance(exc, TenancyFixturesError) else f"{type(exc).__name__}: {exc}"


async def _record_interruption(
    store: TenantStore,
    result: TenantMigration,
    stopped: BaseException,
    started: float,
    *,
    actor: str,
    run_id: str | None,
) -> None:
    """A migration interrupted in its steps (Ctrl-C, a cancelled task), rolled back, in
    the ledger and the audit log, as a failure; bounded in time, since whatever
    interrupted it waits, and never raising: the interruption goes on."""
    result.error = f"interrupted ({type(stopped).__name__}); rolled back"
    log.warning("tenant_migration_interrupted", tenant_id=result.tenant_id, error=result.error)
    try:
        async with asyncio.timeout(_RECORD_INTERRUPTION_SECONDS):
            await _record_failure(
                store,
                result,
                result.error,
                started,
                actor=actor,
                run_id=run_id,
                outcome="cancelled",
            )
    except Exception as exc:
        log.warning(
            "tenant_migration_interruption_unrecorded", tenant_id=result.tenant_id, error=str(exc)
        )


async def _record_failure(
    store: TenantStore,
    result: TenantMigration,
    error: str,
    started: float,
    *,
    actor: str,
    run_id: str | None,
    outcome: str = "failed",
) -> None:
    """The failed ``result`` (its ``error``) in the ledger and the audit log, the audit
    record with ``outcome``."""
    async with store.control() as conn:
        await migration_ledger.record_attempt(
            conn,
            result.tenant_id,
            error=error,
            duration_seconds=_timed(store, started),
        )
        if store.settings.audit_logging:
            await control_plane.append_audit(
                conn,
                actor=actor,
                action="tenant.migrate",
                tenant_id=result.tenant_id,
                outcome=outcome,
                run_id=run_id,
                detail={
                    "from": result.from_revision,
                    "to": result.to_revision,
                    "error": result.error,
                },
            )


def _plan(entry: LedgerEntry, scripts: MigrationScripts, to: str) -> TenantMigration:
    current = entry.revision or scripts.base
    try:
        target = scripts.resolve(to, current)
        steps = scripts.steps(current, target)
    except UnknownRevisionError as exc:  # -1 from the first revision, +1 from the head
        exc.tenant_id = entry.tenant_id  # which of the fleet's tenants it leaves
        raise
    except MigrationError as exc:
        raise MigrationError(exc.message, tenant_id=entry.tenant_id) from None
    outcome: Outcome = "planned" if steps else "skipped"
    return TenantMigration(
        entry.tenant_id, current, target, outcome, steps=[s.revision for s in steps]
    )


async def migrate_fleet(
    store: TenantStore,
    scripts: MigrationScripts,
    options: FleetOptions,
    *,
    progress: ProgressCallback | None = None,
) -> MigrationReport:
    """Plan from the ledger, then migrate the tenants that are not at their target."""
    started = time.perf_counter()
    scripts.check(options.to)
    report = MigrationReport(head=scripts.head, target=options.to, dry_run=options.dry_run)
    report.results = await _plan_fleet(store, scripts, options)
    pending = [p for p in report.results if p.outcome == "planned"]
    if options.sql:
        report.results = pending = pending[:1]
    if not options.dry_run and pending:
        done = await _execute(store, scripts, options, pending, report, progress)
        for i, planned in enumerate(report.results):
            if planned.outcome == "planned":
                report.results[i] = done.get(planned.tenant_id) or replace(
                    planned, outcome="not_attempted"
                )
    report.seconds = time.perf_counter() - started
    return report


async def _plan_fleet(
    store: TenantStore, scripts: MigrationScripts, options: FleetOptions
) -> list[TenantMigration]:
    """Every tenant's plan, from one read of the ledger; by id, or in the order
    ``options.tenants`` names them."""
    async with store.control(readonly=True) as conn:
        entries = await migration_ledger.ledger(conn, tenants=options.tenants)
    if options.tenants is not None:
        # Named tenants go in the order given: the first ones are the canaries.
        order = {tenant_id: i for i, tenant_id in enumerate(options.tenants)}
        entries.sort(key=lambda e: order[e.tenant_id])
    return [_plan(entry, scripts, options.to) for entry in entries]


async def _execute(
    store: TenantStore,
    scripts: MigrationScripts,
    options: FleetOptions,
    pending: list[TenantMigration],
    report: MigrationReport,
    progress: ProgressCallback | None,
) -> dict[str, TenantMigration]:
    """Migrate ``pending``: the canaries first, then the rest; says in ``report`` why
    it stopped early, if it did."""
    done: dict[str, TenantMigration] = {}

    async def one(planned: TenantMigration) -> TenantMigration:
        try:
            result = await migrate_tenant(
                store,
                scripts,
                planned.tenant_id,
                # Resolved once, at planning: ``-1`` read again after another run moved
                # the tenant would take it a step further than either run planned.
                to=planned.to_revision or options.to,
                actor=options.actor,
                run_id=options.run_id,
                sql=options.sql,
                planned_from=planned.from_revision,
            )
        except TenantNotFoundError as exc:
            result = _not_found(planned, exc, named=options.tenants is not None)
        done[planned.tenant_id] = result
        if progress is not None:
            progress(result)
        return result

    concurrency = store.write_concurrency(options.concurrency)
    canary, rest = pending[: options.canary], pending[options.canary :]
    if canary:
        await _run(canary, one, concurrency, keep_going=True)
        if any(done[p.tenant_id].outcome == "failed" for p in canary):
            report.stopped = f"a canary of {len(canary)} tenant(s) failed"
            return done
    if rest and await _run(rest, one, concurrency, keep_going=options.keep_going):
        report.stopped = "a tenant failed (without keep_going)"
    return done


def _not_found(
    planned: TenantMigration, exc: TenantNotFoundError, *, named: bool
) -> TenantMigration:
    """The result of a planned tenant found gone at its turn: a failure if its storage
    is missing (still registered) or the caller named it; else it was dropped since the
    plan was made (a fleet run going on while tenants are deprovisioned), and there is
    nothing left to migrate: skipped, so the run neither stops nor fails for it."""
    if named or isinstance(exc, TenantStorageMissingError):
        return replace(planned, outcome="failed", error=str(exc))
    log.info("tenant_dropped_since_planned", tenant_id=planned.tenant_id)
    return replace(planned, to_revision=planned.from_revision, outcome="skipped", steps=[])


async def _run(
    planned: Sequence[TenantMigration],
    one: Callable[[TenantMigration], Awaitable[TenantMigration]],
    concurrency: int,
    *,
    keep_going: bool,
) -> bool:
    """Run ``one`` over ``planned``, ``concurrency`` at a time; without ``keep_going``
    nothing new starts after a failure. Returns whether it stopped early."""
    queue = list(reversed(planned))
    failed = False

    async def worker() -> None:
        nonlocal failed
        while queue and (keep_going or not failed):
            result = await one(queue.pop())
            failed = failed or result.outcome == "failed"

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return failed and bool(queue)


def _timed(store: TenantStore, started: float) -> float | None:
    """Seconds since ``started`` for the ledger; ``None`` with performance monitoring
    off (runs are not timed then)."""
    if not store.settings.performance_monitoring:
        return None
    return time.perf_counter() - started
