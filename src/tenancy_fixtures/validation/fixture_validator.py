"""FixtureValidator: checks a fixture set before anything is written.

Every record is read and typed against its table, primary keys are checked for
duplicates within the set, and foreign keys are checked against the set's own rows
(where the parent table is part of the set). Problems are collected, not stopped at
the first, up to ``max_problems``.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import MetaData, Table

from tenancy_fixtures.errors import FixtureError, ValidationFailedError, ValidationTimeoutError
from tenancy_fixtures.loaders.fixture_sets import FixtureSet
from tenancy_fixtures.loaders.readers import iter_records
from tenancy_fixtures.loaders.records import RowBuilder
from tenancy_fixtures.spotify_schema import TENANT_SCHEMA, spotify_metadata

__all__ = ["FixtureValidator", "ValidationReport"]

#: Records between two looks at the clock.
_CLOCK_EVERY = 1000


@dataclass
class ValidationReport:
    """What validating a fixture set found."""

    records: int = 0
    problems: list[str] = field(default_factory=list)
    rules: Counter[str] = field(default_factory=Counter)
    truncated: bool = False

    @property
    def ok(self) -> bool:
        """Whether no problem was found."""
        return not self.problems

    def raise_for_problems(self, *, tenant_id: str | None = None) -> None:
        """Raise :class:`ValidationFailedError` listing the problems, if any."""
        if self.problems:
            raise ValidationFailedError(self.problems, tenant_id=tenant_id)


class FixtureValidator:
    """Validates fixture sets against a tenant schema."""

    def __init__(
        self,
        metadata: MetaData | None = None,
        *,
        max_problems: int = 100,
        timeout_seconds: float = 300.0,
    ) -> None:
        self.metadata = metadata if metadata is not None else spotify_metadata()
        self.max_problems = max_problems
        self.timeout_seconds = timeout_seconds

    def _table(self, name: str) -> Table:
        return self.metadata.tables[f"{TENANT_SCHEMA}.{name}"]

    def validate(self, fixture_set: FixtureSet) -> ValidationReport:
        """Read every record of ``fixture_set`` and report what is wrong.

        Raises :class:`ValidationTimeoutError` (with the problems found so far) when it
        runs past ``timeout_seconds``.
        """
        report = ValidationReport()
        deadline = time.monotonic() + self.timeout_seconds
        keys: dict[str, set[tuple[Any, ...]]] = {}
        for file in fixture_set.files:
            table = self._table(file.table)
            builder = RowBuilder(table)
            pk_positions = [builder.columns.index(c.name) for c in table.primary_key.columns]
            seen = keys.setdefault(file.table, set())
            references = self._references(table, builder, fixture_set)
            try:
                for source in iter_records(file):
                    report.records += 1
                    if report.records % _CLOCK_EVERY == 0 and time.monotonic() > deadline:
                        raise ValidationTimeoutError(
                            self.timeout_seconds, report.problems, records=report.records
                        )
                    try:
                        row = builder.build(source, path=file.relative)
                    except FixtureError as exc:
                        self._add(report, "record", str(exc))
                        continue
                    key = tuple(row[i] for i in pk_positions)
                    where = (
                        f"{file.relative}:{source.line}"
                        if source.line is not None
                        else f"{file.relative}, record {source.record}"
                    )
                    if key in seen:
                        self._add(report, "duplicate_key", f"{where}: duplicate primary key {key}")
                    seen.add(key)
                    for parent, positions in references:
                        value = tuple(row[i] for i in positions)
                        if None not in value and value not in keys.get(parent, set()):
                            self._add(
                                report,
                                "missing_reference",
                                f"{where}: {value} has no row in {parent}",
                            )
            except FixtureError as exc:
                self._add(report, "format", str(exc))
        return report

    def _references(
        self, table: Table, builder: RowBuilder, fixture_set: FixtureSet
    ) -> list[tuple[str, list[int]]]:
        in_set = set(fixture_set.tables())
        found: list[tuple[str, list[int]]] = []
        for constraint in table.foreign_key_constraints:
            parent = constraint.referred_table.name
            referred = [e.column.name for e in constraint.elements]
            parent_pk = [c.name for c in self._table(parent).primary_key.columns]
            if parent in in_set and referred == parent_pk:
                found.append((parent, [builder.columns.index(c) for c in constraint.column_keys]))
        return found

    def _add(self, report: ValidationReport, rule: str, problem: str) -> None:
        report.rules[rule] += 1
        if len(report.problems) < self.max_problems:
            report.problems.append(problem)
        else:
            report.truncated = True
