"""Fleet migrations at their edges, on both backends: tenants dropped while a run goes
on, revision ids the ledger cannot hold, tenants made beside a manager, targets that
leave the history for one tenant of many, and a tenant ahead of the code."""

from __future__ import annotations

from typing import Any

import pytest

from tenancy_fixtures import FixtureManager
from tenancy_fixtures.migrations import runner
from tenancy_fixtures.migrations.report import TenantMigration
from tests.integration.test_migrations import BASE, HEAD


async def _tenants(manager: FixtureManager, *ids: str) -> list[str]:
    for tenant_id in ids:
        await manager.create_tenant(tenant_id)
    return list(ids)


async def test_a_tenant_dropped_while_a_fleet_run_goes_on_is_skipped_not_a_failure(
    manager: FixtureManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tenant deprovisioned between the run's plan and its turn failed the run ("does
    not exist", exit 9) and, without keep_going, left every tenant after it
    not attempted. One the caller named is still a failure."""
    ids = await _tenants(manager, "edge_a", "edge_b", "edge_c")
    await manager.migrate(to=BASE)
    planned = runner._plan_fleet
    dropping: list[str] = [ids[0]]

    async def plan_then_drop(*args: Any) -> list[TenantMigration]:
        plan = await planned(*args)
        for tenant_id in dropping:
            await manager.drop_tenant(tenant_id)
        return plan

    monkeypatch.setattr(runner, "_plan_fleet", plan_then_drop)
    report = await manager.migrate(concurrency=1)

    assert report.ok, report.results
    assert report.stopped is None
    assert [(r.tenant_id, r.outcome) for r in report.results] == [
        (ids[0], "skipped"),
        (ids[1], "migrated"),
        (ids[2], "migrated"),
    ]
    assert {e.tenant_id: e.revision for e in await manager.migration_status()} == {
        ids[1]: HEAD,
        ids[2]: HEAD,
    }

    dropping.clear()
    await manager.migrate(to=BASE)
    dropping.append(ids[1])
    named = await manager.migrate(ids[1:], concurrency=1)

    assert [(r.tenant_id, r.outcome) for r in named.results] == [
        (ids[1], "failed"),
        (ids[2], "not_attempted"),
    ]
    assert f"tenant '{ids[1]}' does not exist" == named.results[0].error
