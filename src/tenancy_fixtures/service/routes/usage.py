"""Usage: each tenant's newest snapshot against its limits, its history, a snapshot now."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status

from tenancy_fixtures.service.deps import FleetRead, Manager, TenantRead, TenantWrite
from tenancy_fixtures.service.models import Page, TenantUsagePublic, UsagePublic
from tenancy_fixtures.service.problems import problem_responses
from tenancy_fixtures.service.routes.queries import IdPrefix, Limit, Offset, Tier

__all__ = ["router"]

router = APIRouter(tags=["usage"])


@router.get(
    "/usage",
    summary="The fleet's usage against its limits",
    responses=problem_responses(401, 403, 422, 503),
)
async def fleet_usage(
    manager: Manager,
    _token: FleetRead,
    limit: Limit = 100,
    offset: Offset = 0,
    prefix: IdPrefix = None,
    tier: Tier = None,
) -> Page[TenantUsagePublic]:
    """A page of tenants by id, each with its newest usage snapshot and its counted
    limits (value, maximum, share used); those past the warning share or the limit. A
    tenant dropped since the page was listed is left out."""
    records = await manager.list_tenants(limit=limit, offset=offset, prefix=prefix, tier=tier)
    total = await manager.count_tenants(prefix=prefix, tier=tier)
    usage = await manager.latest_usage([r.tenant_id for r in records], skip_missing=True)
    return Page[TenantUsagePublic](
        items=[TenantUsagePublic.model_validate(u.as_dict()) for u in usage],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/tenants/{tenant_id}/usage",
    summary="A tenant's usage against its limits",
    responses=problem_responses(400, 401, 403, 404, 503),
)
async def tenant_usage(tenant_id: TenantRead, manager: Manager) -> TenantUsagePublic:
    """The tenant's newest usage snapshot (``null`` before its first) and its counted
    limits checked against it."""
    (usage,) = await manager.latest_usage([tenant_id])
    return TenantUsagePublic.model_validate(usage.as_dict())


@router.get(
    "/tenants/{tenant_id}/usage/history",
    summary="A tenant's usage history",
    responses=problem_responses(400, 401, 403, 404, 422, 503),
)
async def usage_history(
    tenant_id: TenantRead,
    manager: Manager,
    since: Annotated[datetime | None, Query(description="At or after (ISO 8601).")] = None,
) -> list[UsagePublic]:
    """The tenant's usage snapshots (taken by loads, `monitor snapshot`, the service's
    schedule), oldest first: the newest 500."""
    await manager.get_tenant(tenant_id)
    history = await manager.usage_history(tenant_id, since=since)
    return [UsagePublic.model_validate(s.as_dict()) for s in history]


@router.post(
    "/tenants/{tenant_id}/usage",
    status_code=status.HTTP_201_CREATED,
    summary="Take a usage snapshot now",
    responses=problem_responses(400, 401, 403, 404, 503),
)
async def take_snapshot(tenant_id: TenantWrite, manager: Manager) -> UsagePublic:
    """Measure the tenant's usage now (rows per table, bytes, counted limits) and add
    it to its history."""
    snapshot = await manager.usage_snapshot(tenant_id)
    return UsagePublic.model_validate(snapshot.as_dict())
