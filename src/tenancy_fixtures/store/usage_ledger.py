"""Usage snapshots in the control plane: what a tenant held, when (see ``usage_table``).

Dialect-free Core queries on whatever connection the store hands them; a load records
its snapshot on its own connection, so the snapshot commits (or rolls back) with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, Table, func, insert, select

from tenancy_fixtures.store.control_plane import (
    audit_table,
    aware,
    runs_table,
    usage_table,
    utcnow,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = [
    "RunPerformance",
    "UsageSnapshot",
    "read_latest_snapshots",
    "read_load_runs",
    "read_refusals",
    "read_snapshots",
    "record_snapshot",
]


@dataclass(frozen=True)
class UsageSnapshot:
    """One tenant's usage at ``taken_at``: rows per table, bytes, and the counters its
    limits name (``users``, ``workspaces``, ``storage``...)."""

    tenant_id: str
    taken_at: datetime
    storage_bytes: int
    row_counts: Mapping[str, int]
    counters: Mapping[str, int]
    source: str = "snapshot"
    run_id: str | None = None
    #: Tables computed from others (derived), counted apart from the data tables.
    derived_tables: frozenset[str] = field(default_factory=frozenset)

    @property
    def total_rows(self) -> int:
        """Rows across every table, derived ones included."""
        return sum(self.row_counts.values())

    @property
    def data_rows(self) -> int:
        """Rows of the tables fixtures write (derived tables left out)."""
        return sum(n for t, n in self.row_counts.items() if t not in self.derived_tables)

    @property
    def derived_rows(self) -> int:
        """Rows of derived tables."""
        return self.total_rows - self.data_rows

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "tenant_id": self.tenant_id,
            "taken_at": self.taken_at.isoformat(),
            "source": self.source,
            "run_id": self.run_id,
            "storage_bytes": self.storage_bytes,
            "rows": self.data_rows,
            "derived_rows": self.derived_rows,
            "row_counts": dict(self.row_counts),
            "counters": dict(self.counters),
        }


async def record_snapshot(conn: AsyncConnection, snapshot: UsageSnapshot) -> None:
    """Append ``snapshot`` to the tenant's usage history."""
    await conn.execute(
        insert(usage_table).values(
            tenant_id=snapshot.tenant_id,
            taken_at=snapshot.taken_at,
            source=snapshot.source,
            run_id=snapshot.run_id,
            storage_bytes=snapshot.storage_bytes,
            total_rows=snapshot.total_rows,
            row_counts=dict(snapshot.row_counts),
            counters=dict(snapshot.counters),
        )
    )


def _newest_per_tenant(
    table: Table,
    order: tuple[ColumnElement[Any], ...],
    kept: Sequence[ColumnElement[bool]],
    tenants: Sequence[str] | None,
    limit: int,
) -> Select[Any]:
    """The rows of ``table`` that ``kept`` keeps, each tenant's newest ``limit`` by
    ``order`` (the database picks them: a long history is not read to keep its tail),
    oldest first."""
    newest = (
        func.row_number()
        .over(partition_by=table.c.tenant_id, order_by=[c.desc() for c in order])
        .label("newest")
    )
    ranked = select(table, newest).where(*kept)
    if tenants is not None:
        ranked = ranked.where(table.c.tenant_id.in_(list(tenants)))
    chosen = ranked.subquery()
    return (
        select(*(chosen.c[column.name] for column in table.columns))
        .where(chosen.c.newest <= limit)
        .order_by(chosen.c.tenant_id, *(chosen.c[c.name] for c in order))
    )


async def read_snapshots(
    conn: AsyncConnection,
    *,
    tenants: Sequence[str] | None = None,
    since: datetime | None = None,
    limit: int = 500,
    derived_tables: frozenset[str] = frozenset(),
) -> dict[str, list[UsageSnapshot]]:
    """Each tenant's newest ``limit`` snapshots (since ``since``), oldest first; the
    database picks them, so a long history is not read to keep its tail."""
    kept = [] if since is None else [usage_table.c.taken_at >= since]
    query = _newest_per_tenant(
        usage_table, (usage_table.c.taken_at, usage_table.c.snapshot_id), kept, tenants, limit
    )
    history: dict[str, list[UsageSnapshot]] = {}
    for row in (await conn.execute(query)).all():
        history.setdefault(row.tenant_id, []).append(_snapshot(row, derived_tables))
    return history


def _snapshot(row: Any, derived_tables: frozenset[str]) -> UsageSnapshot:
    return UsageSnapshot(
        row.tenant_id,
        aware(row.taken_at),
        int(row.storage_bytes),
        {str(k): int(v) for k, v in dict(row.row_counts).items()},
        {str(k): int(v) for k, v in dict(row.counters).items()},
        row.source,
        row.run_id,
        derived_tables,
    )


async def read_latest_snapshots(
    conn: AsyncConnection,
    tenants: Sequence[str],
    *,
    derived_tables: frozenset[str] = frozenset(),
) -> dict[str, UsageSnapshot]:
    """The newest snapshot of each of ``tenants`` that has one (one indexed look-up per
    tenant, however long its history)."""
    if not tenants:
        return {}
    newest = (
        select(usage_table.c.tenant_id, func.max(usage_table.c.taken_at).label("taken_at"))
        .where(usage_table.c.tenant_id.in_(list(tenants)))
        .group_by(usage_table.c.tenant_id)
        .subquery()
    )
    query = (
        select(usage_table)
        .join(
            newest,
            (usage_table.c.tenant_id == newest.c.tenant_id)
            & (usage_table.c.taken_at == newest.c.taken_at),
        )
        .order_by(usage_table.c.snapshot_id)
    )
    # Two snapshots taken at the same instant: the later-recorded one wins.
    return {row.tenant_id: _snapshot(row, derived_tables) for row in await conn.execute(query)}


@dataclass(frozen=True)
class RunPerformance:
    """One load that wrote rows: when, how long, how many, how fast."""

    tenant_id: str
    run_id: str
    started_at: datetime
    seconds: float
    rows: int
    rows_per_second: float | None


async def read_load_runs(
    conn: AsyncConnection, *, tenants: Sequence[str] | None = None, limit: int = 500
) -> dict[str, list[RunPerformance]]:
    """Each tenant's newest ``limit`` loads that wrote rows, oldest first (loads
    recorded before runs kept their performance are left out); the database picks
    them, so a long history of loads is not read to keep its tail."""
    wrote = runs_table.c.detail["performance"]["rows"].as_integer()
    kept = [runs_table.c.operation == "load", runs_table.c.status == "ok", wrote > 0]
    query = _newest_per_tenant(
        runs_table, (runs_table.c.started_at, runs_table.c.run_id), kept, tenants, limit
    )
    found: dict[str, list[RunPerformance]] = {}
    for row in (await conn.execute(query)).all():
        performance = dict(row.detail)["performance"]
        speed = performance.get("rows_per_second")
        found.setdefault(row.tenant_id, []).append(
            RunPerformance(
                row.tenant_id,
                row.run_id,
                aware(row.started_at),
                float(performance.get("seconds") or dict(row.stages).get("total") or 0.0),
                int(performance["rows"]),
                float(speed) if speed is not None else None,
            )
        )
    return found


async def read_refusals(conn: AsyncConnection, *, since: datetime) -> list[dict[str, Any]]:
    """Audit records of refused or failed operations since ``since``, oldest first."""
    query = (
        select(audit_table)
        .where(audit_table.c.outcome.in_(("refused", "failed")), audit_table.c.at >= since)
        .order_by(audit_table.c.audit_id)
    )
    return [
        {**dict(row._mapping), "at": aware(row.at), "detail": dict(row.detail)}
        for row in (await conn.execute(query)).all()
    ]


def now() -> datetime:
    """The instant a snapshot is taken at."""
    return utcnow()
