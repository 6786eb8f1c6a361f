"""Forecasts: days until each limit is reached, and anomalies, per tenant or fleet-wide.

Each answer also sets the ``tenancy_days_to_limit`` and ``tenancy_anomaly`` gauges of
the tenants it covers (``/metrics`` serves them).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from tenancy_fixtures.service.deps import FleetRead, Manager, TenantRead
from tenancy_fixtures.service.models import ForecastPublic, Page
from tenancy_fixtures.service.problems import problem_responses

__all__ = ["router"]

router = APIRouter(tags=["forecasts"])

Confidence = Annotated[
    float, Query(ge=0.5, le=0.99, description="Confidence of the band (Sen's interval).")
]


@router.get(
    "/forecasts",
    summary="The fleet's forecasts",
    responses=problem_responses(401, 403, 422, 503),
)
async def fleet_forecasts(
    manager: Manager,
    _token: FleetRead,
    limit: Annotated[int, Query(ge=1, le=1000, description="Tenants per page.")] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000, description="Tenants to skip.")] = 0,
    confidence: Confidence = 0.9,
) -> Page[ForecastPublic]:
    """A page of tenants by id, each with the days until each counted limit is reached
    (Theil-Sen trend of its usage snapshots) and the anomalies in its loads; a tenant
    dropped since the page was listed is left out."""
    records = await manager.list_tenants(limit=limit, offset=offset)
    total = await manager.count_tenants()
    forecasts = await manager.forecast(
        [r.tenant_id for r in records], confidence=confidence, skip_missing=True
    )
    return Page[ForecastPublic](
        items=[ForecastPublic.model_validate(f.as_dict()) for f in forecasts],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/tenants/{tenant_id}/forecast",
    summary="A tenant's forecast",
    responses=problem_responses(400, 401, 403, 404, 422, 503),
)
async def tenant_forecast(
    tenant_id: TenantRead, manager: Manager, confidence: Confidence = 0.9
) -> ForecastPublic:
    """Days until each counted limit of the tenant is reached, with the band at
    ``confidence``, and the anomalies in its throughput, duration and growth."""
    (forecast,) = await manager.forecast([tenant_id], confidence=confidence)
    return ForecastPublic.model_validate(forecast.as_dict())
