"""Every route refuses every request it must refuse: no token, a wrong token, another
tenant's token, a scope too small. Routes are taken from the app itself, so a route
added later is walked too, and one without a guard fails here."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import select

from tenancy_fixtures import FixtureManager
from tenancy_fixtures.store.control_plane import api_tokens_table
from tests.service.archives import tar_gz
from tests.service.conftest import Tokens, bearer

#: Routes anyone may call: the probes of an orchestrator.
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz")}
SCOPES = ("read", "write", "admin")


def needed_scope(method: str, path: str) -> str:
    """The scope each route is meant to need: reads read, creating and deleting tenants
    is admin, any other change write."""
    if method == "GET":
        return "read"
    if method == "DELETE" or (method, path) == ("POST", "/tenants"):
        return "admin"
    return "write"


def guarded_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every API route but the public ones, as the app routes
    them (included routers flattened); the OpenAPI document lists the same."""
    found = {
        (method, str(context.path))
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
        for method in context.methods or ()
    }
    documented = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    assert found == documented
    assert PUBLIC <= found
    return sorted(found - PUBLIC)


async def _finished_load(client: httpx.AsyncClient, admin: dict[str, str]) -> tuple[str, str]:
    """A load job of ``victim`` run to its end: (job id, run id)."""
    started = await client.post("/tenants/victim/loads", json={}, headers=admin)
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]
    for _ in range(600):
        job = (await client.get(f"/tenants/victim/loads/{job_id}", headers=admin)).json()
        if job["status"] in ("succeeded", "failed"):
            assert job["status"] == "succeeded", job
            return job_id, job["report"]["run_id"]
        await asyncio.sleep(0.05)
    raise AssertionError("the load did not finish")


def _request(
    method: str, path: str, ids: dict[str, str], archive: bytes
) -> tuple[str, dict[str, Any]]:
    """The URL and a valid request for the route, so only auth may refuse it."""
    url = path.format(**ids)
    kwargs: dict[str, Any] = {}
    if (method, path) == ("POST", "/tenants"):
        kwargs["json"] = {"tenant_id": "newbie"}
    elif method == "PATCH":
        kwargs["json"] = {"limits": {"users": 1}}
    elif (method, path) == ("POST", "/tenants/{tenant_id}/loads"):
        kwargs["json"] = {}
    elif path.endswith("/uploads"):
        kwargs["content"] = archive
        kwargs["headers"] = {"Content-Type": "application/gzip"}
    elif method == "DELETE":
        kwargs["params"] = {"confirm": ids["tenant_id"]}
    return url, kwargs


async def _wrong_tokens(manager: FixtureManager, tokens: Tokens) -> list[dict[str, str]]:
    """Headers that prove no live token."""
    real_id = tokens.fleet["admin"].removeprefix("tfk_").split(".")[0]
    revoked = await manager.create_token(scope="admin", name="revoked")
    await manager.revoke_token(revoked.token.token_id)
    return [
        bearer("tfk_0123456789abcdef.not-a-secret"),
        bearer(f"tfk_{real_id}.the-wrong-secret"),
        bearer(revoked.bearer),
        bearer("garbage"),
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {tokens.fleet['admin']}"},
    ]


async def test_every_route_refuses_missing_wrong_foreign_and_too_small_tokens(
    app: FastAPI,
    client: httpx.AsyncClient,
    manager: FixtureManager,
    tokens: Tokens,
    admin: dict[str, str],
    tmp_path: Path,
    demo_set: Path,
) -> None:
    """No token and wrong tokens: 401; another tenant's token: 404 on the tenant's
    routes (as if it did not exist), 403 on fleet routes; a token one scope short: 403.
    Not one of these requests succeeds, and nothing changes."""
    job_id, run_id = await _finished_load(client, admin)
    ids = {"tenant_id": "victim", "job_id": job_id, "run_id": run_id}
    archive = tar_gz(demo_set)
    config_before = (await client.get("/tenants/victim/config", headers=admin)).json()
    wrong = await _wrong_tokens(manager, tokens)
    outcomes: list[tuple[str, str, str, int]] = []
    for method, path in guarded_routes(app):
        tenant_route = "{tenant_id}" in path
        needed = needed_scope(method, path)
        short = SCOPES[SCOPES.index(needed) - 1] if needed != "read" else None
        cases: list[tuple[str, dict[str, str], int]] = [("no token", {}, 401)]
        cases += [(f"wrong token {i}", headers, 401) for i, headers in enumerate(wrong)]
        foreign = tokens.tenant[("intruder", "admin")]
        cases.append(("other tenant's token", bearer(foreign), 404 if tenant_route else 403))
        if short is not None:
            own = tokens.tenant[("victim", short)] if tenant_route else tokens.fleet[short]
            cases.append((f"{short} token", bearer(own), 403))
        for case, headers, expected in cases:
            url, kwargs = _request(method, path, ids, archive)
            kwargs["headers"] = {**kwargs.get("headers", {}), **headers}
            response = await client.request(method, url, **kwargs)
            outcomes.append((method, path, case, response.status_code))
            assert response.status_code == expected, (method, path, case, response.text)
            assert response.headers["content-type"] == "application/problem+json"
    assert not [o for o in outcomes if o[3] < 400]
    assert {(m, p) for m, p, _, _ in outcomes} == set(guarded_routes(app))
    assert (await client.get("/tenants/victim/config", headers=admin)).json() == config_before
    assert [t.tenant_id for t in await manager.list_tenants()] == ["intruder", "victim"]


async def test_other_tenants_resources_look_exactly_like_missing_ones(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """A tenant's token asking for another tenant gets the very answer it gets for a
    tenant that does not exist."""
    headers = bearer(tokens.tenant[("intruder", "read")])
    existing = await client.get("/tenants/victim", headers=headers)
    missing = await client.get("/tenants/ghost", headers=headers)
    assert existing.status_code == missing.status_code == 404
    assert existing.json()["detail"].replace("victim", "X") == missing.json()["detail"].replace(
        "ghost", "X"
    )


async def test_a_tenant_token_reads_and_writes_its_own_tenant(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """The tenant's own tokens work on its routes, within their scope."""
    read = bearer(tokens.tenant[("victim", "read")])
    write = bearer(tokens.tenant[("victim", "write")])
    assert (await client.get("/tenants/victim", headers=read)).status_code == 200
    assert (await client.get("/tenants/victim/config", headers=read)).status_code == 200
    patched = await client.patch(
        "/tenants/victim/config", json={"settings": {"locale": "de-DE"}}, headers=write
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["settings"]["locale"] == "de-DE"


@pytest.mark.parametrize(
    "change",
    [{"tier": "enterprise"}, {"limits": {"users": 1_000_000}}, {"features": ["sso"]}],
    ids=["tier", "limits", "features"],
)
async def test_a_tenant_token_cannot_raise_its_own_entitlements(
    client: httpx.AsyncClient, tokens: Tokens, change: dict[str, object]
) -> None:
    """A token scoped to a tenant (write, even admin) raised its own tier, limits or
    feature flags, past what the fleet granted it: 403 and nothing changed; a fleet
    write token may."""
    fleet = bearer(tokens.fleet["write"])
    before = (await client.get("/tenants/victim/config", headers=fleet)).json()
    for scope in ("write", "admin"):
        own = bearer(tokens.tenant[("victim", scope)])
        refused = await client.patch("/tenants/victim/config", json=change, headers=own)

        assert refused.status_code == 403, refused.text
        assert f"not its {next(iter(change))}" in refused.json()["detail"]
    assert (await client.get("/tenants/victim/config", headers=fleet)).json() == before
    granted = await client.patch("/tenants/victim/config", json=change, headers=fleet)
    assert granted.status_code == 200, granted.text


async def test_unauthorized_answers_name_the_bearer_scheme(client: httpx.AsyncClient) -> None:
    """A 401 says how to authenticate (WWW-Authenticate: Bearer)."""
    response = await client.get("/tenants")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_only_a_digest_of_each_secret_is_stored(
    manager: FixtureManager, tokens: Tokens
) -> None:
    """The control plane holds SHA-256 of the secret, never the token or its secret."""
    bearer_string = tokens.fleet["read"]
    token_id, secret = bearer_string.removeprefix("tfk_").split(".")
    async with manager.store.control(readonly=True) as conn:
        rows = (await conn.execute(select(api_tokens_table))).all()
    stored = {str(v) for row in rows for v in row._mapping.values()}
    assert secret not in stored
    assert bearer_string not in stored
    assert hashlib.sha256(secret.encode()).hexdigest() in stored
    assert token_id in stored


async def test_dropping_a_tenant_removes_its_tokens(
    client: httpx.AsyncClient, manager: FixtureManager, tokens: Tokens, admin: dict[str, str]
) -> None:
    """A tenant made again under a dropped tenant's id does not inherit its tokens."""
    old = bearer(tokens.tenant[("victim", "admin")])
    dropped = await client.delete("/tenants/victim", params={"confirm": "victim"}, headers=admin)
    assert dropped.status_code == 204
    await manager.create_tenant("victim")
    assert (await client.get("/tenants/victim", headers=old)).status_code == 401


@pytest.mark.parametrize("scope", ["read", "write", "admin"])
async def test_token_creation_and_revocation_are_audited(
    manager: FixtureManager, tenants: list[str], scope: str
) -> None:
    """token.create and token.revoke appear in the tenant's audit log, without secrets."""
    issued = await manager.create_token(scope=scope, tenant_id="victim", name="ci")
    await manager.revoke_token(issued.token.token_id)
    records = await manager.audit_log("victim", limit=10)
    actions = [r.action for r in records if r.detail.get("token_id") == issued.token.token_id]
    assert actions == ["token.revoke", "token.create"]
    assert all(issued.bearer.split(".")[1] not in str(r.detail) for r in records)
