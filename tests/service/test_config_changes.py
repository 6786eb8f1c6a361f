"""Config changes over HTTP that the tenant's state decides: a limit lowered below what
it holds (409), and retention_days set back to null (keep events forever)."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tenancy_fixtures import FixtureManager, Settings

pytestmark = pytest.mark.usefixtures("tokens")


@pytest.fixture
def service_settings(service_settings: Settings) -> Settings:
    """The service's settings, enforcing limits (the suite turns them off)."""
    return service_settings.model_copy(update={"enforce_limits": True})


async def test_a_tier_downgrade_below_what_the_tenant_holds_is_a_409_and_changes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], manager: FixtureManager, demo_set: Path
) -> None:
    """Premium ``victim`` holding 20 users, patched to free (5): once a 200, and every
    later load refused; now a LimitBelowUsageError problem (409) naming the limit, the
    new value and the usage, and the config as it was."""
    await manager.load_fixtures("victim", demo_set)
    before = (await client.get("/tenants/victim/config", headers=admin)).json()

    refused = await client.patch("/tenants/victim/config", json={"tier": "free"}, headers=admin)
    lowered = await client.patch(
        "/tenants/victim/config", json={"limits": {"users": 19}}, headers=admin
    )

    for problem in (refused, lowered):
        assert 409 == problem.status_code, problem.text
        assert "application/problem+json" == problem.headers["content-type"]
        document = problem.json()
        assert "urn:tenancy-fixtures:error:LimitBelowUsageError" == document["type"]
        assert ("victim", "limit:users") == (document["tenant_id"], document["rule"])
        assert "the tenant holds 20 (rows of users) already" in document["detail"]
    assert "cannot be lowered to 5:" in refused.json()["detail"]
    assert "cannot be lowered to 19:" in lowered.json()["detail"]
    assert before == (await client.get("/tenants/victim/config", headers=admin)).json()


async def test_retention_days_can_be_patched_back_to_null(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """``{"settings": {"retention_days": null}}`` was a 422 (null is no setting value):
    now it keeps events forever, on create and on patch, and a new tier keeps it."""
    created = await client.post(
        "/tenants",
        json={"tenant_id": "forever", "tier": "premium", "settings": {"retention_days": None}},
        headers=admin,
    )
    set_to_30 = await client.patch(
        "/tenants/victim/config", json={"settings": {"retention_days": 30}}, headers=admin
    )
    reset = await client.patch(
        "/tenants/victim/config", json={"settings": {"retention_days": None}}, headers=admin
    )
    downgraded = await client.patch("/tenants/victim/config", json={"tier": "free"}, headers=admin)
    shown = await client.get("/tenants/victim/config", headers=admin)

    assert 201 == created.status_code, created.text
    assert created.json()["settings"]["retention_days"] is None
    assert 30 == set_to_30.json()["settings"]["retention_days"]
    assert 200 == reset.status_code, reset.text
    for config in (reset, downgraded, shown):
        assert config.json()["settings"]["retention_days"] is None
    assert "free" == downgraded.json()["tier"]
