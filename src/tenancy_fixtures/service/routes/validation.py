"""Validation: check a tenant's data now, or read the last recorded report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from tenancy_fixtures.service.deps import Manager, TenantRead, TenantWrite
from tenancy_fixtures.service.problems import ServiceProblem, problem_responses

__all__ = ["router"]

router = APIRouter(prefix="/tenants/{tenant_id}/validation", tags=["validation"])

#: A report as the service sends it (``ValidationReport.as_dict``), shortened.
_EXAMPLE = {
    "tenant_id": "acme_music",
    "ok": True,
    "run_id": "9d2b4c1e8f7a6b5c4d3e2f105f0c8e0a",
    "checks": [
        {
            "check": "row_counts",
            "status": "ok",
            "detail": "users: 20 rows, as its fixtures loaded",
            "table": "users",
        }
    ],
    "problems": [],
    "row_counts": {"users": 20},
    "orphans": {},
    "checksums": {
        "users": {
            "rows": 20,
            "checksum": "3d4078a66331b7ee",
            "status": "match",
            "expected_rows": 20,
            "expected": "3d4078a66331b7ee",
            "method": "recomputed",
        }
    },
    "storage": {"bytes": 528384, "limit": 107374182400},
    "stages": {"orphans": 0.005, "checksums": 0.011, "total": 0.04},
}


@router.post(
    "",
    summary="Validate a tenant's data",
    responses={
        200: {"content": {"application/json": {"example": _EXAMPLE}}},
        **problem_responses(400, 401, 403, 404, 409, 422, 503),
    },
)
async def run_validation(
    tenant_id: TenantWrite,
    manager: Manager,
    recompute_checksums: Annotated[
        bool,
        Query(
            description="Read and hash every table again, also those PostgreSQL shows "
            "only their recorded loads wrote."
        ),
    ] = False,
) -> dict[str, Any]:
    """Check keys, references, constraints, content checksums, isolation, undeclared
    objects and storage; the report is recorded as a ``validate`` run and audited.
    ``ok`` false is still 200: the report says what failed."""
    report = await manager.validate_tenant(
        tenant_id, record=True, recompute_checksums=recompute_checksums
    )
    return report.as_dict()


@router.get(
    "",
    summary="The last recorded validation report",
    responses={
        200: {"content": {"application/json": {"example": _EXAMPLE}}},
        **problem_responses(400, 401, 403, 404),
    },
)
async def last_validation(tenant_id: TenantRead, manager: Manager) -> dict[str, Any]:
    """The report of the tenant's latest recorded validation (by this service or
    ``validate-data``); 404 if it was never validated with recording."""
    runs, _ = await manager.runs(tenant_id, operation="validate", limit=1)
    if not runs:
        raise ServiceProblem(
            404,
            "No validation recorded",
            f"tenant '{tenant_id}' has no recorded validation: POST to this path runs one",
            kind="NoValidationRecorded",
        )
    return runs[0].detail
