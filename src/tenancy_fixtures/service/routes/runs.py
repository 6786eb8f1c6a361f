"""Runs: a tenant's recorded operations (loads, recorded validations) with timings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from tenancy_fixtures.service.deps import Manager, TenantRead
from tenancy_fixtures.service.models import Page, RunPublic
from tenancy_fixtures.service.problems import ServiceProblem, problem_responses
from tenancy_fixtures.service.routes.queries import NO_NUL

__all__ = ["router"]

router = APIRouter(prefix="/tenants/{tenant_id}/runs", tags=["runs"])


@router.get("", summary="A tenant's runs", responses=problem_responses(400, 401, 403, 404, 422))
async def list_runs(
    tenant_id: TenantRead,
    manager: Manager,
    operation: Annotated[
        str | None, Query(max_length=32, pattern=NO_NUL, examples=["load"])
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> Page[RunPublic]:
    """The tenant's runs, newest first; ``operation`` narrows to one kind."""
    runs, total = await manager.runs(tenant_id, operation=operation, limit=limit, offset=offset)
    return Page[RunPublic](
        items=[RunPublic.of(r) for r in runs], total=total, limit=limit, offset=offset
    )


@router.get("/{run_id}", summary="One run", responses=problem_responses(400, 401, 403, 404))
async def get_run(
    tenant_id: TenantRead,
    manager: Manager,
    run_id: Annotated[str, "run id"],
) -> RunPublic:
    """One run of the tenant, with its stage timings and detail."""
    # An id holding NUL names no run (and PostgreSQL's text cannot hold one).
    found = "\x00" not in run_id
    runs = (await manager.runs(tenant_id, run_id=run_id[:64], limit=1))[0] if found else []
    if not runs:
        raise ServiceProblem(
            404, "Run not found", f"no run {run_id!r} for this tenant", kind="RunNotFound"
        )
    return RunPublic.of(runs[0])
