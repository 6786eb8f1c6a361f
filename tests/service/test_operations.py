"""Operations over HTTP: probes, /metrics, validation, migrations, audit and runs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.service import create_app
from tests.service.conftest import Tokens, bearer

pytestmark = pytest.mark.usefixtures("tokens")


async def test_probes_answer_without_a_token(client: httpx.AsyncClient) -> None:
    """/healthz and /readyz need no token; readiness names each dependency."""
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "checks": {"database": "ok", "redis": "not configured"}}


@pytest.mark.redis
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("redis", "status", "said"),
    [("real", 200, "ok"), ("dead", 503, "Redis does not answer")],
)
async def test_readiness_reports_redis(
    settings: Settings, redis_url: str, redis: str, status: int, said: str
) -> None:
    """With a Redis configured, /readyz is 200 only while it answers (503 naming why)."""
    url = redis_url if redis == "real" else "redis://127.0.0.1:1/0"
    app = create_app(settings.model_copy(update={"redis_url": url}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
            response = await client.get("/readyz")
    assert response.status_code == status
    assert response.json()["checks"]["database"] == "ok"
    assert said in response.json()["checks"]["redis"]


async def test_metrics_expose_library_and_request_metrics(
    client: httpx.AsyncClient, admin: dict[str, str], tokens: Tokens
) -> None:
    """Prometheus text with the library's operation counters and the service's request
    counters, labelled by route template (never a tenant id)."""
    made = await client.post("/tenants", json={"tenant_id": "metered"}, headers=admin)
    assert made.status_code == 201
    await client.get("/tenants/metered", headers=admin)
    response = await client.get("/metrics", headers=bearer(tokens.fleet["read"]))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'tenancy_operations_total{operation="create",outcome="ok"}' in text
    assert (
        'tenancy_http_requests_total{method="GET",route="/tenants/{tenant_id}",status="200"}'
        in text
    )
    assert "tenancy_http_request_seconds_bucket" in text
    assert "metered" not in text


async def test_metrics_label_dashboard_requests_with_the_mount_prefix(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """A dashboard page is counted under its mounted template, apart from the API route
    of the same shape (``/tenants/{tenant_id}``) and from ``/``."""
    for path in ("/dashboard/", "/dashboard/tenants/victim", "/dashboard/static/missing.css"):
        await client.get(path)
    text = (await client.get("/metrics", headers=bearer(tokens.fleet["read"]))).text
    counted = {
        line.split("route=")[1].split('"')[1]
        for line in text.splitlines()
        if line.startswith("tenancy_http_requests_total{")
    }
    assert {"/dashboard/", "/dashboard/tenants/{tenant_id}", "/dashboard/static"} <= counted
    assert not {"/", "/tenants/{tenant_id}", "/static"} & counted


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_metrics_count_made_up_methods_under_one_label(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """Any token is a method to HTTP: each one a client made up (no token needed) was a
    label value of its own, so requests could grow the metrics without bound. Methods
    outside HTTP's standard ones are counted together as ``OTHER``."""
    for index in range(5):
        assert (await client.request(f"MADEUP{index}", "/healthz")).status_code == 405
    await client.request("PROPFIND", "/nowhere")
    text = (await client.get("/metrics", headers=bearer(tokens.fleet["read"]))).text
    methods = {
        line.split('method="')[1].split('"')[0]
        for line in text.splitlines()
        if line.startswith("tenancy_http_request")
    }
    assert methods == {"OTHER"}
    assert 'method="OTHER",route="/healthz",status="405"} 5.0' in text


async def test_validation_runs_and_its_report_is_kept(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """No recorded validation yet: 404; POST validates and records; GET returns that
    report; the run is listed among the tenant's runs."""
    assert (await client.get("/tenants/victim/validation", headers=admin)).status_code == 404
    ran = await client.post("/tenants/victim/validation", headers=admin)
    assert ran.status_code == 200, ran.text
    report = ran.json()
    assert report["ok"] is True
    kept = (await client.get("/tenants/victim/validation", headers=admin)).json()
    assert kept["run_id"] == report["run_id"]
    runs = (await client.get("/tenants/victim/runs?operation=validate", headers=admin)).json()
    assert [r["run_id"] for r in runs["items"]] == [report["run_id"]]
    assert runs["items"][0]["status"] == "ok"
    assert (await client.get("/tenants/victim/runs/nope", headers=admin)).status_code == 404


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_documented_validation_report_has_the_fields_the_service_sends(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """The OpenAPI example of a validation report named ``failed_checks``, which no
    report has, and none of ``checks``, ``checksums``, ``storage``... it does."""
    report = (await client.post("/tenants/victim/validation", headers=admin)).json()
    document = (await client.get("/openapi.json")).json()
    for method in ("post", "get"):
        operation = document["paths"]["/tenants/{tenant_id}/validation"][method]
        example = operation["responses"]["200"]["content"]["application/json"]["example"]
        assert list(example) == list(report)
        assert list(example["checks"][0]) == list(report["checks"][0])


async def test_validation_can_be_asked_to_recompute_every_checksum(
    client: httpx.AsyncClient, admin: dict[str, str], manager: FixtureManager, demo_set: Path
) -> None:
    """``recompute_checksums=true`` reads every table again; without it, PostgreSQL
    takes the checksum of a table a bulk load wrote from its write stamps."""
    bulk = manager.settings.model_copy(update={"bulk_load_min_bytes": 0})
    async with FixtureManager(bulk) as loading:
        await loading.load_fixtures("victim", source=demo_set)
    methods = {}
    for recompute in ("false", "true"):
        ran = await client.post(
            "/tenants/victim/validation",
            params={"recompute_checksums": recompute},
            headers=admin,
        )
        assert ran.status_code == 200, ran.text
        methods[recompute] = ran.json()["checksums"]["tracks"]["method"]
    shortcut = "write_stamps" if manager.store.backend == "postgresql" else "recomputed"
    assert methods == {"false": shortcut, "true": "recomputed"}


async def test_migration_status_for_the_fleet_and_one_tenant(
    client: httpx.AsyncClient, admin: dict[str, str], tokens: Tokens
) -> None:
    """Every tenant's revision from the ledger; a tenant's token reads its own."""
    fleet = (await client.get("/migrations", headers=admin)).json()
    assert {e["tenant_id"] for e in fleet} == {"victim", "intruder"}
    head = fleet[0]["revision"]
    own = await client.get(
        "/tenants/victim/migration", headers=bearer(tokens.tenant[("victim", "read")])
    )
    assert own.status_code == 200
    assert own.json()["revision"] == head


async def test_audit_filters_and_pages(
    client: httpx.AsyncClient, admin: dict[str, str], tokens: Tokens, tenants: list[str]
) -> None:
    """Filters by action, outcome, tenant and time; pages newest first with a total; a
    tenant's token reads its own tenant's log. (The database may hold other tests'
    records: every query starts at this test's first record.)"""
    first = await client.get("/audit?action=tenant.create&tenant_id=victim&limit=1", headers=admin)
    since = {"since": first.json()["items"][0]["at"]}
    await client.post("/tenants", json={"tenant_id": "victim"}, headers=admin)  # refused
    refused = await client.get("/audit", params={**since, "outcome": "refused"}, headers=admin)
    assert [(r["action"], r["tenant_id"]) for r in refused.json()["items"]] == [
        ("tenant.create", "victim")
    ]
    query = {**since, "action": "tenant.create", "limit": 1}
    creates = (await client.get("/audit", params=query, headers=admin)).json()
    assert creates["total"] == 3
    assert len(creates["items"]) == 1
    later = (await client.get("/audit", params={**query, "offset": 1}, headers=admin)).json()
    assert later["items"][0]["audit_id"] < creates["items"][0]["audit_id"]
    own = await client.get(
        "/tenants/victim/audit",
        params={**since, "action": "token.create"},
        headers=bearer(tokens.tenant[("victim", "read")]),
    )
    assert own.status_code == 200
    assert own.json()["total"] == 3
    assert all(r["tenant_id"] == "victim" for r in own.json()["items"])
    future = (await client.get("/audit?since=2999-01-01T00:00:00Z", headers=admin)).json()
    assert future["total"] == 0


async def test_stopping_the_app_cancels_running_loads(
    service_settings: Settings, demo_set: Path
) -> None:
    """The lifespan ends jobs still running (their transaction rolls back) and closes
    the manager."""
    app: FastAPI = create_app(service_settings)
    async with app.router.lifespan_context(app):
        manager = app.state.manager
        await manager.create_tenant("slow")

        async def never_ending(progress: Any) -> Any:
            await asyncio.sleep(3600)

        job = app.state.jobs.start("slow", never_ending)
        await asyncio.sleep(0)
    assert job.status == "running"
    assert not app.state.jobs._tasks
