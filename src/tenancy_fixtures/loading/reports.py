"""What a load returns: :class:`LoadReport` for one tenant, :class:`ManyLoadReport` for
many."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tenancy_fixtures.errors import TenancyFixturesError
from tenancy_fixtures.fixtures.base import FixtureResult
from tenancy_fixtures.store.base import WriteCounts
from tenancy_fixtures.store.usage_ledger import UsageSnapshot

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
    #: Tables computed from others (the derivations'): counted apart, as ``derived``.
    derived_tables: frozenset[str] = frozenset()
    #: Rows the derivations recomputed per derived table after the load wrote.
    refreshed: Mapping[str, int] = field(default_factory=dict)
    #: What the tenant held once the load was in (its usage snapshot).
    usage: UsageSnapshot | None = None

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
        """Rows this call's fixtures wrote into data tables (derived tables left out:
        see :attr:`derived_rows`), as ``list`` and ``show`` count ``rows``."""
        return sum(n for t, n in self.row_counts.items() if t not in self.derived_tables)

    @property
    def derived_counts(self) -> dict[str, int]:
        """Rows written per derived table: recomputed, or given by a fixture."""
        counts = dict(self.refreshed)
        for table, rows in self.row_counts.items():
            if table in self.derived_tables:
                counts[table] = counts.get(table, 0) + rows
        return counts

    @property
    def derived_rows(self) -> int:
        """Rows written into derived tables."""
        return sum(self.derived_counts.values())


@dataclass(frozen=True)
class ManyLoadReport:
    """One fixture load into many tenants: a report per tenant that loaded, an error per
    tenant that did not."""

    reports: Mapping[str, LoadReport]
    failures: Mapping[str, TenancyFixturesError]
    seconds: float

    @property
    def rows(self) -> int:
        """Rows written into data tables across all tenants."""
        return sum(r.rows for r in self.reports.values())

    @property
    def derived_rows(self) -> int:
        """Rows written into derived tables across all tenants."""
        return sum(r.derived_rows for r in self.reports.values())

    @property
    def ok(self) -> bool:
        """Whether every tenant loaded."""
        return not self.failures
