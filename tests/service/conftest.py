"""Fixtures of the service tests: the app on this test's backend with its lifespan
running, an in-process client, tenants and their tokens.

Tokens are made through the library (as ``tenancy-fixtures token create`` does); the
app reaches the same control plane.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.service import create_app
from tests.cleanup import drop_every_tenant


@dataclass(frozen=True)
class Tokens:
    """Bearer strings for one test: fleet tokens by scope, tenant tokens by tenant and
    scope."""

    fleet: dict[str, str]
    tenant: dict[tuple[str, str], str]


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header of ``token``."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def load_root(tmp_path: Path) -> Path:
    """The folder server-side loads may name (TENANCY_SERVICE_LOAD_ROOT)."""
    root = tmp_path / "load_root"
    root.mkdir()
    return root


@pytest.fixture
def service_settings(settings: Settings, tmp_path: Path, load_root: Path) -> Settings:
    """This test's settings with the service's: a load root, a work folder, small limits."""
    return settings.model_copy(
        update={
            "service_load_root": load_root,
            "service_work_dir": tmp_path / "uploads",
            "service_upload_max_bytes": 2 << 20,
            "service_archive_max_bytes": 8 << 20,
            "service_archive_max_entries": 200,
            "reject_dir": tmp_path / "rejects",
        }
    )


@pytest.fixture
async def app(service_settings: Settings) -> AsyncIterator[FastAPI]:
    """The app with its lifespan running; on PostgreSQL every tenant is dropped around
    the test (a SQLite data directory is the test's own and left as it is, as the
    top-level ``manager`` fixture leaves it)."""
    application = create_app(service_settings)
    async with application.router.lifespan_context(application):
        manager: FixtureManager = application.state.manager
        shared = manager.store.backend == "postgresql"
        if shared:
            await drop_every_tenant(manager)
        yield application
        if shared:
            await drop_every_tenant(manager)


@pytest.fixture
def manager(app: FastAPI) -> FixtureManager:
    """The app's own manager (overrides the top-level fixture: one manager per test)."""
    found: FixtureManager = app.state.manager
    return found


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client calling the app in-process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
        yield http


@pytest.fixture
async def tenants(manager: FixtureManager) -> list[str]:
    """Two tenants, ``victim`` and ``intruder``, created through the library."""
    for tenant_id in ("victim", "intruder"):
        await manager.create_tenant(tenant_id, tier="premium")
    return ["victim", "intruder"]


@pytest.fixture
async def tokens(manager: FixtureManager, tenants: list[str]) -> Tokens:
    """A fleet token of each scope and a token of each scope for each tenant."""
    scopes = ("read", "write", "admin")
    fleet = {s: (await manager.create_token(scope=s, name="test")).bearer for s in scopes}
    tenant = {
        (t, s): (await manager.create_token(scope=s, tenant_id=t, name="test")).bearer
        for t in tenants
        for s in scopes
    }
    return Tokens(fleet, tenant)


@pytest.fixture
def admin(tokens: Tokens) -> dict[str, str]:
    """The headers of a fleet admin token."""
    return bearer(tokens.fleet["admin"])
