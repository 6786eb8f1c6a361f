"""A forecast of the whole fleet however many tenants it holds, on both backends."""

from __future__ import annotations

from sqlalchemy import delete, insert

from tenancy_fixtures import FixtureManager
from tenancy_fixtures.store import control_plane

#: Past the 32,767 parameters PostgreSQL takes in one query.
FLEET = 33_000


async def test_a_fleet_forecast_answers_past_32767_tenants(manager: FixtureManager) -> None:
    """``forecast --all`` (and the service's schedule) named every tenant in its queries,
    a parameter each: PostgreSQL refuses a query with more than 32,767, so a fleet that
    large got no forecast, and no gauges, at all."""
    await manager.create_tenant("measured")
    for _ in range(3):
        await manager.usage_snapshot("measured")
    tenants = control_plane.tenants_table
    now = control_plane.utcnow()
    crowd = [
        {"tenant_id": f"crowd_{i:05d}", "tier": "free", "status": "active"}
        | {"created_at": now, "updated_at": now}
        for i in range(FLEET)
    ]
    async with manager.store.control() as conn:
        await conn.execute(insert(tenants), crowd)
    try:
        forecasts = await manager.forecast()
    finally:  # registry rows alone: no drop needed, nor possible at this pace
        async with manager.store.control() as conn:
            await conn.execute(delete(tenants).where(tenants.c.tenant_id.startswith("crowd_")))

    assert len(forecasts) == FLEET + 1
    [measured] = [f for f in forecasts if f.tenant_id == "measured"]
    assert {"storage", "users"} <= {f.limit for f in measured.limits}
    assert all(f.points == 3 for f in measured.limits)
