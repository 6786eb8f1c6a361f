"""The audit log: the fleet's, or one tenant's; filtered and paged, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from tenancy_fixtures.service.deps import FleetRead, Manager, TenantRead
from tenancy_fixtures.service.models import AuditPage, AuditPublic
from tenancy_fixtures.service.problems import problem_responses
from tenancy_fixtures.service.routes.queries import NO_NUL, Limit, Offset
from tenancy_fixtures.store.control_plane import AuditFilter

__all__ = ["router"]

router = APIRouter(tags=["audit"])


def _filter(
    action: Annotated[
        str | None, Query(max_length=64, pattern=NO_NUL, examples=["tenant.create"])
    ] = None,
    outcome: Annotated[
        str | None, Query(max_length=16, pattern=NO_NUL, examples=["refused"])
    ] = None,
    actor: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    since: Annotated[datetime | None, Query(description="At or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Before (ISO 8601).")] = None,
) -> AuditFilter:
    return AuditFilter(action=action, outcome=outcome, actor=actor, since=since, until=until)


Filter = Annotated[AuditFilter, Depends(_filter)]


async def _page(manager: Manager, where: AuditFilter, limit: int, offset: int) -> AuditPage:
    records = await manager.audit_log(limit=limit, offset=offset, where=where)
    total = await manager.count_audit(where)
    return AuditPage(
        items=[AuditPublic.of(r) for r in records],
        total=total,
        limit=limit,
        offset=offset,
        audit_logging=manager.settings.audit_logging,
    )


@router.get("/audit", summary="The fleet's audit log", responses=problem_responses(401, 403, 422))
async def fleet_audit(
    manager: Manager,
    _token: FleetRead,
    where: Filter,
    tenant_id: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> AuditPage:
    """Audit records of every tenant (and fleet-wide actions), newest first."""
    where = AuditFilter(**{**vars(where), "tenant_id": tenant_id})
    return await _page(manager, where, limit, offset)


@router.get(
    "/tenants/{tenant_id}/audit",
    summary="A tenant's audit log",
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def tenant_audit(
    tenant_id: TenantRead,
    manager: Manager,
    where: Filter,
    limit: Limit = 100,
    offset: Offset = 0,
) -> AuditPage:
    """The tenant's audit records, newest first."""
    await manager.get_tenant(tenant_id)
    where = AuditFilter(**{**vars(where), "tenant_id": tenant_id})
    return await _page(manager, where, limit, offset)
