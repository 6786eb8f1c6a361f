"""FixtureValidator: checks a fixture set before anything is written.

Every record goes through its table's :class:`RowBuilder` — the same rules the load
path enforces: types, NOT NULL, lengths, CHECK constraints, domain formats. Then, for
the records that pass, primary and unique keys are checked for duplicates within the
set, and foreign keys must resolve to a row of the set (one that passed) or, given a
tenant, to a row the tenant already holds. Tables are read in foreign-key order, so a
parent is known before its children; a child of a refused parent is refused too.

Problems are collected, not stopped at the first: each names file, line (or record
number), column and rule. The list is capped at ``max_problems``; the count per rule
(how many records broke it) is always complete. Refused records can be streamed to a
:class:`RejectFile` as they are found (lenient loading).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, partial
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Index, MetaData, Table, UniqueConstraint, select

from tenancy_fixtures.errors import (
    FixtureError,
    RecordError,
    StorageError,
    ValidationFailedError,
    ValidationTimeoutError,
)
from tenancy_fixtures.loading import records
from tenancy_fixtures.loading.fixture_sets import FixtureFile, FixtureSet
from tenancy_fixtures.loading.readers import SourceRecord, csv_header, iter_records
from tenancy_fixtures.loading.rules import DEFAULT_MAX_TEXT_LENGTH
from tenancy_fixtures.store.base import TENANT_SCHEMA, TenantSession

__all__ = [
    "ExistingKeys",
    "FixtureValidator",
    "Locator",
    "RecordChecks",
    "RejectFile",
    "ValidationReport",
    "existing_keys",
]

#: Records between two looks at the clock.
_CLOCK_EVERY = 1000
#: Rule of a file that cannot be read on (its remaining records are not checked).
FILE_RULE = "file_format"
#: Points a problem found in a file at where its data came from (in place).
Locator = Callable[[FixtureError], None]
#: Keys already in a tenant: ``(table, columns)`` -> the values of those columns.
ExistingKeys = Mapping[tuple[str, tuple[str, ...]], Collection[tuple[Any, ...]]]
#: Which loader applies each file (by path), for sets loaded by several loaders.
LoaderOf = Mapping[Path, int]
#: A set of key values per ``(table, columns)``, filled as records are read.
_KeySets = dict[tuple[str, tuple[str, ...]], set[tuple[Any, ...]]]


@dataclass(frozen=True)
class RecordChecks:
    """A loader's own checks of one table's records (see ``DataLoader.record_checks``),
    run with the schema's. Each raises :class:`RecordError` naming column and rule; the
    validator says where."""

    #: The record as read, before it is typed (first: its refusal is the one reported).
    screen: Callable[[Mapping[str, Any]], None]
    #: The typed row, by column.
    check: Callable[[Mapping[str, Any]], None]
    #: The record as a reject file may show it (a secret replaced, say).
    shown: Callable[[Mapping[str, Any]], Mapping[str, Any]]


@dataclass
class ValidationReport:
    """What validating a fixture set found."""

    records: int = 0
    #: The problems, in file order, up to the validator's ``max_problems``.
    errors: list[FixtureError] = field(default_factory=list)
    #: Rule -> how many records broke it; complete even when ``errors`` is capped.
    rules: Counter[str] = field(default_factory=Counter)
    #: Problems found in all (listed or not).
    total: int = 0
    truncated: bool = False
    #: File path -> the record numbers of the records refused in it.
    rejected: dict[Path, set[int]] = field(default_factory=dict)
    #: Files that could not be read to their end (their first problem, each).
    unreadable: list[FixtureError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether no problem was found."""
        return self.total == 0

    @property
    def problems(self) -> list[str]:
        """The listed problems as text: where, what, and the rule in brackets."""
        return [str(error) for error in self.errors]

    @property
    def rejected_records(self) -> int:
        """How many records were refused."""
        return sum(len(numbers) for numbers in self.rejected.values())

    def error(self, *, tenant_id: str | None = None) -> ValidationFailedError:
        """The :class:`ValidationFailedError` listing these problems."""
        return ValidationFailedError(
            self.problems,
            tenant_id=tenant_id,
            errors=self.errors,
            rules=self.rules,
            total=self.total,
        )

    def raise_for_problems(self, *, tenant_id: str | None = None) -> None:
        """Raise :class:`ValidationFailedError` listing the problems, if any."""
        if not self.ok:
            raise self.error(tenant_id=tenant_id)


class RejectFile:
    """Refused records as JSON Lines, one object per record::

        {"path": ..., "table": ..., "line": 7 | null, "index": 3, "column": ...,
         "rule": ..., "message": ..., "record": {the record as read}}

    ``index`` is the record's number in its file (the location of records in files
    without lines); records staged from a source format name the source file. The file
    is written as ``<name>.partial`` and only takes its name on :meth:`commit`, so a
    failed load never leaves a reject file behind.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._partial = path.with_name(path.name + ".partial")
        self._handle: IO[str] | None = None

    def open(self) -> None:
        """Start (again) with no records; :class:`StorageError` naming the reject
        directory when it cannot be written (a file, no permission...)."""
        try:
            self.discard()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self._partial.open("w", encoding="utf-8")
        except OSError as exc:
            raise StorageError(
                f"cannot write reject files in {self.path.parent} "
                f"({exc.strerror or exc}): point --reject-dir (TENANCY_REJECT_DIR) at a "
                "directory this process may write"
            ) from exc
        self.count = 0

    def write(
        self,
        error: FixtureError,
        file: FixtureFile,
        source: SourceRecord,
        shown: Mapping[str, Any] | None = None,
    ) -> None:
        """Add one refused record with the (first) problem that refused it, as ``shown``
        (default: as read)."""
        moved = error.path is not None and str(error.path) != file.relative
        self._add(
            {
                "path": str(error.path) if moved else file.relative,
                "table": file.table,
                "line": error.line if moved else source.line,
                "index": error.record if moved else source.record,
                "column": error.column,
                "rule": error.rule,
                "message": error.message,
                "record": source.values if shown is None else shown,
            }
        )

    def write_document(
        self,
        error: FixtureError,
        *,
        table: str | None,
        index: int,
        record: Any,
        implied: Mapping[str, Any] | None = None,
    ) -> None:
        """Add one source document its format refused while staging (``error`` names its
        file and line), of ``table`` (``None``: unknown), number ``index`` in its file;
        ``implied``: what its row takes from the format's options (``"implied"``)."""
        self._add(
            {
                "path": None if error.path is None else str(error.path),
                "table": table,
                "line": error.line,
                "index": index,
                "column": error.column,
                "rule": error.rule,
                "message": error.message,
                "record": record,
                **({"implied": dict(implied)} if implied else {}),
            }
        )

    def _add(self, entry: Mapping[str, Any]) -> None:
        if self._handle is None:
            raise RuntimeError("RejectFile.write before open")
        self._handle.write(_json_line(entry) + "\n")
        self.count += 1

    def commit(self) -> Path | None:
        """Give the file its name; ``None`` (and no file) when nothing was refused."""
        if self._handle is None:
            return None
        self._handle.close()
        self._handle = None
        if self.count == 0:
            self._partial.unlink(missing_ok=True)
            return None
        self._partial.replace(self.path)
        return self.path

    def discard(self) -> None:
        """Drop what was written."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):  # none written
            self._partial.unlink()


def _json_line(entry: Mapping[str, Any]) -> str:
    try:
        return json.dumps(entry, ensure_ascii=False, allow_nan=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return json.dumps(_plain(entry, 0), ensure_ascii=False, allow_nan=False, default=str)


def _plain(value: Any, depth: int) -> Any:
    """``value`` with what JSON cannot hold spelled as text (NaN, odd keys, deep nesting)."""
    if depth > 64:
        return repr(value)[:1000]
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


@dataclass
class _Key:
    """A primary or unique key of a table: its columns and the values seen so far."""

    columns: tuple[str, ...]
    values: set[tuple[Any, ...]]
    rule: str
    label: str
    get: Any
    #: The values the current loader's records gave: a key an earlier loader gave is
    #: merged by this one, not a duplicate (``values`` itself while one loader reads).
    here: set[tuple[Any, ...]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.here = self.values


@dataclass
class _Reference:
    """A foreign key: where its values are in a row and where the parents are."""

    parent: str
    columns: tuple[str, ...]
    get: Any
    in_set: set[tuple[Any, ...]] | None
    existing: Collection[tuple[Any, ...]]
    #: Keys of parent records of the set that were refused (to say so).
    refused: set[tuple[Any, ...]]
    #: The table references itself: a parent may come later in its files, so these
    #: references are resolved once the table is read (:meth:`_TablePlan.settle`).
    to_itself: bool = False


@dataclass
class _TablePlan:
    builder: records.RowBuilder
    keys: list[_Key]
    references: list[_Reference]
    #: Every key set this table's accepted rows go into (its keys, referenced columns).
    registrations: list[tuple[Any, set[tuple[Any, ...]]]]
    #: Where the keys of refused records go: (columns, getter, set), one per key set.
    refusals: list[tuple[tuple[str, ...], Any, set[tuple[Any, ...]]]]
    #: Accepted rows whose references to their own table are not resolved yet.
    pending: list[tuple[tuple[Any, ...], SourceRecord, FixtureFile]] = field(default_factory=list)

    @cached_property
    def to_itself(self) -> bool:
        """Whether the table references itself."""
        return any(reference.to_itself for reference in self.references)

    def settle(self) -> list[tuple[SourceRecord, FixtureFile, list[FixtureError]]]:
        """Resolve the pending references to the table itself, now that all its rows are
        known; returns the records refused (whose keys no longer count as rows of the
        set, so records referencing them are refused in turn)."""
        refusals: list[tuple[SourceRecord, FixtureFile, list[FixtureError]]] = []
        changed = True
        while changed:
            changed = False
            waiting = []
            for row, source, file in self.pending:
                found = _unresolved(self.references, row, source, file, to_itself=True)
                if not found:
                    waiting.append((row, source, file))
                    continue
                changed = True
                for get, values in self.registrations:
                    values.discard(get(row))
                self.refused(row, source)
                refusals.append((source, file, found))
            self.pending = waiting
        self.pending = []
        return refusals

    def refused(self, row: tuple[Any, ...] | None, source: SourceRecord) -> None:
        """Remember the keys of a refused record (as read, when it could not be typed)."""
        for columns, get, values in self.refusals:
            key = get(row) if row is not None else tuple(source.values.get(c) for c in columns)
            try:
                values.add(key)
            except TypeError:  # a list or object as a key value: it matches no reference
                continue


def _next_loader(plans: Mapping[str, _TablePlan]) -> None:
    """The files that follow are another loader's: keys given so far are merged by it."""
    for plan in plans.values():
        for key in plan.keys:
            key.here = set()


def _getter(positions: list[int]) -> Any:
    if len(positions) == 1:
        position = positions[0]
        return lambda row: (row[position],)
    return itemgetter(*positions)


def _where(source: SourceRecord, file: FixtureFile) -> dict[str, Any]:
    return {
        "path": file.relative,
        "table": file.table,
        "line": source.line,
        "record": None if source.line is not None else source.record,
    }


def _shown(columns: tuple[str, ...], values: tuple[Any, ...]) -> str:
    return f"({', '.join(columns)})=({', '.join(map(str, values))})"


class FixtureValidator:
    """Validates fixture sets against a tenant schema, optionally against a tenant too."""

    def __init__(
        self,
        metadata: MetaData,
        *,
        max_problems: int = 100,
        timeout_seconds: float = 300.0,
        max_text_length: int = DEFAULT_MAX_TEXT_LENGTH,
        checks: Mapping[str, RecordChecks] | None = None,
    ) -> None:
        self.metadata = metadata
        self.max_problems = max_problems
        self.timeout_seconds = timeout_seconds
        self.max_text_length = max_text_length
        #: The loaders' own record checks, by table.
        self.checks = dict(checks or {})

    def _table(self, name: str) -> Table:
        return self.metadata.tables[f"{TENANT_SCHEMA}.{name}"]

    def validate(
        self,
        source: FixtureSet | Iterable[FixtureFile],
        *,
        existing: ExistingKeys | None = None,
        rejects: RejectFile | None = None,
        locate: Locator | None = None,
        loader_of: LoaderOf | None = None,
    ) -> ValidationReport:
        """Read every record of ``source`` and report what is wrong.

        Without ``existing``, a foreign key whose parent table is not in the set is not
        checked; with it (see :meth:`validate_for_tenant`), a reference resolves to a
        row of the set or to one of ``existing``. Refused records go to ``rejects``;
        ``locate`` may point each problem elsewhere first (files staged from a source
        format, pointed back at the source). ``loader_of`` says which loader applies
        each file: a record whose key a file of an earlier loader gave is merged by the
        load, not a duplicate. Raises :class:`ValidationTimeoutError` (with the problems
        found so far) when it runs past ``timeout_seconds``.
        """
        deadline = time.monotonic() + self.timeout_seconds
        return self._validate(_files(source), existing, rejects, locate, loader_of, deadline)

    async def validate_for_tenant(
        self,
        source: FixtureSet | Iterable[FixtureFile],
        session: TenantSession,
        *,
        rejects: RejectFile | None = None,
        replaced: Collection[str] = (),
        locate: Locator | None = None,
        loader_of: LoaderOf | None = None,
    ) -> ValidationReport:
        """Validate ``source`` for loading into ``session``'s tenant.

        References may resolve to rows the tenant already holds (looked up once per
        referenced table, in ``session``'s transaction), except in ``replaced`` tables,
        whose rows the load deletes first. The records are checked in a worker thread;
        the timeout covers the lookups too.
        """
        deadline = time.monotonic() + self.timeout_seconds
        files = _files(source)
        wanted = {
            (parent, columns)
            for parent, columns in self._referenced(files)
            if parent not in replaced
        }
        existing = await existing_keys(session, sorted(wanted))
        if time.monotonic() > deadline:
            raise ValidationTimeoutError(self.timeout_seconds, [], records=0)
        return await asyncio.to_thread(
            self._validate, files, existing, rejects, locate, loader_of, deadline
        )

    def _referenced(self, files: list[FixtureFile]) -> set[tuple[str, tuple[str, ...]]]:
        found: set[tuple[str, tuple[str, ...]]] = set()
        for name in dict.fromkeys(f.table for f in files):
            for constraint in self._table(name).foreign_key_constraints:
                found.add(
                    (
                        constraint.referred_table.name,
                        tuple(e.column.name for e in constraint.elements),
                    )
                )
        return found

    def _validate(
        self,
        files: list[FixtureFile],
        existing: ExistingKeys | None,
        rejects: RejectFile | None,
        locate: Locator | None,
        loader_of: LoaderOf | None,
        deadline: float,
    ) -> ValidationReport:
        report = ValidationReport()
        plans = self._plans(files, existing)
        owner = (loader_of or {}).get
        for index, file in enumerate(files):
            if time.monotonic() > deadline:
                self._timed_out(report)
            if index and files[index - 1].table != file.table:
                self._settle(report, plans[files[index - 1].table], rejects, locate)
            if index and owner(files[index - 1].path) != owner(file.path):
                _next_loader(plans)
            try:
                self._check_file(report, file, plans[file.table], rejects, locate, deadline)
            except FixtureError as exc:
                self._unreadable(report, exc, locate)
        if files:
            self._settle(report, plans[files[-1].table], rejects, locate)
        return report

    def _check_file(
        self,
        report: ValidationReport,
        file: FixtureFile,
        plan: _TablePlan,
        rejects: RejectFile | None,
        locate: Locator | None,
        deadline: float,
    ) -> None:
        """Check each record of ``file``; a file that cannot be read on raises."""
        build = self._builder(plan, file)
        read = report.records
        for source in iter_records(file):
            report.records += 1
            if report.records % _CLOCK_EVERY == 0 and time.monotonic() > deadline:
                self._timed_out(report)
            try:
                row = build(source)
            except RecordError as exc:
                plan.refused(None, source)
                self._refuse(report, file, source, [exc], rejects, locate)
                continue
            found = self._relations(plan, row, source, file)
            if found:
                plan.refused(row, source)
                self._refuse(report, file, source, found, rejects, locate)
                continue
            for get, values in plan.registrations:
                values.add(get(row))
            for key in plan.keys:
                if key.here is not key.values:
                    key.here.add(key.get(row))
            if plan.to_itself:
                plan.pending.append((row, source, file))
        if report.records == read and file.format == "csv":
            # No row showed the header's columns to the builder: check them.
            plan.builder.check_columns(csv_header(file), path=file.relative, line=1)

    def _builder(
        self, plan: _TablePlan, file: FixtureFile
    ) -> Callable[[SourceRecord], tuple[Any, ...]]:
        """What types a record of ``file``: its table's builder, between the table's own
        record checks when a loader gave some."""
        build = plan.builder.build
        checks = self.checks.get(file.table)
        if checks is None:
            return partial(build, path=file.relative)
        columns = plan.builder.columns

        def checked(source: SourceRecord) -> tuple[Any, ...]:
            try:
                checks.screen(source.values)
                row: tuple[Any, ...] = build(source, path=file.relative)
                checks.check(dict(zip(columns, row, strict=True)))
            except RecordError as exc:
                if exc.path is None:  # a check's refusal: at this record
                    exc.path, exc.table, exc.line = file.relative, file.table, source.line
                    exc.record = None if source.line is not None else source.record
                raise
            return row

        return checked

    def _unreadable(
        self, report: ValidationReport, exc: FixtureError, locate: Locator | None
    ) -> None:
        """Count the problem that stopped a file from being read to its end."""
        exc.rule = exc.rule or FILE_RULE
        if locate is not None:
            locate(exc)
        report.unreadable.append(exc)
        self._count(report, [exc])

    def _settle(
        self,
        report: ValidationReport,
        plan: _TablePlan,
        rejects: RejectFile | None,
        locate: Locator | None,
    ) -> None:
        for source, file, found in plan.settle():
            self._refuse(report, file, source, found, rejects, locate)

    def _timed_out(self, report: ValidationReport) -> None:
        raise ValidationTimeoutError(
            self.timeout_seconds,
            report.problems,
            records=report.records,
            errors=report.errors,
            rules=report.rules,
        )

    def _plans(
        self, files: list[FixtureFile], existing: ExistingKeys | None
    ) -> dict[str, _TablePlan]:
        """Per table: its builder, the keys to keep unique, the references to resolve."""
        tables = list(dict.fromkeys(f.table for f in files))
        pools = self._key_pools(tables, files)
        refused: _KeySets = {key: set() for key in pools}
        return {name: self._plan(name, pools, refused, existing) for name in tables}

    def _key_pools(self, tables: list[str], files: list[FixtureFile]) -> _KeySets:
        """An empty value set per key of the tables and per column set referenced in them.

        Every key set is made first, so a reference finds its parent's set whatever the
        order of the tables.
        """
        pools: _KeySets = {
            (name, columns): set()
            for name in tables
            for columns, _, _ in _unique_keys(self._table(name))
        }
        for parent, columns in self._referenced(files):
            if parent in tables:
                pools.setdefault((parent, columns), set())
        return pools

    def _plan(
        self, name: str, pools: _KeySets, refused: _KeySets, existing: ExistingKeys | None
    ) -> _TablePlan:
        """The plan of one table, its accepted and refused keys going into the shared sets."""
        table = self._table(name)
        builder = records.RowBuilder(table, max_text_length=self.max_text_length)
        position = {c: i for i, c in enumerate(builder.columns)}
        keys = [
            _Key(
                columns,
                pools[(name, columns)],
                rule,
                label,
                _getter([position[c] for c in columns]),
            )
            for columns, rule, label in _unique_keys(table)
        ]
        registrations = [
            (_getter([position[c] for c in columns]), values)
            for (owner, columns), values in pools.items()
            if owner == name
        ]
        refusals = [
            (columns, _getter([position[c] for c in columns]), values)
            for (owner, columns), values in refused.items()
            if owner == name
        ]
        references = _references(table, position, pools, refused, existing)
        return _TablePlan(builder, keys, references, registrations, refusals)

    @staticmethod
    def _relations(
        plan: _TablePlan, row: tuple[Any, ...], source: SourceRecord, file: FixtureFile
    ) -> list[FixtureError]:
        """Duplicate keys and unresolved references of one well-formed row."""
        found: list[FixtureError] = []
        for key in plan.keys:
            value = key.get(row)
            if None not in value and value in key.here:
                found.append(
                    RecordError(
                        f"duplicate {key.label} {_shown(key.columns, value)}",
                        column=", ".join(key.columns),
                        rule=key.rule,
                        **_where(source, file),
                    )
                )
        return found + _unresolved(plan.references, row, source, file, to_itself=False)

    def _refuse(
        self,
        report: ValidationReport,
        file: FixtureFile,
        source: SourceRecord,
        found: list[FixtureError],
        rejects: RejectFile | None,
        locate: Locator | None,
    ) -> None:
        if locate is not None:
            for error in found:
                locate(error)
        self._count(report, found)
        report.rejected.setdefault(file.path, set()).add(source.record)
        if rejects is not None:
            checks = self.checks.get(file.table)
            shown = checks.shown(source.values) if checks is not None else None
            rejects.write(found[0], file, source, shown)

    def count_refused(self, report: ValidationReport, error: FixtureError) -> None:
        """Count a record refused before it reached the files checked here (a source
        document its format refused while staging) as one of ``report``'s records."""
        report.records += 1
        self._count(report, [error])

    def _count(self, report: ValidationReport, found: list[FixtureError]) -> None:
        report.total += len(found)
        for rule in {e.rule or "record" for e in found}:
            report.rules[rule] += 1
        for error in found:
            if len(report.errors) < self.max_problems:
                report.errors.append(error)
            else:
                report.truncated = True


def _unresolved(
    references: Iterable[_Reference],
    row: tuple[Any, ...],
    source: SourceRecord,
    file: FixtureFile,
    *,
    to_itself: bool,
) -> list[FixtureError]:
    """The references of ``row`` (to its own table, or to others) with no parent row."""
    found: list[FixtureError] = []
    for reference in references:
        if reference.to_itself != to_itself:
            continue
        value = reference.get(row)
        if None in value:
            continue
        if (reference.in_set is None or value not in reference.in_set) and (
            value not in reference.existing
        ):
            why = ": its record was refused" if value in reference.refused else ""
            found.append(
                RecordError(
                    f"{_shown(reference.columns, value)} has no row in {reference.parent}{why}",
                    column=", ".join(reference.columns),
                    rule="missing_reference",
                    **_where(source, file),
                )
            )
    return found


def _references(
    table: Table,
    position: Mapping[str, int],
    pools: _KeySets,
    refused: _KeySets,
    existing: ExistingKeys | None,
) -> list[_Reference]:
    """The foreign keys of ``table`` that can be resolved: to a table of the set, or to
    the tenant's rows when ``existing`` is given."""
    references: list[_Reference] = []
    # In column order, so problems come out in the same order every time.
    constraints = sorted(
        table.foreign_key_constraints,
        key=lambda c: [position[k] for k in c.column_keys],
    )
    for constraint in constraints:
        parent = constraint.referred_table.name
        referred = tuple(e.column.name for e in constraint.elements)
        in_set = pools.get((parent, referred))
        known = existing.get((parent, referred), ()) if existing is not None else None
        if in_set is None and known is None:
            continue  # the parent is neither in the set nor looked up: unknowable
        child = list(constraint.column_keys)
        references.append(
            _Reference(
                parent,
                tuple(child),
                _getter([position[c] for c in child]),
                in_set,
                known if known is not None else (),
                refused.get((parent, referred), set()),
                to_itself=parent == table.name,
            )
        )
    return references


def _files(source: FixtureSet | Iterable[FixtureFile]) -> list[FixtureFile]:
    return list(source.files if isinstance(source, FixtureSet) else source)


def _unique_keys(table: Table) -> list[tuple[tuple[str, ...], str, str]]:
    """``(columns, rule, label)`` of the primary key and every full unique constraint."""
    found: list[tuple[tuple[str, ...], str, str]] = []
    primary = tuple(c.name for c in table.primary_key.columns)
    if primary:
        found.append((primary, "duplicate_key", "primary key"))
    seen = {primary}
    uniques: list[tuple[str, ...]] = [
        tuple(c.name for c in constraint.columns)
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
    ]
    uniques += [
        tuple(c.name for c in index.columns)
        for index in table.indexes
        if index.unique and not _partial(index)
    ]
    for columns in sorted(uniques):
        if columns and columns not in seen:
            seen.add(columns)
            found.append((columns, f"unique:{','.join(columns)}", "unique key"))
    return found


def _partial(index: Index) -> bool:
    """Whether ``index`` covers only some rows (a ``WHERE`` in any dialect)."""
    return any(key.endswith("_where") and value is not None for key, value in index.kwargs.items())


async def existing_keys(
    session: TenantSession, wanted: Iterable[tuple[str, tuple[str, ...]]]
) -> dict[tuple[str, tuple[str, ...]], set[tuple[Any, ...]]]:
    """The values of ``(table, columns)`` the tenant holds, per entry."""
    found: dict[tuple[str, tuple[str, ...]], set[tuple[Any, ...]]] = {}
    for name, columns in wanted:
        table = session.metadata.tables[f"{TENANT_SCHEMA}.{name}"]
        # Buffered, not streamed: a server-side cursor stays open until the transaction
        # ends on PostgreSQL, and blocks the ALTER TABLE of the bulk load that follows.
        result = await session.connection.execute(select(*(table.c[c] for c in columns)))
        found[(name, columns)] = {tuple(row) for row in result}
    return found
