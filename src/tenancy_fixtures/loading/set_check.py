"""Checking a path ``load-fixtures`` accepts without loading it (``validate-data --source``).

The path is opened into the loaders a load would use: table files are validated as
they are; source files (a manifest's ``format`` entries, or found in a directory, or
one file given) are staged as a load stages them, without a session, and their staged
rows validated with the same rules, each problem pointed back at the source file,
record and field. What only the tenant's rows can tell is listed as not checked; a
source file whose format must look up the tenant's rows to be staged at all is not
staged, and named.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData

from tenancy_fixtures.errors import FixtureError
from tenancy_fixtures.loading.data_loader import DataLoader
from tenancy_fixtures.loading.fixture_validator import FILE_RULE, FixtureValidator, ValidationReport
from tenancy_fixtures.loading.opening import open_loaders
from tenancy_fixtures.loading.planning import sort_by_dependencies
from tenancy_fixtures.loading.sources import SourceLoader
from tenancy_fixtures.settings import Settings
from tenancy_fixtures.store.base import TENANT_SCHEMA

__all__ = ["SetCheck", "check_set"]


@dataclass
class SetCheck:
    """What checking a path without a tenant found, and what it could not check."""

    report: ValidationReport
    #: Source files not staged, as ``path: why`` (only a load into a tenant checks them).
    unstaged: list[str] = field(default_factory=list)
    #: What the tenant's rows alone can tell, one line each.
    not_checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether no problem was found and every file was read."""
        return self.report.ok and not self.unstaged

    @property
    def problems(self) -> list[str]:
        """The problems, then the files not staged."""
        return self.report.problems + [f"not checked: {entry}" for entry in self.unstaged]

    @property
    def total(self) -> int:
        """How many problems were found, files not staged included."""
        return self.report.total + len(self.unstaged)


def check_set(
    source: Path,
    *,
    metadata: MetaData,
    settings: Settings,
    format: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> SetCheck:
    """Check every file ``load-fixtures`` would load from ``source``, read with
    ``format`` and ``options`` as a load reads them (nothing is written); raises what a
    load raises for the path itself (a :class:`FixtureError`, or a
    :class:`TemplateError` for loaders no order can load)."""
    opened = open_loaders(
        source,
        metadata=metadata,
        batch_size=settings.batch_size,
        format=format,
        options=options,
    )
    loaders = sort_by_dependencies(opened, metadata)
    validator = FixtureValidator(
        metadata,
        timeout_seconds=settings.validation_timeout_seconds,
        max_problems=settings.validation_max_problems,
        max_text_length=settings.max_text_length,
    )
    check = SetCheck(ValidationReport())
    try:
        staged = _stage(loaders, settings, check, validator)
        # After staging: a source loader's checks are those of the tables it staged.
        validator.checks = {
            t: c for loader in loaders for t, c in loader.record_checks(settings).items()
        }
        if staged:
            check.report = validator.validate(
                [file for loader in loaders for file in loader.files],
                locate=lambda error: _relocate(loaders, error),
                loader_of={f.path: i for i, loader in enumerate(loaders) for f in loader.files},
            )
        else:
            check.not_checked.append(
                "the other records: they are checked once every source file stages"
            )
        for loader in loaders:
            for aside in loader.set_aside if isinstance(loader, SourceLoader) else ():
                validator.count_refused(check.report, aside.error)
        check.not_checked += _tenant_only(loaders, metadata)
    finally:
        for loader in loaders:
            loader.close()
    return check


def _stage(
    loaders: Sequence[DataLoader], settings: Settings, check: SetCheck, validator: FixtureValidator
) -> bool:
    """Stage every source loader's files as a lenient load would; whether all of them
    were. A document its format refuses is set aside (counted once the staged rows are
    checked); a file refused while staging is a problem of ``check``."""
    complete = True
    for loader in loaders:
        if not isinstance(loader, SourceLoader):
            continue
        lookups = loader.tenant_lookups()
        if lookups:
            check.unstaged += [f"{path}: {why}" for path, why in lookups.items()]
            complete = False
            continue
        try:
            loader.stage(settings, set_aside=True)
        except FixtureError as exc:
            exc.rule = exc.rule or FILE_RULE
            check.report.unreadable.append(exc)
            check.report.total += 1
            check.report.rules[exc.rule] += 1
            if len(check.report.errors) < validator.max_problems:
                check.report.errors.append(exc)
            complete = False
    return complete


def _relocate(loaders: Sequence[DataLoader], error: FixtureError) -> None:
    """Point ``error`` at the source file and record its staged row came from."""
    for loader in loaders:
        loader.relocate(error)


def _tenant_only(loaders: Sequence[DataLoader], metadata: MetaData) -> list[str]:
    """What a load checks against the tenant's rows and a check of the files cannot:
    references to tables the path fills no row of, and the loaders' own checks."""
    filled = {file.table for loader in loaders for file in loader.files}
    found: dict[str, None] = {}
    for table in sorted(filled):
        for constraint in metadata.tables[f"{TENANT_SCHEMA}.{table}"].foreign_key_constraints:
            parent = constraint.referred_table.name
            if parent not in filled:
                columns = ", ".join(constraint.column_keys)
                found[
                    f"references {table}({columns}) -> {parent}: the set fills no {parent} "
                    "rows, and the tenant's are not looked up"
                ] = None
    for loader in loaders:
        found.update(dict.fromkeys(loader.tenant_checks()))
    return list(found)
