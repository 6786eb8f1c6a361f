"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from tenancy_fixtures.service.deps import AppManager, FleetRead, Manager
from tenancy_fixtures.service.metrics import exposition
from tenancy_fixtures.service.models import Health, Readiness
from tenancy_fixtures.service.problems import problem_responses

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> Health:
    """Always ``{"status": "ok"}`` while the process serves requests; no token needed."""
    return Health()


@router.get(
    "/readyz",
    summary="Readiness: the database and Redis answer",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency does not answer"}},
)
async def readyz(manager: AppManager) -> Readiness | JSONResponse:
    """200 when the database answers and Redis does (when one is configured), else 503
    with the reason per dependency; no token needed."""
    checks = await manager.readiness()
    ready = all(value in ("ok", "not configured", "not used") for value in checks.values())
    body = Readiness(ready=ready, checks=checks)
    if not ready:
        return JSONResponse(body.model_dump(), status_code=503)
    return body


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "Prometheus text exposition",
        },
        **problem_responses(401, 403),
    },
)
async def metrics(request: Request, manager: Manager, _token: FleetRead) -> Response:
    """The library's metrics (operations, rows loaded, durations) and the service's own
    (requests by route, method and status; their durations), in Prometheus text format.
    Needs a fleet token (Prometheus: ``authorization: {credentials: ...}``)."""
    body, content_type = exposition(manager.metrics, request.app.state.http_metrics)
    return Response(body, media_type=content_type)
