"""Error analysis: refused and failed operations grouped by rule, table and tenant over
time, from the audit log (every refusal is audited with its error's class and, since
typed context is kept, the rule broken, the table and the limit)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["ErrorAnalysis", "ErrorGroup", "analyse_errors"]


@dataclass
class ErrorGroup:
    """Refusals of one kind: same tenant, action, error class, rule and table."""

    tenant_id: str | None
    action: str
    error: str
    rule: str | None
    table: str | None
    #: Operations refused (audit records) and bad records they named.
    refusals: int = 0
    records: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    #: Refusals per UTC day (``YYYY-MM-DD``).
    by_day: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "tenant_id": self.tenant_id,
            "action": self.action,
            "error": self.error,
            "rule": self.rule,
            "table": self.table,
            "refusals": self.refusals,
            "records": self.records,
            "first_at": self.first_at.isoformat() if self.first_at else None,
            "last_at": self.last_at.isoformat() if self.last_at else None,
            "by_day": dict(self.by_day),
        }


@dataclass(frozen=True)
class ErrorAnalysis:
    """Every refusal and failure since ``since``, grouped, most frequent first."""

    since: datetime
    refused: int
    failed: int
    groups: tuple[ErrorGroup, ...]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "since": self.since.isoformat(),
            "refused": self.refused,
            "failed": self.failed,
            "groups": [g.as_dict() for g in self.groups],
        }


def _kinds(detail: Mapping[str, Any]) -> list[tuple[str | None, str | None, int]]:
    """(rule, table, bad records) for each kind of problem one refusal names."""
    problems = [p for p in detail.get("problems") or () if isinstance(p, Mapping)]
    if problems:
        counted = detail.get("rules")
        complete = counted if isinstance(counted, Mapping) else {}
        tables = Counter(p.get("rule") for p in problems)
        return [(p.get("rule"), p.get("table"), _records(p, complete, tables)) for p in problems]
    checks = detail.get("failed_checks")
    if isinstance(checks, list) and checks:
        # A failed validate-data: its problems are messages; its checks name the kind.
        return [(str(check), None, 0) for check in checks]
    rules = detail.get("rules")
    if isinstance(rules, dict) and rules:
        return [(str(rule), detail.get("table"), int(n)) for rule, n in rules.items()]
    return [(detail.get("rule"), detail.get("table"), 0)]


def _records(problem: Mapping[str, Any], complete: Mapping[str, Any], tables: Counter[Any]) -> int:
    """Bad records of one listed kind of problem. The list is cut at
    ``TENANCY_VALIDATION_MAX_PROBLEMS`` records, the per-rule counts are complete: a
    rule listed in one table only takes its complete count."""
    listed = int(problem.get("records") or 0)
    rule = problem.get("rule")
    total = complete.get(rule) if isinstance(rule, str) else None
    if tables[rule] == 1 and isinstance(total, int) and not isinstance(total, bool):
        return max(listed, total)
    return listed


def analyse_errors(records: Iterable[Mapping[str, Any]], *, since: datetime) -> ErrorAnalysis:
    """Group audit records of refusals and failures (``outcome``, ``at``, ``action``,
    ``tenant_id``, ``detail``) by tenant, action, error class, rule and table."""
    groups: dict[tuple[Any, ...], ErrorGroup] = {}
    counts = {"refused": 0, "failed": 0}
    for record in records:
        counts[record["outcome"]] = counts.get(record["outcome"], 0) + 1
        detail = record["detail"]
        error = str(detail.get("error") or record["outcome"])
        at: datetime = record["at"]
        for rule, table, bad in _kinds(detail):
            key = (record["tenant_id"], record["action"], error, rule, table)
            group = groups.setdefault(key, ErrorGroup(*key))
            group.refusals += 1
            group.records += bad
            group.first_at = group.first_at or at
            group.last_at = at
            day = at.date().isoformat()
            group.by_day[day] = group.by_day.get(day, 0) + 1
    ordered = sorted(groups.values(), key=lambda g: (-g.refusals, -g.records, str(g.tenant_id)))
    return ErrorAnalysis(since, counts["refused"], counts["failed"], tuple(ordered))
