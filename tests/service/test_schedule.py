"""The service snapshots every tenant on a schedule while it runs, and stops with it."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI

from tenancy_fixtures import FixtureManager, Settings, StorageError
from tenancy_fixtures.service import create_app
from tenancy_fixtures.service.schedule import SnapshotSchedule
from tests.cleanup import drop_every_tenant


@pytest.fixture
def service_settings(service_settings: Settings) -> Settings:
    """A schedule of 50 ms, so a test sees several rounds."""
    return service_settings.model_copy(update={"service_snapshot_interval_seconds": 0.05})


async def _rounds(schedule: SnapshotSchedule, count: int) -> None:
    for _ in range(400):
        if schedule.rounds >= count:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"{schedule.rounds} rounds, not {count}")


async def test_the_schedule_snapshots_every_tenant_and_refreshes_the_gauges(
    app: FastAPI, manager: FixtureManager, tenants: list[str]
) -> None:
    """Each round adds a snapshot of every tenant and sets its forecast gauges."""
    schedule: SnapshotSchedule = app.state.schedule
    start = schedule.rounds
    await _rounds(schedule, start + 3)
    for tenant_id in tenants:
        history = await manager.usage_history(tenant_id)
        assert len(history) >= 2
        assert {s.source for s in history} == {"snapshot"}
    exposition = manager.metrics.exposition().decode()
    assert 'tenancy_days_to_limit{limit="users",tenant="victim"}' in exposition


async def test_the_schedule_stops_when_the_app_stops(service_settings: Settings) -> None:
    """Shutting the app down cancels the task; no round runs afterwards."""
    app = create_app(service_settings)
    async with app.router.lifespan_context(app):
        schedule: SnapshotSchedule = app.state.schedule
        await drop_every_tenant(app.state.manager)
        await _rounds(schedule, 1)
        task = schedule._task
    assert task is not None
    assert task.done()
    finished = schedule.rounds
    await asyncio.sleep(0.2)
    assert schedule.rounds == finished


async def test_a_failing_round_does_not_end_the_schedule(
    app: FastAPI, manager: FixtureManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round that raises is logged; the next round runs."""
    schedule: SnapshotSchedule = app.state.schedule
    calls = 0

    async def broken(tenants: object = None) -> list[object]:
        nonlocal calls
        calls += 1
        raise RuntimeError("database away")

    monkeypatch.setattr(manager, "usage_snapshots", broken)
    # + 3: a round already under way when the patch lands still calls the real method
    # (on a busy machine it finishes after the patch), then two rounds call ``broken``.
    await _rounds(schedule, schedule.rounds + 3)
    assert calls >= 2
    assert schedule._task is not None
    assert not schedule._task.done()


async def test_no_schedule_unless_an_interval_is_set(settings: Settings) -> None:
    """By default the service takes no snapshots of its own."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        assert app.state.schedule is None


async def test_a_round_whose_snapshots_fail_still_refreshes_the_forecasts(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed snapshot (one tenant's storage failing) ended the round before the
    fleet's forecast: for as long as it failed, no tenant's gauges were refreshed."""
    async with FixtureManager(settings) as manager:
        await drop_every_tenant(manager)
        await manager.create_tenant("watched")

        async def failing(tenants: object = None) -> list[object]:
            raise StorageError("one tenant's storage failed", tenant_id="watched")

        monkeypatch.setattr(manager, "usage_snapshots", failing)
        schedule = SnapshotSchedule(manager, 3600.0)  # run by hand, never started
        try:
            await schedule.run_once()
            exposition = manager.metrics.exposition().decode()
        finally:
            await drop_every_tenant(manager)

    assert schedule.rounds == 1
    assert 'tenancy_anomaly{metric="growth",tenant="watched"}' in exposition
