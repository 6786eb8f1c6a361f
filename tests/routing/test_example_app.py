"""The example FastAPI app on both backends: each request sees its own tenant's rows only."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import update

from examples.tenant_app.app import create_app
from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.routing import from_jwt_claim
from tenancy_fixtures.routing.resolvers import header_value
from tenancy_fixtures.store import control_plane
from tests.cleanup import drop_every_tenant
from tests.integration.search_path import forced_search_path


def tenant(tenant_id: str) -> dict[str, str]:
    return {"X-Tenant-ID": tenant_id}


async def test_a_tenant_reads_the_rows_it_wrote(
    manager: FixtureManager, client: httpx.AsyncClient
) -> None:
    """Rows written through the connection and through the ORM session are the tenant's."""
    await manager.create_tenant("acme")
    user = {"user_id": "u_ava", "display_name": "Ava", "email": "ava@example.com"}
    playlist = {"playlist_id": "p1", "owner_id": "u_ava", "name": "Mix", "description": None}

    assert (await client.post("/users", json=user, headers=tenant("acme"))).status_code == 201
    created = await client.post("/playlists", json=playlist, headers=tenant("acme"))

    assert created.status_code == 201
    assert [user] == (await client.get("/users", headers=tenant("acme"))).json()
    assert [playlist] == (await client.get("/playlists", headers=tenant("acme"))).json()


async def test_an_unknown_tenant_is_a_404_problem(client: httpx.AsyncClient) -> None:
    """No tenant of that id: 404 with an application/problem+json body naming it."""
    response = await client.get("/users", headers=tenant("ghost"))

    assert 404 == response.status_code
    assert "application/problem+json" == response.headers["content-type"]
    assert {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "no such tenant: 'ghost' is not registered or not active",
        "tenant_id": "ghost",
    } == response.json()


async def test_a_malformed_tenant_id_is_a_404_that_does_not_echo_it(
    client: httpx.AsyncClient,
) -> None:
    """An id that can never be a tenant is not found, and is not repeated back."""
    response = await client.get("/users", headers=tenant("../tenancy"))

    assert 404 == response.status_code
    assert "tenancy" not in response.text


async def test_a_request_naming_no_tenant_is_a_400_saying_which_header(
    client: httpx.AsyncClient,
) -> None:
    """Without the header the answer says where the tenant id goes."""
    response = await client.get("/users")

    assert 400 == response.status_code
    assert "X-Tenant-ID" in response.json()["detail"]


async def test_a_request_naming_its_tenant_twice_is_a_400_whichever_comes_first(
    client: httpx.AsyncClient,
) -> None:
    """A proxy that appends its X-Tenant-ID to the client's must not let the client's win."""
    twice = [("X-Tenant-ID", "acme"), ("X-Tenant-ID", "globex")]
    response = await client.get("/users", headers=twice)

    assert 400 == response.status_code
    assert "sent 2 times" in response.json()["detail"]


async def test_an_inactive_tenant_is_a_404(
    manager: FixtureManager, client: httpx.AsyncClient
) -> None:
    """A registered tenant whose status is not active gets no connection."""
    await manager.create_tenant("sleepy")
    async with manager.store.control() as conn:
        tenants = control_plane.tenants_table
        await conn.execute(
            update(tenants).where(tenants.c.tenant_id == "sleepy").values(status="suspended")
        )

    response = await client.get("/users", headers=tenant("sleepy"))

    assert 404 == response.status_code


async def test_a_dropped_tenant_is_refused_at_once_though_its_answer_is_cached(
    manager: FixtureManager, client: httpx.AsyncClient
) -> None:
    """The registry answer is cached, but a tenant whose storage is gone is a 404, not a 500."""
    await manager.create_tenant("brief")
    assert 200 == (await client.get("/users", headers=tenant("brief"))).status_code

    await manager.drop_tenant("brief")

    assert 404 == (await client.get("/users", headers=tenant("brief"))).status_code


async def test_a_failed_request_leaves_no_rows(
    manager: FixtureManager, client: httpx.AsyncClient
) -> None:
    """A playlist whose owner does not exist fails at the end of the request: nothing stays."""
    await manager.create_tenant("acme")
    playlist = {"playlist_id": "p1", "owner_id": "nobody", "name": "Mix", "description": None}

    response = await client.post("/playlists", json=playlist, headers=tenant("acme"))

    assert 500 == response.status_code
    assert [] == (await client.get("/playlists", headers=tenant("acme"))).json()


async def test_concurrent_requests_for_two_tenants_never_see_each_others_rows(
    manager: FixtureManager, client: httpx.AsyncClient
) -> None:
    """Forty interleaved requests for two tenants: each answer holds its tenant's rows only."""
    for tenant_id in ("red", "blue"):
        await manager.create_tenant(tenant_id)

    async def write(tenant_id: str, n: int) -> int:
        user = {"user_id": f"{tenant_id}_{n}", "display_name": tenant_id}
        return (await client.post("/users", json=user, headers=tenant(tenant_id))).status_code

    async def read(tenant_id: str) -> set[str]:
        response = await client.get("/users", headers=tenant(tenant_id))
        return {row["display_name"] for row in response.json()}

    written = await asyncio.gather(*(write(t, n) for n in range(10) for t in ("red", "blue")))
    seen = await asyncio.gather(*(read(t) for _ in range(10) for t in ("red", "blue")))

    assert {201} == set(written)
    assert [{"red"}, {"blue"}] * 10 == seen
    for tenant_id in ("red", "blue"):
        response = await client.get("/users", headers=tenant(tenant_id))
        assert {f"{tenant_id}_{n}" for n in range(10)} == {r["user_id"] for r in response.json()}


async def test_the_app_can_route_by_a_verified_token(
    manager: FixtureManager, settings: Settings
) -> None:
    """With a JWT resolver, the token's claim picks the tenant; a forged token is a 401."""
    await manager.create_tenant("acme")
    secret = "a-test-secret-of-at-least-32-bytes!"
    app = create_app(settings, resolver=from_jwt_claim(secret))
    good = jwt.encode({"tenant_id": "acme", "exp": int(time.time()) + 60}, secret)
    forged = jwt.encode({"tenant_id": "acme", "exp": int(time.time()) + 60}, "x" * 32)

    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        ok = await http.get("/users", headers={"Authorization": f"Bearer {good}"})
        refused = await http.get("/users", headers={"Authorization": f"Bearer {forged}"})

    assert 200 == ok.status_code
    assert 401 == refused.status_code
    assert "application/problem+json" == refused.headers["content-type"]


async def test_the_app_can_route_by_an_async_resolver(
    manager: FixtureManager, settings: Settings
) -> None:
    """A resolver that awaits its answer (a custom domain looked up in a database) routes
    the request; its coroutine was taken for the tenant id: a 404 "not a valid tenant id"."""
    await manager.create_tenant("acme")

    async def by_custom_domain(scope: Mapping[str, Any]) -> str:
        await asyncio.sleep(0)  # the lookup
        return {"music.acme.test": "acme"}.get(header_value(scope, "host") or "", "")

    app = create_app(settings, resolver=by_custom_domain)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://music.acme.test") as http,
    ):
        routed = await http.get("/users")
        unknown = await http.get("/users", headers={"Host": "music.globex.test"})

    assert (200, []) == (routed.status_code, routed.json())
    assert 404 == unknown.status_code


@pytest.mark.postgres
async def test_a_foreign_search_path_on_every_connection_changes_nothing(
    postgres_url: str,
) -> None:
    """Connections that start with another tenant's search_path still read the tenant's
    own rows: statements name the schema, the path is never consulted."""
    app = create_app(Settings(database_url=postgres_url, actor="pytest"))
    manager = app.state.manager
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as http,
    ):
        await drop_every_tenant(manager)
        for tenant_id in ("red", "blue"):
            await manager.create_tenant(tenant_id)
        user = {"user_id": "b1", "display_name": "blue", "email": None}
        await http.post("/users", json=user, headers=tenant("blue"))
        async with forced_search_path(app.state.manager.store, "red"):
            blue = (await http.get("/users", headers=tenant("blue"))).json()
            red = (await http.get("/users", headers=tenant("red"))).json()
        await drop_every_tenant(manager)

    assert [user] == blue
    assert [] == red


async def test_concurrent_requests_adding_the_same_user_get_one_201_and_409s(
    manager: FixtureManager, client: httpx.AsyncClient
) -> None:
    """Four requests adding one user at once: one adds it, the others are told it exists,
    none is a 500 (on PostgreSQL the others' check ran before the first committed)."""
    await manager.create_tenant("acme")

    async def add(user_id: str) -> int:
        user = {"user_id": user_id, "display_name": "Ava"}
        return (await client.post("/users", json=user, headers=tenant("acme"))).status_code

    for n in range(3):
        statuses = await asyncio.gather(*(add(f"u{n}") for _ in range(4)))
        assert [201, 409, 409, 409] == sorted(statuses)
