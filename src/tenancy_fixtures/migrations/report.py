"""What a fleet migration did (or, dry, would do), tenant by tenant."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["MigrationReport", "Outcome", "TenantMigration"]

#: ``migrated``: moved to its target; ``skipped``: already there; ``failed``: rolled back
#: alone, its error kept; ``planned``: a dry run's plan; ``not_attempted``: the run stopped
#: first (a failed canary, or a failure without ``keep_going``).
Outcome = Literal["migrated", "skipped", "failed", "planned", "not_attempted"]


@dataclass
class TenantMigration:
    """One tenant's part of a run: from which revision to which, and how it ended."""

    tenant_id: str
    from_revision: str | None
    to_revision: str | None
    outcome: Outcome
    seconds: float = 0.0
    error: str | None = None
    #: The revisions stepped through, in order.
    steps: list[str] = field(default_factory=list)
    #: ``--sql``: the statements the steps run.
    sql: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The result as plain data (for ``--json``)."""
        return asdict(self)


@dataclass
class MigrationReport:
    """A fleet run: every tenant it looked at, and the history's head."""

    head: str
    target: str
    results: list[TenantMigration] = field(default_factory=list)
    seconds: float = 0.0
    dry_run: bool = False
    #: Set when the run stopped early, saying why.
    stopped: str | None = None

    def with_outcome(self, outcome: Outcome) -> list[TenantMigration]:
        """The tenants that ended with ``outcome``."""
        return [r for r in self.results if r.outcome == outcome]

    @property
    def ok(self) -> bool:
        """No tenant failed and none was left out."""
        return not self.with_outcome("failed") and not self.with_outcome("not_attempted")

    def counts(self) -> dict[str, int]:
        """How many tenants ended with each outcome."""
        counts: dict[str, int] = {}
        for result in self.results:
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
        return counts

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data (for ``--json``)."""
        return {
            "head": self.head,
            "target": self.target,
            "dry_run": self.dry_run,
            "ok": self.ok,
            "stopped": self.stopped,
            "seconds": round(self.seconds, 3),
            "counts": self.counts(),
            "tenants": [r.as_dict() for r in self.results],
        }
