"""Migrations: where each tenant's schema is in its revision history."""

from __future__ import annotations

from fastapi import APIRouter

from tenancy_fixtures.service.deps import FleetRead, Manager, TenantRead
from tenancy_fixtures.service.models import MigrationPublic
from tenancy_fixtures.service.problems import problem_responses

__all__ = ["router"]

router = APIRouter(tags=["migrations"])


@router.get(
    "/migrations",
    summary="Every tenant's schema revision",
    responses=problem_responses(401, 403, 409, 503),
)
async def migration_status(manager: Manager, _token: FleetRead) -> list[MigrationPublic]:
    """Each tenant's recorded revision and last migration attempt, by id (from the
    migration ledger; ``tenancy-fixtures migrate`` moves them)."""
    return [MigrationPublic.of(entry) for entry in await manager.migration_status()]


@router.get(
    "/tenants/{tenant_id}/migration",
    summary="A tenant's schema revision",
    responses=problem_responses(400, 401, 403, 404, 409, 503),
)
async def tenant_migration(tenant_id: TenantRead, manager: Manager) -> MigrationPublic:
    """The tenant's recorded revision and its last migration attempt."""
    await manager.get_tenant(tenant_id)
    entries = await manager.migration_status([tenant_id])
    return MigrationPublic.of(entries[0])
