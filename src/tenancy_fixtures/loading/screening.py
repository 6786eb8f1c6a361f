"""Screening the records a load applies: set aside before writing, or all listed after.

A lenient load validates the pending fixtures first, writes the bad records to a reject
file and has the loaders leave them out (:func:`set_aside`). A strict load writes at
once and stops at the first bad record; :func:`every_problem` then reads the fixtures
again to report every problem as one error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from tenancy_fixtures.errors import (
    FixtureError,
    RecordError,
    RecordsRefusedError,
    ValidationTimeoutError,
)
from tenancy_fixtures.fixtures.base import is_applied
from tenancy_fixtures.loading.data_loader import DataLoader
from tenancy_fixtures.loading.fixture_validator import (
    FixtureValidator,
    RejectFile,
    ValidationReport,
)
from tenancy_fixtures.loading.sources import SetAside, SourceLoader
from tenancy_fixtures.settings import Settings
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.store.base import TenantSession, TenantStore

__all__ = ["every_problem", "set_aside"]


async def set_aside(
    session: TenantSession,
    loaders: Sequence[DataLoader],
    *,
    settings: Settings,
    force: bool,
    rejects: RejectFile,
) -> Mapping[Path, frozenset[int]]:
    """Lenient loading: validate first and write the bad records to ``rejects`` (the
    source documents their formats refused while staging first); returns the records to
    leave out, by file path. A file that cannot be read to its end refuses the load: its
    remaining records are unknown."""
    rejects.open()
    pending, report = await _validate_pending(
        session, loaders, settings=settings, force=force, rejects=rejects
    )
    if report.unreadable:
        raise report.unreadable[0]
    return {
        file.path: frozenset(report.rejected[file.path])
        for loader in pending
        for file in loader.files
        if file.path in report.rejected
    }


async def every_problem(
    store: TenantStore,
    refusal: RecordError,
    loaders: Sequence[DataLoader],
    *,
    settings: Settings,
    force: bool,
) -> RecordsRefusedError | None:
    """Strict loading, after ``refusal``: every problem of the fixtures as one error,
    the first in load order first. ``None`` — the refusal stands alone — when they
    cannot all be read again (a source that fails to stage); past the validation
    timeout, the refusal and what was found by then, saying the list stopped there."""
    tenant_id = refusal.tenant_id or ""
    try:
        async with store.session(tenant_id, readonly=True) as session:
            _, report = await _validate_pending(session, loaders, settings=settings, force=force)
    except FixtureError:
        return None
    except ValidationTimeoutError as stopped:
        return _stopped_short(refusal, stopped, tenant_id)
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


def _stopped_short(
    refusal: RecordError, stopped: ValidationTimeoutError, tenant_id: str
) -> RecordsRefusedError:
    """The refusal, then what validation found before its timeout, after the line
    saying where it stopped (so a list cut short never passes for every problem)."""
    where = (refusal.path, refusal.line, refusal.record, refusal.column, refusal.rule)
    found = [e for e in stopped.errors if (e.path, e.line, e.record, e.column, e.rule) != where]
    errors: list[FixtureError] = [refusal, *found]
    rules = dict(stopped.rules)
    rules.setdefault(refusal.rule or "record", 1)
    return RecordsRefusedError(
        [stopped.problems[0], *(str(e) for e in errors)],
        errors=errors,
        tenant_id=tenant_id,
        rules=rules,
    )


async def _validate_pending(
    session: TenantSession,
    loaders: Sequence[DataLoader],
    *,
    settings: Settings,
    force: bool,
    rejects: RejectFile | None = None,
) -> tuple[list[DataLoader], ValidationReport]:
    """Validate the fixtures this load will apply (those not already applied as they
    are), against the set and the tenant's rows; with ``rejects`` (lenient), the source
    documents set aside while staging go there first."""
    pending = await _pending(session, loaders, force=force, lenient=rejects is not None)
    for loader in pending:
        if isinstance(loader, SourceLoader):
            await loader.prepare(session, settings, set_aside=rejects is not None)
    refused = _documents_set_aside(pending, rejects)

    def relocate(error: FixtureError) -> None:
        for loader in pending:
            loader.relocate(error)

    validator = FixtureValidator(
        session.metadata,
        max_problems=settings.validation_max_problems,
        timeout_seconds=settings.validation_timeout_seconds,
        max_text_length=settings.max_text_length,
        checks={t: c for loader in pending for t, c in loader.record_checks(settings).items()},
    )
    report = await validator.validate_for_tenant(
        [file for loader in pending for file in loader.files],
        session,
        rejects=rejects,
        replaced={t for loader in pending for t, m in loader.modes.items() if m == "replace"},
        locate=relocate,
        loader_of={f.path: i for i, loader in enumerate(pending) for f in loader.files},
    )
    for aside in refused:
        validator.count_refused(report, aside.error)
    return pending, report


async def _pending(
    session: TenantSession, loaders: Sequence[DataLoader], *, force: bool, lenient: bool
) -> list[DataLoader]:
    """The loaders whose fixtures are not applied to the tenant as they are now (for a
    ``lenient`` load, applied in part by an earlier lenient load counts)."""
    recorded = await control_plane.applied_fixtures(session.connection, session.tenant_id)
    return [
        loader
        for loader in loaders
        if force
        or (prior := recorded.get(loader.name)) is None
        or not is_applied(prior, loader.checksum(), loader.version, lenient=lenient)
    ]


def _documents_set_aside(
    pending: Sequence[DataLoader], rejects: RejectFile | None
) -> list[SetAside]:
    """The source documents the ``pending`` loaders set aside while staging, written to
    ``rejects`` when given."""
    found = [a for loader in pending if isinstance(loader, SourceLoader) for a in loader.set_aside]
    if rejects is not None:
        for aside in found:
            rejects.write_document(
                aside.error,
                table=aside.table,
                index=aside.index,
                record=aside.record,
                implied=aside.implied,
            )
    return found
