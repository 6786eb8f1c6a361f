"""Usage, forecasts and error analysis over HTTP: the library's answers, with the API's
access rules (test_auth walks these routes with every wrong token)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tenancy_fixtures import FixtureManager, Settings, TenantFixture, TenantRecord
from tests.service.conftest import Tokens, bearer


@pytest.fixture
def service_settings(service_settings: Settings) -> Settings:
    """The service's settings with limits enforced (the suite turns them off)."""
    return service_settings.model_copy(update={"enforce_limits": True})


async def _load(
    client: httpx.AsyncClient, headers: dict[str, str], tenant_id: str = "victim"
) -> dict[str, object]:
    """Load a tenant's tier fixtures through the API; the finished job."""
    started = await client.post(f"/tenants/{tenant_id}/loads", json={}, headers=headers)
    assert started.status_code == 202, started.text
    for _ in range(600):
        job = (await client.get(started.headers["location"], headers=headers)).json()
        if job["status"] in ("succeeded", "failed"):
            return dict(job)
        await asyncio.sleep(0.05)
    raise AssertionError("the load did not finish")


async def test_a_tenants_usage_is_its_newest_snapshot_against_its_limits(
    client: httpx.AsyncClient, tokens: Tokens, admin: dict[str, str]
) -> None:
    """Before any snapshot: none; after a load: its snapshot, with users counted
    against the tier's maximum; a snapshot taken on request joins the history."""
    own = bearer(tokens.tenant[("victim", "write")])
    before = (await client.get("/tenants/victim/usage", headers=own)).json()
    assert before == {
        "tenant_id": "victim",
        "snapshot": None,
        "limits": [],
        "warnings": [],
        "breaches": [],
    }
    assert (await _load(client, admin))["status"] == "succeeded"
    usage = (await client.get("/tenants/victim/usage", headers=own)).json()
    assert usage["snapshot"]["source"] == "load"
    users = next(u for u in usage["limits"] if u["limit"] == "users")
    assert users["value"] == usage["snapshot"]["row_counts"]["users"] > 0
    assert users["maximum"] == 100  # the premium tier's
    taken = await client.post("/tenants/victim/usage", headers=own)
    assert taken.status_code == 201, taken.text
    assert taken.json()["source"] == "snapshot"
    history = (await client.get("/tenants/victim/usage/history", headers=own)).json()
    assert [s["source"] for s in history] == ["load", "snapshot"]


async def test_the_fleets_usage_lists_every_tenant_a_page_at_a_time(
    client: httpx.AsyncClient, manager: FixtureManager, tokens: Tokens
) -> None:
    """A fleet token pages through the tenants, measured ones with their snapshot."""
    await manager.usage_snapshot("intruder")
    fleet = bearer(tokens.fleet["read"])
    page = (await client.get("/usage", params={"limit": 1}, headers=fleet)).json()
    assert page["total"] == 2
    assert [i["tenant_id"] for i in page["items"]] == ["intruder"]
    assert page["items"][0]["snapshot"]["counters"]["users"] == 0
    second = (await client.get("/usage", params={"offset": 1}, headers=fleet)).json()
    assert [(i["tenant_id"], i["snapshot"]) for i in second["items"]] == [("victim", None)]


async def test_forecasts_answer_per_tenant_and_fleet_and_set_the_gauges(
    client: httpx.AsyncClient, manager: FixtureManager, tokens: Tokens
) -> None:
    """A tenant's forecast names each counted limit with its maximum; asking sets
    tenancy_days_to_limit for it, which /metrics serves."""
    for _ in range(3):
        await manager.usage_snapshot("victim")
    own = bearer(tokens.tenant[("victim", "read")])
    forecast = (await client.get("/tenants/victim/forecast", headers=own)).json()
    limits = {f["limit"]: f for f in forecast["limits"]}
    assert {"users", "workspaces", "storage"} <= set(limits)
    assert limits["users"]["maximum"] == 100
    assert limits["users"]["points"] == 3
    assert limits["users"]["days_to_limit"] is None  # flat: not growing
    fleet = bearer(tokens.fleet["read"])
    metrics = (await client.get("/metrics", headers=fleet)).text
    assert 'tenancy_days_to_limit{limit="users",tenant="victim"} +Inf' in metrics
    page = (await client.get("/forecasts", headers=fleet)).json()
    assert [f["tenant_id"] for f in page["items"]] == ["intruder", "victim"]


@contextmanager
def _dropped_once_listed(monkeypatch: pytest.MonkeyPatch, tenant: str) -> Iterator[None]:
    """``tenant`` is dropped right after the fleet's listing (as by another client
    between a page's listing and its per-tenant reads)."""
    listed = FixtureManager.list_tenants

    async def dropped_meanwhile(self: FixtureManager, **options: Any) -> list[TenantRecord]:
        records = await listed(self, **options)
        await self.drop_tenant(tenant)
        return records

    with monkeypatch.context() as patched:
        patched.setattr(FixtureManager, "list_tenants", dropped_meanwhile)
        yield


async def test_the_fleets_forecasts_leave_out_a_tenant_dropped_while_the_page_is_made(
    client: httpx.AsyncClient,
    manager: FixtureManager,
    tokens: Tokens,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A tenant dropped between the page's listing and its forecasts made the whole
    page a 404 naming it; it is left out (as ``list`` leaves it out), while the
    forecast of that tenant alone is still a 404."""
    await manager.create_tenant("doomed")
    fleet = bearer(tokens.fleet["read"])
    with _dropped_once_listed(monkeypatch, "doomed"):
        page = await client.get("/forecasts", headers=fleet)

    assert page.status_code == 200, page.text
    assert [f["tenant_id"] for f in page.json()["items"]] == ["intruder", "victim"]
    alone = await client.get("/tenants/doomed/forecast", headers=fleet)
    assert alone.status_code == 404, alone.text


@pytest.mark.parametrize("path", ["/usage", "/dashboard/"])
async def test_the_fleets_usage_leaves_out_a_tenant_dropped_while_the_page_is_made(
    client: httpx.AsyncClient,
    manager: FixtureManager,
    tokens: Tokens,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
) -> None:
    """As for /forecasts: a tenant dropped between the page's listing and its usage made
    the whole page (the API's, the dashboard's tenants page) a 404 naming it; it is left
    out, while the usage of that tenant alone is still a 404."""
    await manager.create_tenant("doomed")
    fleet = bearer(tokens.fleet["read"])
    await client.post("/dashboard/login", data={"token": tokens.fleet["read"]})
    with _dropped_once_listed(monkeypatch, "doomed"):
        page = await client.get(path, headers=fleet)

    assert page.status_code == 200, page.text
    if path == "/usage":
        assert [u["tenant_id"] for u in page.json()["items"]] == ["intruder", "victim"]
    else:
        assert "victim" in page.text
        assert "doomed" not in page.text
    alone = await client.get("/tenants/doomed/usage", headers=fleet)
    assert alone.status_code == 404, alone.text


async def test_the_fleets_errors_group_a_refused_load(
    client: httpx.AsyncClient, manager: FixtureManager, admin: dict[str, str]
) -> None:
    """A load refused by a limit appears in /errors under its tenant, error and table.
    (A tenant id of its own: audit records outlive dropped tenants on a shared server.)"""
    tenant_id = f"refused_{uuid.uuid4().hex[:12]}"
    await manager.create_tenant(
        TenantFixture(tenant_id=tenant_id, tier="premium", limits={"users": 1})
    )
    started = await client.post(f"/tenants/{tenant_id}/loads", json={}, headers=admin)
    assert started.status_code == 202, started.text
    for _ in range(600):
        job = (await client.get(started.headers["location"], headers=admin)).json()
        if job["status"] in ("succeeded", "failed"):
            break
        await asyncio.sleep(0.05)
    assert job["status"] == "failed"
    errors = (await client.get("/errors", params={"days": 1}, headers=admin)).json()
    assert errors["refused"] >= 1
    mine = [
        (g["action"], g["error"], g["table"], g["refusals"])
        for g in errors["groups"]
        if g["tenant_id"] == tenant_id
    ]
    assert mine == [("fixtures.load", "LimitExceededError", "users", 1)]


async def test_a_load_refused_by_a_limit_fails_its_job_with_a_409_naming_the_limit(
    client: httpx.AsyncClient, manager: FixtureManager, admin: dict[str, str]
) -> None:
    """The job's problem had status 400, as an error the service had no status for (a
    malformed request, which it was not): the tenant's limit conflicts with the load,
    a 409 as for a config change below usage (the same exit code, 10)."""
    await manager.create_tenant(
        TenantFixture(tenant_id="limited", tier="premium", limits={"users": 1})
    )
    job = await _load(client, admin, "limited")
    assert job["status"] == "failed"
    problem = job["problem"]
    assert isinstance(problem, dict)
    assert problem["type"] == "urn:tenancy-fixtures:error:LimitExceededError"
    assert problem["status"] == 409
    assert "limit 'users' exceeded" in problem["detail"]
