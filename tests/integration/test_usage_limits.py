"""Limits enforced on loads, usage snapshots, run performance and error analysis, on
both backends."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Executable, Row
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import DropTable

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.errors import LimitExceededError, RecordsRefusedError, StorageError
from tenancy_fixtures.store import control_plane, usage_ledger
from tenancy_fixtures.store.base import TENANT_SCHEMA
from tenancy_fixtures.tenancy.tenants import TenantFixture


async def test_a_free_tenant_loaded_with_20_users_is_refused_and_stays_empty(
    enforcing: FixtureManager, demo_set: Path
) -> None:
    """A free tenant (5 users) given the demo set's 20: refused naming the limit, nothing
    kept. (Its id is the test's own: the audit log the analysis reads outlives tests.)"""
    tenant = f"demo_free_{uuid.uuid4().hex[:8]}"
    await enforcing.create_tenant(tenant)
    with pytest.raises(LimitExceededError) as refused:
        await enforcing.load_fixtures(tenant, demo_set)
    error = refused.value
    assert (error.limit, error.value, error.maximum, error.tenant_id) == (
        "users",
        20,
        5,
        tenant,
    )
    assert error.table == "users"
    assert error.exit_code == 10
    status = await enforcing.tenant_status(tenant)
    assert status.total_rows == 0
    assert set(status.fixtures) == {"schema", "config"}
    assert await enforcing.usage_history(tenant) == []  # rolled back with the load
    analysis = await enforcing.error_analysis()
    [group] = [g for g in analysis.groups if g.tenant_id == tenant]
    assert (group.error, group.rule, group.table, group.refusals) == (
        "LimitExceededError",
        "limit:users",
        "users",
        1,
    )


async def test_a_storage_limit_counts_the_loads_own_bytes(enforcing: FixtureManager) -> None:
    """Storage is measured inside the load's transaction: a 64 KB limit refuses the
    starter set, which the tier's 1 GB takes."""
    await enforcing.create_tenant(TenantFixture(tenant_id="small", limits={"storage": "64KB"}))
    with pytest.raises(LimitExceededError) as refused:
        await enforcing.load_fixtures("small")
    assert refused.value.limit == "storage"
    assert refused.value.value > 64 * 1024
    assert (await enforcing.tenant_status("small")).total_rows == 0
    await enforcing.create_tenant("roomy")
    assert (await enforcing.load_fixtures("roomy")).rows > 0


async def test_a_load_records_its_snapshot_performance_and_near_limits(
    enforcing: FixtureManager,
) -> None:
    """The free starter set (3 of 5 users) loads; a tenant allowed 3 users is warned
    (100 % >= 80 %) and the warning is in the run and audit detail."""
    await enforcing.create_tenant(TenantFixture(tenant_id="tight", limits={"users": 3}))
    report = await enforcing.load_fixtures("tight")
    assert report.usage is not None
    assert report.usage.counters["users"] == 3
    [snapshot] = await enforcing.usage_history("tight")
    assert snapshot.source == "load"
    assert snapshot.run_id == report.run_id
    assert snapshot.data_rows == report.rows
    assert snapshot.derived_rows == report.derived_rows
    status = await enforcing.tenant_status("tight")
    assert status.last_load is not None
    detail = status.last_load["detail"]
    assert detail["limits"]["warnings"] == ["users"]
    assert detail["limits"]["breaches"] == []
    performance = detail["performance"]
    assert performance["rows"] == report.rows
    assert performance["rows_per_second"] > 0
    assert performance["cpu_seconds"] >= 0
    assert performance["peak_rss_bytes"] > 10 * 1024 * 1024
    [audit] = [a for a in await enforcing.audit_log("tight") if a.action == "fixtures.load"]
    assert audit.detail["limits"]["warnings"] == ["users"]


async def test_without_enforcement_a_breach_loads_and_is_recorded(
    manager: FixtureManager, demo_set: Path
) -> None:
    await manager.create_tenant("lax")
    report = await manager.load_fixtures("lax", demo_set)
    assert report.usage is not None
    assert report.usage.counters["users"] == 20
    status = await manager.tenant_status("lax")
    assert status.last_load is not None
    assert status.last_load["detail"]["limits"]["breaches"] == ["users", "workspaces"]
    # One snapshot is no trend, yet a limit passed is reached: it read "not growing".
    [forecast] = await manager.forecast(["lax"])
    users = next(f for f in forecast.limits if f.limit == "users")
    assert (None, 0.0) == (users.slope_per_day, users.days_to_limit)
    exposition = manager.metrics.exposition().decode()
    assert 'tenancy_days_to_limit{limit="users",tenant="lax"} 0.0' in exposition
    assert 'tenancy_days_to_limit{limit="storage",tenant="lax"}' not in exposition


async def test_snapshots_feed_the_forecast_and_its_gauges(
    manager: FixtureManager, demo_set: Path
) -> None:
    """A load and two snapshots later: a forecast per counted limit, gauges exported,
    and dropping the tenant drops its history."""
    await manager.create_tenant(TenantFixture(tenant_id="grows", tier="premium"))
    await manager.load_fixtures("grows")
    taken = await manager.usage_snapshots()
    assert [s.tenant_id for s in taken] == ["grows"]
    await manager.usage_snapshot("grows")
    assert len(await manager.usage_history("grows")) == 3
    [forecast] = await manager.forecast(["grows"])
    assert {f.limit for f in forecast.limits} == {"storage", "users", "workspaces"}
    users = next(f for f in forecast.limits if f.limit == "users")
    assert (users.value, users.maximum, users.points) == (20, 100, 3)
    assert users.days_to_limit is None  # flat: never
    exposition = manager.metrics.exposition().decode()
    assert 'tenancy_days_to_limit{limit="users",tenant="grows"} +Inf' in exposition
    assert 'tenancy_anomaly{metric="throughput",tenant="grows"} 0.0' in exposition
    await manager.drop_tenant("grows")
    assert (await manager.monitor.history(["grows"])) == {}


async def test_a_dropped_tenants_forecast_gauges_leave_the_metrics(
    manager: FixtureManager,
) -> None:
    """The gauges a forecast set name the tenant; after its drop ``/metrics`` served them
    on until a fleet-wide forecast, which nothing runs without the service's schedule: an
    alert on its days to a limit kept firing for a tenant that no longer exists."""
    for tenant in ("leaving", "staying"):
        await manager.create_tenant(tenant)
        for _ in range(3):  # a trend: days to each limit are known (+Inf: flat)
            await manager.usage_snapshot(tenant)
    await manager.forecast(["leaving", "staying"])
    assert 'tenant="leaving"' in manager.metrics.exposition().decode()

    await manager.drop_tenant("leaving")

    exposition = manager.metrics.exposition().decode()
    assert 'tenant="leaving"' not in exposition
    assert 'tenancy_days_to_limit{limit="storage",tenant="staying"}' in exposition
    assert 'tenancy_anomaly{metric="growth",tenant="staying"} 0.0' in exposition


async def test_the_error_analysis_counts_every_refused_record_not_only_those_listed(
    settings: Settings, demo_set: Path, tmp_path: Path
) -> None:
    """A strict refusal lists at most ``TENANCY_VALIDATION_MAX_PROBLEMS`` bad records and
    counts every one per rule; the analysis counted the listed ones: 2 records for a load
    refused for 5 bad e-mail addresses."""
    tenant = f"bad_mail_{uuid.uuid4().hex[:8]}"  # audit records outlive a shared database
    lines = (demo_set / "users.csv").read_text(encoding="utf-8").splitlines()
    rows = [line.split(",") for line in lines[1:6]]
    source = tmp_path / "set"
    source.mkdir()
    (source / "users.csv").write_text(
        "\n".join(
            [
                lines[0],
                *(",".join([*r[:2], f"not-an-email-{i}", *r[3:]]) for i, r in enumerate(rows)),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    capped = settings.model_copy(update={"validation_max_problems": 2})
    async with FixtureManager(capped) as manager:
        await manager.create_tenant(tenant)
        try:
            with pytest.raises(RecordsRefusedError) as refused:
                await manager.load_fixtures(tenant, source)
            [(rule, refused_records)] = refused.value.rules.items()
            analysis = await manager.error_analysis()
        finally:
            await manager.drop_tenant(tenant)

    assert (len(refused.value.errors), refused_records) == (2, 5)
    [group] = [g for g in analysis.groups if g.tenant_id == tenant]
    assert (group.rule, group.table, group.refusals, group.records) == (rule, "users", 1, 5)


async def test_a_fleet_snapshot_measures_every_tenant_past_one_whose_storage_fails(
    manager: FixtureManager,
) -> None:
    """A tenant whose storage lacks a table (its migration failed, say) stopped
    ``monitor snapshot --all`` there, and every round of the service's schedule: no
    tenant after it was measured again. The others are; the failure still ends the
    call, naming the tenant."""
    for tenant in ("a_fine", "b_broken", "c_fine"):
        await manager.create_tenant(tenant)
    async with manager.store.session("b_broken") as session:
        table = session.metadata.tables[f"{TENANT_SCHEMA}.workspace_playlists"]
        await session.connection.execute(DropTable(table))

    with pytest.raises(StorageError) as failed:
        await manager.usage_snapshots()

    assert failed.value.tenant_id == "b_broken"
    measured = [len(await manager.usage_history(t)) for t in ("a_fine", "b_broken", "c_fine")]
    assert measured == [1, 0, 1]


def _in_offsets(instant: datetime) -> list[datetime]:
    """The same instant written in UTC, +05:00 and -05:00."""
    return [instant.astimezone(timezone(timedelta(hours=h))) for h in (0, 5, -5)]


async def test_since_finds_the_same_snapshots_and_refusals_whatever_its_offset(
    enforcing: FixtureManager, demo_set: Path
) -> None:
    """``since`` is an instant: a minute before a snapshot or refusal finds it and a
    minute after does not, written in any UTC offset (SQLite once compared the wall
    clock, so +05:00 missed it and -05:00 reached 5 h too far back)."""
    tenant = f"offsets_{uuid.uuid4().hex[:8]}"
    await enforcing.create_tenant(tenant)
    snapshot = await enforcing.usage_snapshot(tenant)
    with pytest.raises(LimitExceededError):
        await enforcing.load_fixtures(tenant, demo_set)
    taken = snapshot.taken_at
    for since in _in_offsets(taken - timedelta(minutes=1)):
        assert [s.taken_at for s in await enforcing.usage_history(tenant, since=since)] == [taken]
        analysis = await enforcing.error_analysis(since=since)
        assert [g.refusals for g in analysis.groups if g.tenant_id == tenant] == [1]
    for since in _in_offsets(datetime.now(UTC) + timedelta(minutes=1)):
        assert await enforcing.usage_history(tenant, since=since) == []
        analysis = await enforcing.error_analysis(since=since)
        assert [g for g in analysis.groups if g.tenant_id == tenant] == []


class _CountingConnection:
    """A connection that counts the rows its queries hand back."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.rows = 0

    async def execute(self, query: Executable) -> _Rows:
        rows = (await self.conn.execute(query)).all()
        self.rows += len(rows)
        return _Rows(rows)


class _Rows:
    def __init__(self, rows: Sequence[Row[Any]]) -> None:
        self.rows = rows

    def all(self) -> Sequence[Row[Any]]:
        return self.rows


async def test_a_forecast_reads_only_the_newest_snapshots_of_a_long_history(
    manager: FixtureManager,
) -> None:
    """The newest 500 snapshots per tenant were picked in Python from every snapshot
    ever taken of every tenant asked for: a fleet's forecast grew with its whole
    history (a year of 5-minute snapshots: 100,000 rows a tenant)."""
    await manager.create_tenant("long")
    now = await manager.usage_snapshot("long")
    async with manager.store.control() as conn:
        for days in range(1, 12):
            older = replace(now, taken_at=now.taken_at - timedelta(days=days))
            await usage_ledger.record_snapshot(conn, older)

    async with manager.store.control(readonly=True) as conn:
        counting = _CountingConnection(conn)
        history = await usage_ledger.read_snapshots(
            cast("AsyncConnection", counting), tenants=["long"], limit=5
        )

    assert counting.rows == 5
    assert [s.taken_at for s in history["long"]] == [
        now.taken_at - timedelta(days=days) for days in (4, 3, 2, 1, 0)
    ]


async def test_a_forecast_reads_only_the_newest_loads_that_wrote_rows(
    manager: FixtureManager,
) -> None:
    """The newest 500 loads per tenant were picked in Python from every run ever
    recorded: a fleet's forecast read its whole history of loads, no-op reloads and
    failures included, to keep the tail of each tenant's."""
    await manager.create_tenant("busy")
    start = datetime(2026, 1, 1, tzinfo=UTC)

    async def run(day: int, *, rows: int, operation: str = "load", status: str = "ok") -> None:
        performance = {"rows": rows, "seconds": 2.0, "rows_per_second": rows / 2.0}
        async with manager.store.control() as conn:
            await control_plane.record_run(
                conn,
                run_id=f"run{day:04d}{operation}{status}",
                tenant_id="busy",
                operation=operation,
                status=status,
                started_at=start + timedelta(days=day),
                stages={"total": 2.0},
                detail={"performance": performance},
            )

    for day in range(10):
        await run(day, rows=100 + day)
        await run(day, rows=0, operation="load", status="failed")
        await run(day, rows=500, operation="migrate")
    await run(20, rows=0)  # a reload that found everything applied

    async with manager.store.control(readonly=True) as conn:
        counting = _CountingConnection(conn)
        runs = await usage_ledger.read_load_runs(
            cast("AsyncConnection", counting), tenants=["busy"], limit=3
        )

    assert counting.rows == 3
    assert [(r.started_at, r.rows, r.rows_per_second) for r in runs["busy"]] == [
        (start + timedelta(days=day), 100 + day, (100 + day) / 2.0) for day in (7, 8, 9)
    ]
