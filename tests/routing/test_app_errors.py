"""An error raised inside a tenant's transaction reaches the app as it was raised (after
the rollback), on both backends: its own ``except`` and exception handlers see it."""

from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Column, MetaData, String, Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tenancy_fixtures import FixtureManager
from tenancy_fixtures.routing import TenantRouter
from tenancy_fixtures.routing.fastapi import TenantDependencies

users = Table(
    "users",
    MetaData(),
    Column("user_id", String(64), primary_key=True),
    Column("display_name", String(200), nullable=False),
)


class Base(DeclarativeBase):
    """The ORM side of the test's tables."""


class User(Base):
    __tablename__ = "users"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))


async def user_ids(router: TenantRouter, tenant_id: str) -> set[str]:
    async with router.connect(tenant_id, readonly=True) as conn:
        return set((await conn.execute(select(users.c.user_id))).scalars())


async def test_a_duplicate_row_is_an_integrity_error_out_of_the_tenants_block(
    manager: FixtureManager,
) -> None:
    """``except IntegrityError`` around the block catches the app's duplicate (it came out
    as a StorageError "... failed: ..."), and the block's rows are rolled back."""
    await manager.create_tenant("acme")
    router = TenantRouter(manager.store)

    async def add_twice() -> None:
        async with router.connect("acme") as conn:
            await conn.execute(insert(users).values(user_id="u1", display_name="Ava"))
            await conn.execute(insert(users).values(user_id="u1", display_name="Ava"))

    with pytest.raises(IntegrityError):
        await add_twice()

    assert set() == await user_ids(router, "acme")


async def test_an_os_error_of_the_app_is_not_reported_as_the_databases(
    manager: FixtureManager,
) -> None:
    """A file the app's code fails to open is its FileNotFoundError, not a StorageError
    saying the database failed."""
    await manager.create_tenant("acme")
    router = TenantRouter(manager.store)

    async def render_a_missing_template() -> None:
        async with router.session("acme") as session:
            session.add(User(user_id="u1", display_name="Ava"))
            raise FileNotFoundError("report.tmpl")

    with pytest.raises(FileNotFoundError, match=r"report\.tmpl"):
        await render_a_missing_template()

    assert set() == await user_ids(router, "acme")


@pytest.fixture
async def conflicts_app(manager: FixtureManager) -> AsyncIterator[httpx.AsyncClient]:
    """An app answering an ``IntegrityError`` with its own 409 handler, adding users with
    Core (``/users``) or the ORM (``/people``, flushed as the request ends)."""
    tenants = TenantDependencies(TenantRouter(manager.store))
    app = FastAPI()
    tenants.install(app)

    @app.exception_handler(IntegrityError)
    async def conflict(_request: Request, _exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": "that user exists"}, status_code=409)

    @app.post("/users/{user_id}", status_code=201)
    async def add_user(user_id: str, conn: Annotated[AsyncConnection, tenants.connection]) -> str:
        await conn.execute(insert(users).values(user_id=user_id, display_name="x"))
        return user_id

    @app.post("/people/{user_id}", status_code=201)
    async def add_person(user_id: str, session: Annotated[AsyncSession, tenants.session]) -> str:
        session.add(User(user_id=user_id, display_name="x"))
        return user_id

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http


@pytest.mark.parametrize("path", ["/users", "/people"])
async def test_the_apps_handler_for_integrity_errors_answers_a_duplicate(
    manager: FixtureManager, conflicts_app: httpx.AsyncClient, path: str
) -> None:
    """The second add of a user is the app's 409, not a 500 (the handler never saw the
    IntegrityError: it had become a StorageError)."""
    await manager.create_tenant("acme")
    headers = {"X-Tenant-ID": "acme"}

    first = await conflicts_app.post(f"{path}/u1", headers=headers)
    second = await conflicts_app.post(f"{path}/u1", headers=headers)

    assert 201 == first.status_code
    assert 409 == second.status_code, second.text
    assert {"detail": "that user exists"} == second.json()


async def test_the_session_goes_on_after_rolling_back_a_failed_flush(
    manager: FixtureManager,
) -> None:
    """Get-or-create: a duplicate's IntegrityError, ``session.rollback()``, then other rows,
    committed with the block (the next statement raised InvalidRequestError "Can't operate
    on closed transaction inside context manager"); the rollback undid the duplicate only."""
    await manager.create_tenant("acme")
    router = TenantRouter(manager.store)
    async with router.session("acme") as session:
        session.add(User(user_id="u1", display_name="Ava"))

    async with router.session("acme") as session:
        session.add(User(user_id="u2", display_name="Bo"))
        await session.commit()
        session.add(User(user_id="u1", display_name="Ava again"))
        with pytest.raises(IntegrityError):
            await session.flush()
        await session.rollback()
        session.add(User(user_id="u3", display_name="Cy"))

    assert {"u1", "u2", "u3"} == await user_ids(router, "acme")
