"""Background load jobs: a load started by a request runs on after the response.

A job runs one ``FixtureManager.load`` on the app's event loop, counting the rows each
table has taken so far (the loader's progress callback), and ends ``succeeded`` with
the load's report or ``failed`` with the error as a problem document. Clients follow
it by polling or by server-sent events (:meth:`LoadJob.changes`). Jobs live in the
serving process: the most recent :data:`KEPT_JOBS` are kept, and a restart forgets
them (the load itself is recorded as a run in the control plane either way).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from tenancy_fixtures.errors import TenancyFixturesError
from tenancy_fixtures.loading.load import LoadReport
from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.service.problems import problem_for
from tenancy_fixtures.store.control_plane import utcnow

__all__ = ["KEPT_JOBS", "JobRegistry", "JobStatus", "LoadJob", "report_document"]

log = get_logger("tenancy_fixtures.service.jobs")

#: Jobs kept for polling, the newest; older finished ones are forgotten (running ones
#: never are).
KEPT_JOBS = 1000

JobStatus = Literal["queued", "running", "succeeded", "failed"]
#: The work of a job: a load told where to report progress.
LoadWork = Callable[[Callable[[str, int], None]], Awaitable[LoadReport]]


def report_document(report: LoadReport) -> dict[str, Any]:
    """A load report as JSON-ready data."""
    return {
        "tenant_id": report.tenant_id,
        "run_id": report.run_id,
        "changed": report.changed,
        "rows": report.rows,
        "row_counts": report.row_counts,
        "seconds": round(report.seconds, 6),
        "stages": {k: round(v, 6) for k, v in report.stages.items()},
        "fixtures": {r.fixture: r.status for r in report.results},
        "rejected": report.rejected,
    }


@dataclass
class LoadJob:
    """One background load and what is known of it so far."""

    job_id: str
    tenant_id: str
    #: When the tenant was created: one dropped and made again under the same id is
    #: another tenant, which does not see this job.
    tenant_created_at: datetime | None = None
    status: JobStatus = "queued"
    created_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    #: Rows taken so far, per table.
    progress: dict[str, int] = field(default_factory=dict)
    report: dict[str, Any] | None = None
    problem: dict[str, Any] | None = None
    _version: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def done(self) -> bool:
        """Whether the job has ended, either way."""
        return self.status in ("succeeded", "failed")

    def touch(self) -> None:
        """Wake whoever follows the job."""
        self._version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def advance(self, table: str, rows: int) -> None:
        """The loader's progress callback: ``rows`` more rows of ``table`` taken."""
        self.progress[table] = self.progress.get(table, 0) + rows
        self.touch()

    async def changes(self, *, interval: float = 0.1) -> AsyncIterator[LoadJob]:
        """The job now, then again each time it changes (at most every ``interval``
        seconds), ending with its final state."""
        seen = -1
        while True:
            waiting = self._changed
            if self._version != seen:
                seen = self._version
                yield self
            if self.done:
                return
            await waiting.wait()
            await asyncio.sleep(interval)


def _relative(detail: str, shown_from: Path) -> str:
    """``detail`` naming files relative to ``shown_from``, and that folder itself (a set
    refused as a whole, at the archive's top or the load root) as "the fixture set"."""
    return detail.replace(f"{shown_from}{os.sep}", "").replace(str(shown_from), "the fixture set")


class JobRegistry:
    """The jobs of one app: started, found by id, cancelled when the app stops."""

    def __init__(self, *, kept: int = KEPT_JOBS) -> None:
        self._jobs: OrderedDict[str, LoadJob] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._kept = kept

    def start(
        self,
        tenant_id: str,
        work: LoadWork,
        *,
        cleanup: Callable[[], None] | None = None,
        shown_from: Path | None = None,
        tenant_created_at: datetime | None = None,
    ) -> LoadJob:
        """Run ``work`` for ``tenant_id`` (created at ``tenant_created_at``) in the
        background; ``cleanup`` (blocking: run in a thread) is called when it ends,
        whatever the outcome (an upload's folder is removed and unlocked). A failure's
        detail names files relative to ``shown_from`` (the server's own folders are not
        the client's business)."""
        job = LoadJob(uuid.uuid4().hex, tenant_id, tenant_created_at)
        self._jobs[job.job_id] = job
        self._forget_finished()
        task = asyncio.create_task(
            self._run(job, work, cleanup, shown_from), name=f"load-{job.job_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    def _forget_finished(self) -> None:
        """Forget finished jobs, oldest first, past the ``kept`` newest; running ones
        stay, however old."""
        excess = len(self._jobs) - self._kept
        if excess <= 0:
            return
        finished = [job_id for job_id, job in self._jobs.items() if job.done][:excess]
        for job_id in finished:
            del self._jobs[job_id]

    def get(self, job_id: str) -> LoadJob | None:
        """The job ``job_id``, if this process still knows it."""
        return self._jobs.get(job_id)

    async def _run(
        self,
        job: LoadJob,
        work: LoadWork,
        cleanup: Callable[[], None] | None,
        shown_from: Path | None,
    ) -> None:
        job.status = "running"
        job.started_at = utcnow()
        job.touch()
        try:
            report = await work(job.advance)
        except TenancyFixturesError as exc:
            job.problem = problem_for(exc, None)
            if shown_from is not None:
                job.problem["detail"] = _relative(job.problem["detail"], shown_from)
            job.status = "failed"
        except Exception as exc:  # a job's failure belongs in the job, not in the loop
            log.error("load_job_failed", job_id=job.job_id, tenant_id=job.tenant_id, exc_info=exc)
            job.problem = {
                "type": "urn:tenancy-fixtures:problem:InternalError",
                "title": "Internal error",
                "status": 500,
                "detail": "the load failed unexpectedly; the service's log says why",
                "instance": None,
            }
            job.status = "failed"
        else:
            job.report = report_document(report)
            job.status = "succeeded"
        finally:
            if cleanup is not None:
                await asyncio.to_thread(cleanup)
        job.finished_at = utcnow()
        job.touch()

    async def aclose(self) -> None:
        """Cancel jobs still running (their transactions roll back) and wait for them."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
