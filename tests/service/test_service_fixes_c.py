"""Service fixes: invalid tenant ids in a path, the dashboard's missing static files,
and its 503 pages' ``Retry-After``."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.service.conftest import Tokens, bearer

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
