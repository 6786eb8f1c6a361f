"""The application factory: ``create_app(settings)`` builds the FastAPI app.

Nothing happens at import: the manager (store, cache, metrics) is built when the app
starts (its lifespan) and closed when it stops, together with the background load
jobs still running. Routes reach it through :mod:`tenancy_fixtures.service.deps`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from tenancy_fixtures import __version__
from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.manager import FixtureManager
from tenancy_fixtures.service import archives
from tenancy_fixtures.service.body_limits import JSON_BODY_MAX_BYTES, BodyLimitMiddleware
from tenancy_fixtures.service.dashboard import dashboard_mount
from tenancy_fixtures.service.head_requests import HeadAsGet
from tenancy_fixtures.service.jobs import JobRegistry
from tenancy_fixtures.service.metrics import HttpMetrics, RequestMetricsMiddleware
from tenancy_fixtures.service.problems import PROBLEM_JSON, Problem, install_problem_handlers
from tenancy_fixtures.service.routes import ROUTERS, loads
from tenancy_fixtures.service.schedule import SnapshotSchedule
from tenancy_fixtures.settings import Settings, load_settings

__all__ = ["create_app"]

log = get_logger("tenancy_fixtures.service.app")

_DESCRIPTION = """
Operate the tenants of a tenancy-fixtures deployment over HTTP: the same operations as
the `tenancy-fixtures` command, on the same control plane.

**Auth**: `Authorization: Bearer <token>`, tokens made by `tenancy-fixtures token create`.
A tenant's token sees only its tenant (anything else answers 404); a fleet token
(made without `--tenant`) sees all. Scopes: `read`, `write` (config, loads,
validation), `admin` (create and delete tenants).

**Errors** are `application/problem+json` (RFC 9457).

**Dashboard**: `/dashboard/` (HTML pages for people; sign in with the same tokens).
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service for ``settings`` (default: from ``TENANCY_*`` variables)."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        manager = FixtureManager(settings)
        jobs = JobRegistry()
        interval = settings.service_snapshot_interval_seconds
        schedule = SnapshotSchedule(manager, interval) if interval else None
        app.state.manager = manager
        app.state.jobs = jobs
        app.state.schedule = schedule
        try:
            await manager.store.initialize()
            await _sweep_uploads(settings)
            if schedule is not None:
                schedule.start()
            yield
        finally:
            if schedule is not None:
                await schedule.aclose()
            await jobs.aclose()
            await manager.aclose()

    app = FastAPI(
        title="tenancy-fixtures",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.http_metrics = HttpMetrics()
    install_problem_handlers(app)
    app.add_middleware(HeadAsGet)
    app.add_middleware(
        BodyLimitMiddleware, limit=JSON_BODY_MAX_BYTES, streamed={loads.uploads.prefix}
    )
    app.add_middleware(RequestMetricsMiddleware, metrics=app.state.http_metrics)
    for router in ROUTERS:
        app.include_router(router)
    app.router.routes.append(dashboard_mount())
    _declare_problem_schema(app)
    return app


async def _sweep_uploads(settings: Settings) -> None:
    """Remove the upload folders that service processes killed mid-upload left in the
    work folder (those of live ones, in any process, are locked and stay)."""
    removed = await asyncio.to_thread(archives.sweep, settings.service_work_dir)
    if removed:
        log.info("stale_uploads_removed", count=len(removed), folders=[p.name for p in removed])


def _declare_problem_schema(app: FastAPI) -> None:
    """Describe errors as they are sent: every error response of the OpenAPI document as
    ``application/problem+json`` (FastAPI describes its 422 as plain JSON), 401/403
    on every operation that takes a token, and 413 on every one taking a JSON body."""
    make_schema = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = make_schema()
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas["Problem"] = Problem.model_json_schema()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    _problem_responses(operation)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _problem_responses(operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    if operation.get("security"):
        for status, description in (("401", "No token, or not a live one"), ("403", "Forbidden")):
            responses.setdefault(status, {"description": description})
    if "application/json" in operation.get("requestBody", {}).get("content", {}):
        limit = f"Request body past {JSON_BODY_MAX_BYTES} bytes"
        responses.setdefault("413", {"description": limit})
    for status, response in responses.items():
        content = response.get("content", {})
        added = status in ("401", "403", "413") and not content
        if status == "422" or PROBLEM_JSON in content or added:
            response["content"] = {
                PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
            }
