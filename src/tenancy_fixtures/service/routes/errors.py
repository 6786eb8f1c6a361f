"""Error analysis: the fleet's refused and failed operations, grouped."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from tenancy_fixtures.service.deps import FleetRead, Manager
from tenancy_fixtures.service.models import ErrorAnalysisPublic
from tenancy_fixtures.service.problems import problem_responses

__all__ = ["router"]

router = APIRouter(tags=["errors"])


@router.get(
    "/errors",
    summary="The fleet's refusals and failures",
    responses=problem_responses(401, 403, 422, 503),
)
async def fleet_errors(
    manager: Manager,
    _token: FleetRead,
    days: Annotated[float, Query(gt=0, le=3660, description="How many days back.")] = 7,
) -> ErrorAnalysisPublic:
    """Refused and failed operations of the last ``days``, from the audit log, grouped
    by tenant, action, error class, rule and table, with counts per UTC day;
    ``audit_logging: false`` when the log is off and none are being recorded."""
    analysis = await manager.error_analysis(since=timedelta(days=days))
    return ErrorAnalysisPublic.model_validate(
        {**analysis.as_dict(), "audit_logging": manager.settings.audit_logging}
    )
