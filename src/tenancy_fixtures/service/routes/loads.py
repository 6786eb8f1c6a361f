"""Loads: start one (uploaded archive, or a set on the server), follow it.

``POST /tenants/{id}/uploads`` takes an archive, ``POST /tenants/{id}/loads`` names a
set on the server. Either answers ``202 Accepted`` with the load's job at once and
loads in the background: poll ``GET .../loads/{job_id}`` or follow ``.../events``
(server-sent events).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.sse import EventSourceResponse, ServerSentEvent

from tenancy_fixtures.errors import FixtureSetError
from tenancy_fixtures.fixtures.context import ProgressCallback
from tenancy_fixtures.loading.load import LoadOptions, LoadReport
from tenancy_fixtures.loading.sources import path_options
from tenancy_fixtures.manager import FixtureManager
from tenancy_fixtures.service import archives
from tenancy_fixtures.service.deps import Jobs, Manager, SettingsDep, TenantRead, TenantWrite
from tenancy_fixtures.service.jobs import LoadJob
from tenancy_fixtures.service.locations import location
from tenancy_fixtures.service.models import LoadJobPublic, LoadRequest
from tenancy_fixtures.service.problems import ServiceProblem, problem_responses
from tenancy_fixtures.settings import Settings, ValidationMode
from tenancy_fixtures.store.control_plane import TenantRecord

__all__ = ["router", "uploads"]

router = APIRouter(prefix="/tenants/{tenant_id}/loads", tags=["loads"])
#: Uploads are a path of their own: under ``loads/`` the name would also be a job id.
uploads = APIRouter(prefix="/tenants/{tenant_id}/uploads", tags=["loads"])

#: The archive is recognised by its first bytes, whatever the request says it is.
_ARCHIVE_TYPES = (
    "application/gzip",
    "application/zip",
    "application/x-tar",
    "application/octet-stream",
)


def _public(job: LoadJob) -> LoadJobPublic:
    return LoadJobPublic(
        job_id=job.job_id,
        tenant_id=job.tenant_id,
        status=job.status,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        progress=dict(job.progress),
        report=job.report,
        problem=job.problem,
    )


def _start(
    jobs: Jobs,
    manager: FixtureManager,
    tenant: TenantRecord,
    options: LoadOptions,
    request: Request,
    response: Response,
    *,
    cleanup: Callable[[], None] | None = None,
    shown_from: Path | None = None,
) -> LoadJobPublic:
    tenant_id = tenant.tenant_id

    async def work(progress: ProgressCallback) -> LoadReport:
        return await manager.load(tenant_id, replace(options, progress=progress))

    job = jobs.start(
        tenant_id,
        work,
        cleanup=cleanup,
        shown_from=shown_from,
        tenant_created_at=tenant.created_at,
    )
    response.headers["Location"] = location(request, f"/tenants/{tenant_id}/loads/{job.job_id}")
    return _public(job)


def _server_path(settings: Settings, given: str) -> Path:
    """``given`` resolved inside the load root; links are followed before checking."""
    root = settings.service_load_root
    if root is None:
        raise ServiceProblem(
            403,
            "Server paths disabled",
            "this service takes no server-side paths: set TENANCY_SERVICE_LOAD_ROOT",
            kind="ServerPathsDisabled",
        )
    if "\x00" in given:
        raise ServiceProblem(
            422, "Invalid path", "the path holds a NUL character", kind="InvalidPath"
        )
    base = root.resolve()
    candidate = (base / given).resolve()
    if not candidate.is_relative_to(base):
        raise ServiceProblem(
            422,
            "Path outside the load root",
            "the path must name something inside TENANCY_SERVICE_LOAD_ROOT",
            kind="PathOutsideLoadRoot",
        )
    return candidate


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Load fixtures already on the server",
    responses=problem_responses(400, 401, 403, 404, 422, 503),
)
async def start_load(
    tenant_id: TenantWrite,
    body: LoadRequest,
    manager: Manager,
    jobs: Jobs,
    settings: SettingsDep,
    request: Request,
    response: Response,
) -> LoadJobPublic:
    """Start loading the tenant's tier fixtures (no ``path``), or the fixture set or
    source files at ``path`` inside the service's load root."""
    tenant = await manager.get_tenant(tenant_id)
    named = path_options() & set(body.options or {})
    if named:
        raise FixtureSetError(
            f"option {min(named)!r} names a file on the server, which a request cannot: "
            "give it in the set's fixtures.json, where it is read inside the set"
        )
    source = _server_path(settings, body.path) if body.path is not None else None
    options = LoadOptions(
        source=source,
        format=body.format,
        options=body.options,
        force=body.force,
        validation=body.validation,
    )
    shown_from = settings.service_load_root.resolve() if settings.service_load_root else None
    return _start(jobs, manager, tenant, options, request, response, shown_from=shown_from)


@uploads.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Upload a fixture-set archive and load it",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "A .tar.gz (or .tar) or .zip of one fixture set.",
            "content": {
                t: {"schema": {"type": "string", "format": "binary"}} for t in _ARCHIVE_TYPES
            },
        }
    },
    responses=problem_responses(400, 401, 403, 404, 413, 415, 422, 503),
)
async def upload_load(
    tenant_id: TenantWrite,
    request: Request,
    manager: Manager,
    jobs: Jobs,
    settings: SettingsDep,
    response: Response,
    validation: Annotated[ValidationMode | None, Query()] = None,
    force: Annotated[bool, Query()] = False,
) -> LoadJobPublic:
    """Stream the request body (the archive) to disk, refusing it past
    ``TENANCY_SERVICE_UPLOAD_MAX_BYTES``; unpack it safely; load it in the background.
    The files are removed when the load ends."""
    tenant = await manager.get_tenant(tenant_id)
    limits = archives.ArchiveLimits.of(settings)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.upload_bytes:
        raise archives.too_large(limits.upload_bytes)
    try:
        upload = await asyncio.to_thread(archives.prepare, settings.service_work_dir, tenant_id)
    except OSError as exc:
        raise archives.work_folder_failed(exc) from exc
    folder = upload.path
    archive = folder / "archive"
    try:
        await archives.receive(request.stream(), archive, limit=limits.upload_bytes)
    except BaseException:
        await asyncio.to_thread(upload.remove)
        raise
    source = await upload.unpack(archive, limits)
    options = LoadOptions(source=source, force=force, validation=validation)
    return _start(
        jobs,
        manager,
        tenant,
        options,
        request,
        response,
        cleanup=upload.remove,
        shown_from=folder / "set",
    )


async def _job(tenant_id: TenantRead, job_id: str, jobs: Jobs, manager: Manager) -> LoadJob:
    """The job ``job_id`` of this tenant (after the guard); 404 if this process does not
    know it, or it was another tenant's of the same id (dropped, then made again)."""
    created_at = (await manager.get_tenant(tenant_id)).created_at
    job = jobs.get(job_id)
    if job is None or job.tenant_id != tenant_id or job.tenant_created_at != created_at:
        raise ServiceProblem(
            404, "Job not found", f"no load job {job_id!r} for this tenant", kind="JobNotFound"
        )
    return job


CurrentJob = Annotated[LoadJob, Depends(_job)]


@router.get("/{job_id}", summary="A load job", responses=problem_responses(400, 401, 403, 404))
async def get_load(job: CurrentJob) -> LoadJobPublic:
    """The job's status, rows taken so far, and its report or problem once it ended."""
    return _public(job)


@router.get(
    "/{job_id}/events",
    summary="Follow a load job (server-sent events)",
    response_class=EventSourceResponse,
    responses=problem_responses(400, 401, 403, 404),
)
async def follow_load(job: CurrentJob) -> AsyncIterator[ServerSentEvent]:
    """Events ``progress`` (the job as ``GET .../{job_id}`` shows it) while it runs,
    then one ``succeeded`` or ``failed``; the stream then ends."""
    async for state in job.changes():
        name = state.status if state.done else "progress"
        yield ServerSentEvent(data=_public(state).model_dump(mode="json"), event=name)
