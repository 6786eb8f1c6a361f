"""What a load returns: :class:`LoadReport` for one tenant, :class:`ManyLoadReport` for
many."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tenancy_fixtures.errors import TenancyFixturesError
from tenancy_fixtures.fixtures.base import FixtureResult
from tenancy_fixtures.store.base import WriteCounts

__all__ = ["LoadReport", "ManyLoadReport"]


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
