"""DataIntegrityValidator: checks what a tenant holds after loading, and on demand.

Each check reads the tenant (nothing is changed) and adds results to an
:class:`IntegrityReport`:

``schema``
    every table of the tenant schema exists;
``objects``
    the storage holds no table, view, function, trigger, rule, policy... that the schema
    does not declare (:mod:`.objects`);
``row_counts``
    no table holds fewer rows than its applied fixtures loaded;
``orphans``
    no row references a parent row that is missing (a backend that did not enforce
    a foreign key, or a tampered file, lets them through);
``duplicates``
    no primary-key, unique-constraint or unique-index value is held by two rows (the
    PostgreSQL bulk path drops and rebuilds keys; a SQLite file can be edited);
``not_null`` and ``check_constraints``
    no row breaks a NOT NULL column or a CHECK constraint of the schema, counted with
    ``col IS NULL`` and ``NOT (check)`` queries whether or not the backend enforces them;
``checksums``
    each table's content checksum (:mod:`tenancy_fixtures.loading.checksums`) equals
    the one its fixtures recorded when they wrote it; a table that fixtures upserted
    into cannot be compared and is reported as information. Where rows carry their
    writer (PostgreSQL, :meth:`TenantSession.unstamped_rows`), a table whose rows were
    all written by its stamped writes, as many as they left, in the shape it had then,
    and whose column types read back as the loader typed them, is given their checksum
    without being read; any other table is read and recomputed;
``tokens``
    with ``TENANCY_SECRET_KEY`` set, every token of an encrypted column decrypts with
    the tenant's data key or a master key (:mod:`.tokens`);
``isolation``
    nothing of another tenant is reachable from this tenant's session (:mod:`.isolation`);
``privileges``
    owners and grants are those of the least-privilege model (PostgreSQL,
    :mod:`tenancy_fixtures.store.postgres.privileges`);
``storage``
    the tenant's storage is within its config's ``storage`` limit.

Checking every tenant adds one more check, ``registry`` (:meth:`DataIntegrityValidator.
check_registry`): a failed report for each tenant whose storage has no registry row
(a file or schema nothing lists) or whose registry row has no storage.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Column, Table

from tenancy_fixtures.errors import (
    PermissionDeniedError,
    SchemaOutdatedError,
    TenantStorageMissingError,
)
from tenancy_fixtures.fixtures.schema import SchemaFixture
from tenancy_fixtures.loading.checksums import ContentChecksum, add_checksums
from tenancy_fixtures.loading.derived import derived_tables
from tenancy_fixtures.loading.table_checksums import table_checksum
from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.monitoring.performance import PerformanceTracker, tracker_for
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.store.base import TenantSession, TenantStore
from tenancy_fixtures.store.control_plane import TableChecksum
from tenancy_fixtures.store.migration_ledger import RevisionHistory
from tenancy_fixtures.tenancy.sizes import format_size, parse_size
from tenancy_fixtures.validation.drift import check_drift
from tenancy_fixtures.validation.isolation import check_isolation
from tenancy_fixtures.validation.objects import report_objects, report_privileges
from tenancy_fixtures.validation.row_checks import RowChecks, row_checks
from tenancy_fixtures.validation.tokens import TOKENS_CHECK, check_tokens

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = [
    "CHECKS",
    "REGISTRY_CHECK",
    "CheckResult",
    "DataIntegrityValidator",
    "IntegrityReport",
    "TableContent",
    "expected_contents",
]

#: The checks, in the order they run and are reported.
CHECKS = (
    "schema",
    "objects",
    "row_counts",
    "orphans",
    "duplicates",
    "not_null",
    "check_constraints",
    "checksums",
    "tokens",
    "isolation",
    "privileges",
    "storage",
)
#: What a report says when a missing table or column, or a schema behind the head,
#: keeps the checks of the rows (and of encrypted values) from running.
_ROWS_NOT_CHECKED = (
    "rows not checked until the schema matches: "
    + ", ".join(CHECKS[CHECKS.index("row_counts") : CHECKS.index("tokens") + 1])
    + " skipped"
)
#: The check of every tenant at once: registry rows and storage match.
REGISTRY_CHECK = "registry"
CheckStatus = Literal["ok", "failed", "info"]
ContentStatus = Literal["match", "mismatch", "not_comparable", "not_compared", "no_fixture"]
#: How a table's checksum was found: its rows read and hashed again, or its rows shown
#: (by their writers' transaction ids) to be exactly those of its recorded writes.
ContentMethod = Literal["recomputed", "write_stamps"]

#: Rows fetched per round trip when recomputing checksums.
_FETCH_ROWS = 5000

log = get_logger("tenancy_fixtures.validation.integrity")


@dataclass(frozen=True)
class CheckResult:
    """One line of a report: a check, how it came out, and what it found."""

    check: str
    status: CheckStatus
    detail: str
    table: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "check": self.check,
            "status": self.status,
            "detail": self.detail,
            "table": self.table,
        }


@dataclass(frozen=True)
class TableContent:
    """A table's content checksum now, and what its fixtures say it should be."""

    rows: int
    checksum: str
    status: ContentStatus
    expected_rows: int | None = None
    expected: str | None = None
    method: ContentMethod = "recomputed"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "rows": self.rows,
            "checksum": self.checksum,
            "status": self.status,
            "expected_rows": self.expected_rows,
            "expected": self.expected,
            "method": self.method,
        }


@dataclass
class IntegrityReport:
    """What checking one tenant found. ``problems`` holds the detail of every failure."""

    tenant_id: str
    row_counts: dict[str, int] = field(default_factory=dict)
    orphans: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    checksums: dict[str, TableContent] = field(default_factory=dict)
    storage_bytes: int | None = None
    storage_limit: int | None = None
    #: Seconds per check.
    stages: dict[str, float] = field(default_factory=dict)
    #: Set when the report was stored in the control plane as a ``validate`` run.
    run_id: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the tenant passed every check."""
        return not self.problems

    @property
    def total_rows(self) -> int:
        """Rows across all tables."""
        return sum(self.row_counts.values())

    @property
    def failed_checks(self) -> list[str]:
        """The checks that failed, in report order."""
        return list(dict.fromkeys(c.check for c in self.checks if c.status == "failed"))

    def fail(self, check: str, detail: str, *, table: str | None = None) -> None:
        """Record a failure of ``check``."""
        self.checks.append(CheckResult(check, "failed", detail, table))
        self.problems.append(detail)

    def note(self, check: str, detail: str, *, table: str | None = None) -> None:
        """Record something worth knowing that is not a failure."""
        self.checks.append(CheckResult(check, "info", detail, table))

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view: the format of ``validate-data --json`` (see the README)."""
        return {
            "tenant_id": self.tenant_id,
            "ok": self.ok,
            "run_id": self.run_id,
            "checks": [c.as_dict() for c in self.checks],
            "problems": list(self.problems),
            "row_counts": dict(self.row_counts),
            "orphans": dict(self.orphans),
            "checksums": {t: c.as_dict() for t, c in self.checksums.items()},
            "storage": {"bytes": self.storage_bytes, "limit": self.storage_limit},
            "stages": dict(self.stages),
        }


@dataclass
class _Expected:
    """What a table should hold according to the writes recorded for it."""

    rows: int = 0
    checksums: list[str] = field(default_factory=list)
    #: The columns its checksums cover, in order (``None``: the table's own, as
    #: recorded before columns were kept).
    columns: tuple[str, ...] | None = None
    #: Why no recorded checksum describes the table (``None``: one does).
    unknown: str | None = None

    @property
    def comparable(self) -> bool:
        return self.unknown is None

    @property
    def checksum(self) -> str:
        return add_checksums(self.checksums)

    def covering(self, write: TableChecksum) -> bool:
        """Take on the columns ``write``'s checksum covers; whether they are the ones
        the earlier writes' cover (so its checksum adds to theirs)."""
        if write.columns is None or self.columns in (None, write.columns):
            self.columns = self.columns or write.columns
            return True
        self.unknown = "its loads covered different columns: the table changed between them"
        return False


#: Write modes that only add rows to what the table held (or leave rows as they were).
_ADDING_MODES = frozenset({"insert", "upsert", "insert_missing"})
_UPSERTED = "rows were upserted"
_DERIVED = "a derived table, recomputed from its source rows after each load"


def expected_contents(writes: Sequence[TableChecksum]) -> dict[str, _Expected]:
    """Fold the recorded writes, oldest first, into what each table should hold.

    A ``replace`` starts the table afresh; a ``purge`` (retention) takes its rows out;
    rows only inserted add their checksum; rows
    given that were all already there change nothing; any update, or inserts mixed with
    unchanged rows, leaves a content no recorded checksum describes. A write of several
    modes at once (``mixed``, which may have replaced the table) is only comparable as
    the table's first. Checksums over different columns (a migration between two
    writes changed the table) do not add up either.
    """
    expected: dict[str, _Expected] = {}
    for write in writes:
        if write.mode == "replace":
            expected[write.table] = _Expected(write.rows, [write.checksum], write.columns)
            continue
        if write.mode == "purge":  # retention: its checksum is the removed rows', negated
            if (state := expected.get(write.table)) is not None and state.covering(write):
                state.rows -= write.rows
                state.checksums.append(write.checksum)
            continue
        first = write.table not in expected
        state = expected.setdefault(write.table, _Expected())
        if write.mode not in _ADDING_MODES and not first:
            state.unknown = _UPSERTED
        elif write.updated == 0 and write.unchanged == 0:
            if state.covering(write):
                state.rows += write.rows
                state.checksums.append(write.checksum)
        elif write.updated or write.inserted:
            state.unknown = _UPSERTED
    return expected


class DataIntegrityValidator:
    """Checks one tenant after loading; see the module docstring for the checks."""

    def __init__(self, store: TenantStore, *, recompute_checksums: bool = False) -> None:
        self.store = store
        #: Read and hash every table again even where write stamps show its rows are
        #: those its fixtures wrote (a check of the data files under the database).
        self.recompute_checksums = recompute_checksums

    async def check(self, tenant_id: str) -> IntegrityReport:
        """Check one tenant (read only)."""
        report = IntegrityReport(tenant_id)
        tracker = tracker_for(self.store.settings)
        async with self.store.session(tenant_id, readonly=True) as session:
            existing = await session.table_names()
            tables = [t for t in session.metadata.sorted_tables if t.name in existing]
            readable = await self._check_structure(session, tables, report, tracker)
            recorded = await _Recorded.read(session.connection, tenant_id)
            if readable:
                await self._check_contents(session, tables, existing, recorded, report, tracker)
                await self._check_tokens(session, tables, report, tracker)
            await self._check_access(session, recorded.other_tenants, report, tracker)
        with _check(report, tracker, "storage") as summary:
            summary.append(await self._storage(report, recorded.config))
        report.stages = tracker.summary()
        return report

    async def check_registry(self) -> list[IntegrityReport]:
        """A failed report for each tenant with storage but no registry row, and for each
        registered tenant whose storage is missing; ``cleanup <tenant>`` removes either."""
        mismatch = await self.store.registry_mismatch()
        reports = []
        for tenant_id in mismatch.unregistered:
            report = IntegrityReport(tenant_id)
            report.fail(
                REGISTRY_CHECK,
                f"storage {self.store.storage_name(tenant_id)} is not registered "
                f"(an orphan: list, show and load do not see it); cleanup {tenant_id} removes it",
            )
            reports.append(report)
        for tenant_id in mismatch.missing:
            report = IntegrityReport(tenant_id)
            missing = TenantStorageMissingError(tenant_id, self.store.storage_name(tenant_id))
            report.fail(REGISTRY_CHECK, missing.problem)
            reports.append(report)
        return reports

    async def _check_structure(
        self,
        session: TenantSession,
        tables: Sequence[Table],
        report: IntegrityReport,
        tracker: PerformanceTracker,
    ) -> bool:
        """The ``schema`` and ``objects`` checks: what the storage declares, and drift
        from the schema definition. Returns whether the rows can be read as declared
        (no table or column missing, not behind the migration head)."""
        readable = True
        with _check(report, tracker, "schema") as summary:
            declared = await SchemaFixture(session.metadata).verify(session)
            for problem in declared:
                report.fail("schema", problem)
            history = self.store.history
            drift = await check_drift(self.store, session, history)
            for finding in drift.findings:
                if finding not in declared:  # a missing table: named by both
                    report.fail("schema", finding)
                # A missing table or column breaks the scans; a lost key or index
                # does not (and the scans then find what it let in).
                lost = finding.startswith(("table ", "column ")) and finding.endswith(" is missing")
                readable = readable and not lost
            if history is not None and drift.revision != history.head:
                report.fail("schema", _not_at_head(session.tenant_id, drift.revision, history))
                readable = False
            summary.append(
                f"{len(tables)} tables present, "
                + ("matching the definition" if drift.ok else f"{len(drift.findings)} drifted")
                + (f" at revision {drift.revision}" if drift.revision else "")
            )
            if not readable:  # said as a note: a failed check shows no summary
                report.note("schema", _ROWS_NOT_CHECKED)
        with _check(report, tracker, "objects") as summary:
            found = await session.undeclared_objects()
            summary.append(report_objects(found, lambda p: report.fail("objects", p)))
        return readable

    async def _check_contents(
        self,
        session: TenantSession,
        tables: Sequence[Table],
        existing: set[str],
        recorded: _Recorded,
        report: IntegrityReport,
        tracker: PerformanceTracker,
    ) -> None:
        """The checks of the rows: counts, orphans, duplicates, constraints, checksums."""
        checks = row_checks(tables, existing, session.connection.dialect.name)
        with tracker.stage("scan"):
            scans = await _scan(session, checks)
        report.row_counts = {name: scan.rows for name, scan in scans.items()}
        with _check(report, tracker, "row_counts") as summary:
            short = self._row_counts(report, recorded.applied, recorded.writes)
            summary.append(
                f"{report.total_rows:,} rows in {len(tables)} tables, none missing since loading"
            )
        with _check(report, tracker, "orphans") as summary:
            keys = await _orphans(session, checks, report)
            summary.append(f"{keys} foreign keys, no orphans")
        with _check(report, tracker, "duplicates") as summary:
            keys = await _duplicates(session, checks, report)
            summary.append(f"{keys} keys, no duplicates")
        with _check(report, tracker, "not_null") as summary:
            summary.append(_report_nulls(report, tables, scans))
        with _check(report, tracker, "check_constraints") as summary:
            summary.append(_report_broken_checks(report, tables, scans))
        with _check(report, tracker, "checksums") as summary:
            summary.append(await self._checksums(session, tables, recorded, short, report))

    async def _check_tokens(
        self,
        session: TenantSession,
        tables: Sequence[Table],
        report: IntegrityReport,
        tracker: PerformanceTracker,
    ) -> None:
        """The ``tokens`` check: every encrypted value decrypts with a key known now."""
        with _check(report, tracker, TOKENS_CHECK) as summary:
            summary.append(
                await check_tokens(
                    session,
                    tables,
                    self.store.settings.secret_key,
                    fail=lambda detail, table: report.fail(TOKENS_CHECK, detail, table=table),
                    note=lambda detail, table: report.note(TOKENS_CHECK, detail, table=table),
                )
            )

    async def _check_access(
        self,
        session: TenantSession,
        others: list[str],
        report: IntegrityReport,
        tracker: PerformanceTracker,
    ) -> None:
        """The ``isolation`` and ``privileges`` checks: who can reach what."""
        with _check(report, tracker, "isolation") as summary:
            findings = await check_isolation(self.store, session, other_tenants=others)
            for problem in findings.problems:
                report.fail("isolation", problem)
            for note in findings.notes:
                report.note("isolation", note)
            summary.append("; ".join(findings.verified))
        with _check(report, tracker, "privileges") as summary:
            review = await self.store.review_access(session)
            summary.append(report_privileges(review, lambda p: report.fail("privileges", p)))

    async def record(
        self, report: IntegrityReport, *, actor: str, run_id: str, started_at: datetime
    ) -> None:
        """Store ``report`` as a ``validate`` run of its tenant and audit it.

        A database user that may only read cannot: the report then keeps no ``run_id``
        and a warning says which privilege recording needs.
        """
        outcome = "ok" if report.ok else "failed"
        try:
            async with self.store.control() as conn:
                report.run_id = run_id
                await control_plane.record_run(
                    conn,
                    run_id=run_id,
                    tenant_id=report.tenant_id,
                    operation="validate",
                    status=outcome,
                    started_at=started_at,
                    stages=report.stages,
                    detail=report.as_dict(),
                )
                if self.store.settings.audit_logging:
                    await control_plane.append_audit(
                        conn,
                        actor=actor,
                        action="data.validate",
                        tenant_id=report.tenant_id,
                        outcome=outcome,
                        run_id=run_id,
                        detail={
                            "failed_checks": report.failed_checks,
                            "problems": report.problems[:20],
                        },
                    )
        except PermissionDeniedError as exc:
            report.run_id = None
            log.warning("validation_not_recorded", tenant_id=report.tenant_id, reason=exc.message)

    @staticmethod
    def _row_counts(
        report: IntegrityReport,
        applied: dict[str, control_plane.AppliedFixture],
        writes: Sequence[TableChecksum] = (),
    ) -> set[str]:
        """Fail tables holding fewer rows than their fixtures loaded, less what retention
        purged; returns them."""
        expected = _loaded_rows(applied, writes)
        short: set[str] = set()
        derived = derived_tables()
        for table_name, rows in expected.items():
            if table_name in derived:  # recomputed after loads: it may hold fewer rows
                continue
            actual = report.row_counts.get(table_name, 0)
            if actual < rows:
                short.add(table_name)
                report.fail(
                    "row_counts",
                    f"{table_name}: {actual} rows, but {rows} were loaded by its fixtures",
                    table=table_name,
                )
        return short

    async def _checksums(
        self,
        session: TenantSession,
        tables: Sequence[Table],
        recorded: _Recorded,
        short: set[str],
        report: IntegrityReport,
    ) -> str:
        expected = expected_contents(recorded.writes)
        for name in derived_tables() & expected.keys():
            expected[name].unknown = _DERIVED
        proven = await self._stamped(session, tables, expected, len(recorded.writes), short, report)
        matched = 0
        for table in tables:
            name = table.name
            wanted = expected.get(name)
            if wanted is not None and name in proven:
                report.checksums[name] = TableContent(
                    wanted.rows,
                    wanted.checksum,
                    "match",
                    wanted.rows,
                    wanted.checksum,
                    method="write_stamps",
                )
                matched += 1
                continue
            columns = _covered(table, wanted, report)
            content = table_checksum(table, columns)
            counted = report.row_counts.get(name)
            async for rows in session.scan_rows(table, _FETCH_ROWS, rows=counted, columns=columns):
                content.add(rows)
            matched += _compare(report, name, content, wanted, short)
        return f"{matched} of {len(tables)} tables match what their fixtures loaded"

    async def _stamped(
        self,
        session: TenantSession,
        tables: Sequence[Table],
        expected: dict[str, _Expected],
        writes: int,
        short: set[str],
        report: IntegrityReport,
    ) -> set[str]:
        """The comparable tables whose rows are exactly those their recorded writes left,
        told by the rows' writers (none where the backend cannot tell, or when a load
        committed since the ``writes`` were read). Which writes are stamped at all is the
        store's choice (:meth:`TenantSession.stamping`)."""
        if self.recompute_checksums:
            return set()
        candidates = [
            table
            for table in tables
            if (wanted := expected.get(table.name)) is not None
            and wanted.comparable
            and table.name not in short
            and report.row_counts.get(table.name) == wanted.rows
        ]
        counts = await session.unstamped_rows(candidates, writes=writes) if candidates else None
        return {
            name
            for name, (rows, unstamped) in (counts or {}).items()
            if rows == expected[name].rows and unstamped == 0
        }

    async def _storage(self, report: IntegrityReport, config: dict[str, Any] | None) -> str:
        used = await self.store.storage_bytes(report.tenant_id)
        report.storage_bytes = used
        try:
            limit = parse_size((config or {})["limits"]["storage"])
        except (KeyError, TypeError, ValueError):
            report.note("storage", f"{format_size(used)} used; no storage limit in the config")
            return f"{format_size(used)} used"
        report.storage_limit = limit
        if used > limit:
            report.fail(
                "storage",
                f"storage: {format_size(used)} ({used:,} bytes) used, over the "
                f"{format_size(limit)} limit",
            )
        return f"{format_size(used)} used of {format_size(limit)}"


def _not_at_head(tenant_id: str, revision: str | None, history: RevisionHistory) -> str:
    """Why a tenant's rows are not checked when its schema is not at the head: behind
    it (migrate it), or at a revision the code's history lacks, which ``migrate``
    refuses (a newer release's: the load's :class:`SchemaOutdatedError` says what to do)."""
    if revision in history.chain:
        return (
            f"schema revision {revision} is behind the head {history.head}: "
            f"run `tenancy-fixtures migrate -t {tenant_id}`"
        )
    return str(SchemaOutdatedError(tenant_id, revision=revision, head=history.head, unknown=True))


def _loaded_rows(
    applied: dict[str, control_plane.AppliedFixture], writes: Sequence[TableChecksum]
) -> dict[str, int]:
    """The fewest rows each table should hold: the most any fixture loaded into it, less
    what retention purged. A ``replace`` starts a table afresh, so a table replaced is
    counted from its writes since the last replace (those rows, or the most a later
    write gave), not from every fixture ever applied."""
    expected: dict[str, int] = {}
    for fixture in applied.values():
        for table_name, rows in fixture.row_counts.items():
            expected[table_name] = max(expected.get(table_name, 0), rows)
    replaced = {write.table for write in writes if write.mode == "replace"}
    for write in writes:
        if write.mode == "replace":
            expected[write.table] = write.rows
        elif write.mode == "purge":
            if write.table in expected:
                expected[write.table] -= write.rows
        elif write.table in replaced:
            expected[write.table] = max(expected.get(write.table, 0), write.rows)
    return expected


def _covered(
    table: Table, wanted: _Expected | None, report: IntegrityReport
) -> list[Column[Any]] | None:
    """The columns of ``table`` to recompute its checksum over: those its recorded
    checksums cover when a migration has added others since (``None``: all of them).
    A covered column since dropped or renamed leaves the table not comparable."""
    if wanted is None or not wanted.comparable or wanted.columns is None:
        return None
    present = {column.name: column for column in table.columns}
    if wanted.columns == tuple(present):
        return None
    if gone := [name for name in wanted.columns if name not in present]:
        wanted.unknown = f"column(s) {', '.join(gone)} its loads covered are gone"
        return None
    if added := [name for name in present if name not in wanted.columns]:
        report.note(
            "checksums",
            f"{table.name}: compared over the {len(wanted.columns)} columns its loads "
            f"covered (added since: {', '.join(added)})",
            table=table.name,
        )
    return [present[name] for name in wanted.columns]


def _compare(
    report: IntegrityReport,
    name: str,
    content: ContentChecksum,
    recorded: _Expected | None,
    short: set[str],
) -> int:
    """Report how table ``name``'s recomputed checksum compares with what its recorded
    writes leave; returns 1 if it matches (or the table is empty and unrecorded)."""
    actual = content.hexdigest()
    if recorded is None:
        report.checksums[name] = TableContent(content.rows, actual, "no_fixture")
        if not content.rows:
            return 1
        report.note(
            "checksums",
            f"{name}: {content.rows} rows, but no fixture recorded a checksum "
            "for them (not compared)",
            table=name,
        )
        return 0
    if not recorded.comparable:
        report.checksums[name] = TableContent(content.rows, actual, "not_comparable")
        report.note("checksums", f"{name}: not comparable ({recorded.unknown})", table=name)
        return 0
    status: ContentStatus = "match"
    if (content.rows, actual) != (recorded.rows, recorded.checksum):
        status = "not_compared" if name in short else "mismatch"
    report.checksums[name] = TableContent(
        content.rows, actual, status, recorded.rows, recorded.checksum
    )
    if status == "not_compared":
        report.note(
            "checksums", f"{name}: not compared, rows are missing (see row_counts)", table=name
        )
    elif status == "mismatch":
        report.fail(
            "checksums",
            f"{name}: content checksum {actual} differs from {recorded.checksum}, "
            f"the checksum of the rows its fixtures loaded ({content.rows} rows now, "
            f"{recorded.rows} loaded)",
            table=name,
        )
    return int(status == "match")


@contextmanager
def _check(report: IntegrityReport, tracker: PerformanceTracker, name: str) -> Iterator[list[str]]:
    """Time one check; if it added no failure, put an ``ok`` line with its summary first.

    The block appends its summary to the list it is given.
    """
    start = len(report.checks)
    summary: list[str] = []
    with tracker.stage(name):
        yield summary
    if not any(c.status == "failed" for c in report.checks[start:]):
        detail = "; ".join(s for s in summary if s) or "ok"
        report.checks.insert(start, CheckResult(name, "ok", detail))


@dataclass(frozen=True)
class _Recorded:
    """What the control plane recorded about the tenant and its neighbours."""

    applied: dict[str, control_plane.AppliedFixture]
    writes: list[TableChecksum]
    config: dict[str, Any] | None
    other_tenants: list[str]

    @classmethod
    async def read(cls, conn: AsyncConnection, tenant_id: str) -> _Recorded:
        """Read the fixtures applied, the table writes, the config and the other tenants."""
        applied = await control_plane.applied_fixtures(conn, tenant_id)
        writes = await control_plane.table_checksums(conn, tenant_id)
        config = await control_plane.load_config(conn, tenant_id)
        others = [
            t.tenant_id for t in await control_plane.list_tenants(conn) if t.tenant_id != tenant_id
        ]
        return cls(applied, writes, config, others)


def _report_nulls(report: IntegrityReport, tables: Sequence[Table], scans: dict[str, _Scan]) -> str:
    """Fail each NOT NULL column the scans found NULLs in; returns the summary."""
    for table in tables:
        for column, nulls in scans[table.name].nulls.items():
            if nulls:
                report.fail(
                    "not_null",
                    f"{table.name}.{column}: {nulls} row(s) hold NULL in a NOT NULL column",
                    table=table.name,
                )
    columns = sum(len(s.nulls) for s in scans.values())
    return f"{columns} NOT NULL columns hold no NULL"


def _report_broken_checks(
    report: IntegrityReport, tables: Sequence[Table], scans: dict[str, _Scan]
) -> str:
    """Fail each CHECK constraint the scans found rows breaking; returns the summary."""
    for table in tables:
        for name, (sql, broken) in scans[table.name].broken.items():
            if broken:
                report.fail(
                    "check_constraints",
                    f"{table.name}: {broken} row(s) break CHECK {name} ({sql})",
                    table=table.name,
                )
    constraints = sum(len(s.broken) for s in scans.values())
    return f"{constraints} CHECK constraints hold on every row"


@dataclass
class _Scan:
    """One pass over a table: its rows, NULLs per NOT NULL column, rows breaking each CHECK."""

    rows: int
    nulls: dict[str, int]
    broken: dict[str, tuple[str, int]]


async def _scan(session: TenantSession, checks: RowChecks) -> dict[str, _Scan]:
    """One pass over each table (all of them in few statements)."""
    rows = await checks.scan_queries.fetch(session.connection)
    scans: dict[str, _Scan] = {}
    for scan, values in zip(checks.scans, rows, strict=True):
        count, found = int(values[0]), [int(v or 0) for v in values[1:]]
        nulls, broken = found[: len(scan.not_null)], found[len(scan.not_null) :]
        scans[scan.table.name] = _Scan(
            count,
            {c.name: n for c, n in zip(scan.not_null, nulls, strict=True)},
            {str(c.name): (str(c.sqltext), n) for c, n in zip(scan.checks, broken, strict=True)},
        )
    return scans


async def _orphans(session: TenantSession, checks: RowChecks, report: IntegrityReport) -> int:
    """Fail each foreign key with rows referencing a missing parent; returns the keys checked."""
    rows = await checks.orphan_queries.fetch(session.connection)
    for key, (found,) in zip(checks.foreign_keys, rows, strict=True):
        if orphans := int(found):
            name = f"{key.table.name}.{', '.join(column.name for column in key.columns)}"
            report.orphans[name] = orphans
            report.fail(
                "orphans",
                f"{name}: {orphans} row(s) reference a missing {key.parent} row",
                table=key.table.name,
            )
    return len(checks.foreign_keys)


async def _duplicates(session: TenantSession, checks: RowChecks, report: IntegrityReport) -> int:
    """Fail each key whose values two rows hold; returns the keys checked."""
    rows = await checks.duplicate_queries.fetch(session.connection)
    for key, (values, duplicated) in zip(checks.unique_keys, rows, strict=True):
        if values:
            names = ", ".join(c.name for c in key.columns)
            report.fail(
                "duplicates",
                f"{key.table.name}: {key.label} ({names}): {values} value(s) held by "
                f"more than one row ({duplicated} rows)",
                table=key.table.name,
            )
    return len(checks.unique_keys)
