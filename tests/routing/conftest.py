"""Fixtures of the routing tests: the example app on each backend, with an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from examples.tenant_app.app import create_app
from tenancy_fixtures import FixtureManager, Settings


@pytest.fixture
async def app(settings: Settings, manager: FixtureManager) -> AsyncIterator[FastAPI]:
    """The example app on this test's backend (``manager`` drops its tenants)."""
    del manager
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client calling the example app in-process (an app error is a 500 answer)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://tenants.test") as http:
        yield http
