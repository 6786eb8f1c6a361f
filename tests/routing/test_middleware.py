"""The plain ASGI middleware, around a bare Starlette app, on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import Column, MetaData, String, Table, insert, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from tenancy_fixtures import FixtureManager
from tenancy_fixtures.routing import TenantRouter, from_subdomain
from tenancy_fixtures.routing.asgi import TenantMiddleware

users = Table("users", MetaData(), Column("user_id", String), Column("display_name", String))


async def list_users(request: Request) -> JSONResponse:
    rows = await request.state.tenant_connection.execute(select(users.c.user_id))
    return JSONResponse({"tenant": request.state.tenant_id, "users": list(rows.scalars())})


async def add_user(request: Request) -> PlainTextResponse:
    body = await request.json()
    await request.state.tenant_connection.execute(insert(users).values(**body))
    return PlainTextResponse("refused", status_code=422 if body["user_id"] == "bad" else 201)


async def health(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


@pytest.fixture
async def client(manager: FixtureManager) -> AsyncIterator[httpx.AsyncClient]:
    """A Starlette app behind the middleware, tenants named by subdomain of tenants.test."""
    app = Starlette(
        routes=[
            Route("/users", list_users),
            Route("/users", add_user, methods=["POST"]),
            Route("/health", health),
        ]
    )
    router = TenantRouter(manager.store, resolver=from_subdomain("tenants.test"))
    wrapped = TenantMiddleware(app, router, exempt=("/health",))
    transport = httpx.ASGITransport(app=wrapped)
    async with httpx.AsyncClient(transport=transport) as http:
        yield http


async def test_each_subdomain_reads_and_writes_its_own_tenant(
    manager: FixtureManager, client: httpx.AsyncClient
) -> None:
    """Concurrent requests to two subdomains write and read their own tenant's rows."""
    for tenant_id in ("red", "blue"):
        await manager.create_tenant(tenant_id)

    async def add(tenant_id: str, n: int) -> int:
        url = f"http://{tenant_id}.tenants.test/users"
        body = {"user_id": f"{tenant_id}_{n}", "display_name": tenant_id}
        return (await client.post(url, json=body)).status_code

    added = await asyncio.gather(*(add(t, n) for n in range(5) for t in ("red", "blue")))
    answers = await asyncio.gather(
        *(client.get(f"http://{t}.tenants.test/users") for t in ("red", "blue") * 5)
    )

    assert {201} == set(added)
    for answer in answers:
        tenant_id = answer.json()["tenant"]
        assert {f"{tenant_id}_{n}" for n in range(5)} == set(answer.json()["users"])


async def test_a_response_of_400_or_more_rolls_the_request_back(
    manager: FixtureManager, client: httpx.AsyncClient
) -> None:
    """The row written by a request answered 422 is not committed."""
    await manager.create_tenant("red")

    refused = await client.post(
        "http://red.tenants.test/users", json={"user_id": "bad", "display_name": "x"}
    )

    assert 422 == refused.status_code
    assert [] == (await client.get("http://red.tenants.test/users")).json()["users"]


async def test_an_unknown_subdomain_is_a_404_problem_without_reaching_the_app(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("http://ghost.tenants.test/users")

    assert 404 == response.status_code
    assert "application/problem+json" == response.headers["content-type"]
    assert "ghost" == response.json()["tenant_id"]


async def test_exempt_paths_need_no_tenant(client: httpx.AsyncClient) -> None:
    assert "ok" == (await client.get("http://tenants.test/health")).text


async def test_a_router_without_cache_room_asks_the_registry_every_time(
    manager: FixtureManager,
) -> None:
    """``cache_size=0``: not cached (every request failed with a 500: a cache of no room
    refuses every entry)."""
    router = TenantRouter(manager.store, cache_size=0)
    await manager.create_tenant("uncached")

    assert await router.is_active("uncached")
    assert not await router.is_active("ghost")
    await manager.drop_tenant("uncached")
    assert not await router.is_active("uncached")
