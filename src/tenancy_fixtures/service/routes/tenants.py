"""Tenants: create, list (paged, filtered), show, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from tenancy_fixtures.service.deps import FleetAdmin, FleetRead, Manager, TenantAdmin, TenantRead
from tenancy_fixtures.service.locations import location
from tenancy_fixtures.service.models import (
    ConfigPublic,
    Page,
    TenantCreate,
    TenantPublic,
    TenantStatusPublic,
)
from tenancy_fixtures.service.problems import ServiceProblem, problem_responses
from tenancy_fixtures.service.routes.queries import NO_NUL, IdPrefix, Limit, Offset, Tier
from tenancy_fixtures.tenancy.tenants import TenantFixture

__all__ = ["router"]

router = APIRouter(prefix="/tenants", tags=["tenants"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a tenant",
    responses=problem_responses(400, 401, 403, 409, 422, 503),
)
async def create_tenant(
    body: TenantCreate,
    manager: Manager,
    _token: FleetAdmin,
    request: Request,
    response: Response,
) -> ConfigPublic:
    """Create an isolated tenant: storage, schema and config (its tables stay empty).
    Needs a fleet token with scope ``admin``."""
    config = await manager.create_tenant(
        TenantFixture(
            tenant_id=body.tenant_id,
            tier=body.tier,
            features=body.features,
            limits=body.limits,
            settings=body.settings,
        )
    )
    response.headers["Location"] = location(request, f"/tenants/{config.tenant_id}")
    return ConfigPublic.model_validate(config.model_dump(mode="json"))


@router.get(
    "",
    summary="List tenants",
    responses=problem_responses(401, 403, 422, 503),
)
async def list_tenants(
    manager: Manager,
    _token: FleetRead,
    limit: Limit = 100,
    offset: Offset = 0,
    prefix: IdPrefix = None,
    tier: Tier = None,
    tenant_status: Annotated[
        str | None, Query(alias="status", max_length=16, pattern=NO_NUL)
    ] = None,
) -> Page[TenantPublic]:
    """Registered tenants by id, a page at a time; filter by id prefix, tier, status."""
    filters = {"prefix": prefix, "tier": tier, "status": tenant_status}
    records = await manager.list_tenants(limit=limit, offset=offset, **filters)
    total = await manager.count_tenants(**filters)
    return Page[TenantPublic](
        items=[TenantPublic.of(r) for r in records], total=total, limit=limit, offset=offset
    )


@router.get(
    "/{tenant_id}",
    summary="Show a tenant",
    responses=problem_responses(400, 401, 403, 404, 409, 503),
)
async def show_tenant(tenant_id: TenantRead, manager: Manager) -> TenantStatusPublic:
    """Registry, config, applied fixtures, rows per table and size of one tenant."""
    return TenantStatusPublic.model_validate((await manager.tenant_status(tenant_id)).as_dict())


@router.delete(
    "/{tenant_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a tenant",
    responses=problem_responses(400, 401, 403, 404, 422, 503),
)
async def delete_tenant(
    tenant_id: TenantAdmin,
    manager: Manager,
    confirm: Annotated[
        str | None,
        Query(max_length=64, description="The tenant's id again: deleting cannot be undone."),
    ] = None,
) -> Response:
    """Drop the tenant entirely: storage, registry rows, runs, reject files, cached
    config and its tokens; its audit records keep a minimal trail. ``?confirm=`` must
    repeat the tenant's id. Needs scope ``admin``."""
    if confirm != tenant_id:
        raise ServiceProblem(
            422,
            "Confirmation required",
            f"deleting a tenant cannot be undone: repeat its id as ?confirm={tenant_id}",
            kind="ConfirmationRequired",
        )
    await manager.drop_tenant(tenant_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
