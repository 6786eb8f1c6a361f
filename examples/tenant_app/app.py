"""A FastAPI app serving many tenants: each request works on the tables of the tenant
its ``X-Tenant-ID`` header names, and on nothing else.

Run it (after ``pip install 'tenancy-fixtures[fastapi]' uvicorn``)::

    tenancy-fixtures init-tenant acme
    uvicorn examples.tenant_app.app:app
    curl -H 'X-Tenant-ID: acme' -d '{"user_id": "u1", "display_name": "Ava"}' \\
        -H 'Content-Type: application/json' localhost:8000/users
    curl -H 'X-Tenant-ID: acme' localhost:8000/users

Its tables are declared the usual way, without a schema: the tenant's connection
names the tenant's schema (or SQLite file) for every statement. ``/users`` uses the
``AsyncConnection`` with SQLAlchemy Core, ``/playlists`` the ORM ``AsyncSession``.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from sqlalchemy import Column, ForeignKey, String, Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.routing import TenantResolver, TenantRouter
from tenancy_fixtures.routing.fastapi import TenantDependencies


class Base(DeclarativeBase):
    """The app's models: the columns of the tenant tables it uses."""


users = Table(
    "users",
    Base.metadata,
    Column("user_id", String(64), primary_key=True),
    Column("display_name", String(200), nullable=False),
    Column("email", String(320)),
)


class Playlist(Base):
    __tablename__ = "playlists"

    playlist_id: Mapped[str] = mapped_column(String(22), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.user_id"))
    name: Mapped[str] = mapped_column(String(400))
    description: Mapped[str | None]


class User(BaseModel):
    user_id: str
    display_name: str
    email: str | None = None


class PlaylistIn(BaseModel):
    playlist_id: str
    owner_id: str
    name: str
    description: str | None = None


def create_app(
    settings: Settings | None = None, *, resolver: TenantResolver | None = None
) -> FastAPI:
    """The app on ``settings`` (default: the ``TENANCY_*`` environment), the tenant
    named by ``resolver`` (default: the ``X-Tenant-ID`` header)."""
    manager = FixtureManager(settings)
    tenants = TenantDependencies(TenantRouter(manager.store, resolver=resolver))
    TenantConnection = Annotated[AsyncConnection, tenants.connection]
    TenantSession = Annotated[AsyncSession, tenants.session]

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await manager.aclose()

    app = FastAPI(title="tenant app", lifespan=lifespan)
    app.state.manager = manager
    tenants.install(app)

    @app.get("/users")
    async def list_users(conn: TenantConnection) -> list[User]:
        rows = await conn.execute(select(users).order_by(users.c.user_id))
        return [User.model_validate(row) for row in rows.mappings()]

    @app.post("/users", status_code=201)
    async def create_user(user: User, conn: TenantConnection) -> User:
        exists = HTTPException(409, f"user {user.user_id!r} exists")
        found = await conn.execute(select(users.c.user_id).where(users.c.user_id == user.user_id))
        if found.first() is not None:
            raise exists
        try:
            await conn.execute(insert(users).values(**user.model_dump()))
        except IntegrityError:
            # A concurrent request added it after the check (PostgreSQL: the check does
            # not see rows not yet committed); the transaction is rolled back.
            raise exists from None
        return user

    @app.get("/playlists")
    async def list_playlists(session: TenantSession) -> list[PlaylistIn]:
        found = await session.scalars(select(Playlist).order_by(Playlist.playlist_id))
        return [PlaylistIn.model_validate(p, from_attributes=True) for p in found]

    @app.post("/playlists", status_code=201)
    async def create_playlist(playlist: PlaylistIn, session: TenantSession) -> PlaylistIn:
        if await session.get(Playlist, playlist.playlist_id) is not None:
            raise HTTPException(409, f"playlist {playlist.playlist_id!r} exists")
        session.add(Playlist(**playlist.model_dump()))
        return playlist

    return app


def __getattr__(name: str) -> FastAPI:
    # ``uvicorn examples.tenant_app.app:app`` builds the app when asked, not at import.
    if name == "app":
        return create_app()
    raise AttributeError(name)
