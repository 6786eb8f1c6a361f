"""Service fixes: invalid tenant ids in a path, the dashboard's missing static files,
and its 503 pages' ``Retry-After``."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tenancy_fixtures import FixtureManager, Settings
from tests.service.conftest import Tokens, bearer
from tests.service.test_service_fixes_b import _remove_storage

#: A PostgreSQL nothing listens for: every connection refused, a transient storage error.
UNREACHABLE_POSTGRES = "postgresql+asyncpg://127.0.0.1:1/nowhere"
INVALID_IDS = ["Bad-Id", "public", "pg_catalog", "a" * 49, "9lives", "x%20y"]


@pytest.mark.parametrize("tenant_id", INVALID_IDS)
async def test_every_invalid_tenant_id_in_a_path_is_a_400_naming_it(
    client: httpx.AsyncClient, admin: dict[str, str], tenant_id: str
) -> None:
    """``/tenants/Bad-Id`` broke the path's pattern (a 422 InvalidRequest) while
    ``/tenants/public`` broke the validator (a 400): every invalid id is the 400."""
    for path in (f"/tenants/{tenant_id}", f"/tenants/{tenant_id}/usage"):
        response = await client.get(path, headers=admin)
        assert response.status_code == 400, response.text
        problem = response.json()
        assert problem["type"] == "urn:tenancy-fixtures:error:InvalidTenantIdError"
        assert tenant_id.replace("%20", " ")[:40] in problem["detail"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_an_invalid_tenant_id_is_a_400_for_a_tenant_token_too(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """A tenant's token naming an invalid id gets the same 400 (no id can leak: none
    such can exist)."""
    headers = bearer(tokens.tenant["victim", "read"])
    for tenant_id in ("Bad-Id", "public"):
        response = await client.get(f"/tenants/{tenant_id}", headers=headers)
        assert response.status_code == 400, response.text


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_tenant_id_pattern_is_still_documented(app: FastAPI) -> None:
    """The path's pattern stays in the OpenAPI document (enforced by the validator)."""
    parameters = app.openapi()["paths"]["/tenants/{tenant_id}"]["get"]["parameters"]
    (tenant_id,) = [p for p in parameters if p["name"] == "tenant_id"]
    assert tenant_id["schema"]["pattern"].startswith("^[a-z]")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "path", ["/dashboard/static/nope.css", "/dashboard/static/", "/dashboard/static/a/../b"]
)
async def test_a_missing_dashboard_static_file_is_a_plain_404_not_a_problem(
    client: httpx.AsyncClient, path: str
) -> None:
    """A stylesheet the dashboard lacks answered the API's JSON problem document: a
    browser's request gets a plain 404 (as unknown pages get an HTML one)."""
    for method in ("GET", "HEAD"):
        response = await client.request(method, path)
        assert response.status_code == 404, response.text
        assert response.headers["content-type"].startswith("text/plain")
        assert response.headers["x-content-type-options"] == "nosniff"
    assert (await client.get(path)).text == "Not found"
    assert (await client.get("/dashboard/static/dashboard.css")).status_code == 200


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_dashboards_503_for_a_transient_storage_error_says_retry_after_as_the_api(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """The control plane unreachable (connections refused): the API's 503 said
    ``Retry-After: 5``, the dashboard's 503 page said nothing of when to try again."""
    signed_in = await client.post("/dashboard/login", data={"token": tokens.fleet["read"]})
    assert signed_in.status_code == 303, signed_in.text
    served = app.state.manager
    unreachable = FixtureManager(Settings(database_url=UNREACHABLE_POSTGRES, actor="pytest"))
    app.state.manager = unreachable
    try:
        api = await client.get("/tenants", headers=bearer(tokens.fleet["read"]))
        pages = [await client.get(p) for p in ("/dashboard/", "/dashboard/tenants/victim")]
        login = await client.post("/dashboard/login", data={"token": tokens.fleet["read"]})
    finally:
        app.state.manager = served
        await unreachable.aclose()
    assert api.status_code == 503, api.text
    assert api.headers["retry-after"] == "5"
    for page in [*pages, login]:
        assert page.status_code == 503, page.text
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["retry-after"] == api.headers["retry-after"]


async def test_a_503_for_a_lasting_storage_error_has_no_retry_after_on_either(
    client: httpx.AsyncClient, manager: FixtureManager, tokens: Tokens
) -> None:
    """A registered tenant whose storage is gone is a 503 no retry mends: no
    ``Retry-After``, on the API as on the dashboard."""
    await _remove_storage(manager, "victim")
    reader = tokens.tenant[("victim", "read")]
    problem = await client.get("/tenants/victim", headers=bearer(reader))
    await client.post("/dashboard/login", data={"token": reader})
    page = await client.get("/dashboard/tenants/victim")
    for response in (problem, page):
        assert response.status_code == 503, response.text
        assert "retry-after" not in response.headers
