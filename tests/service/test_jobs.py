"""The service's background job registry: how many jobs it keeps for polling."""

from __future__ import annotations

import asyncio

from tenancy_fixtures.errors import FixtureError
from tenancy_fixtures.loading.load import LoadReport
from tenancy_fixtures.service.jobs import JobRegistry


async def _refused(progress: object) -> LoadReport:
    raise FixtureError("refused")


async def test_finished_jobs_past_the_kept_number_are_forgotten_while_an_older_one_runs() -> None:
    """The registry keeps the newest ``kept`` jobs. Only the oldest job was ever looked
    at: while it still ran (one long load), no finished job behind it was forgotten,
    and the registry grew with every load. Finished ones go, oldest first; running
    ones stay."""
    registry = JobRegistry(kept=3)
    release = asyncio.Event()

    async def long_load(progress: object) -> LoadReport:
        await release.wait()
        raise FixtureError("done")

    running = registry.start("t", long_load)
    finished = []
    for _ in range(10):
        job = registry.start("t", _refused)
        finished.append(job.job_id)
        async for _ in job.changes(interval=0):  # to its end
            pass
    try:
        assert registry.get(running.job_id) is running
        kept = [job_id for job_id in finished if registry.get(job_id) is not None]
        assert kept == finished[-2:]  # with the running one: 3
    finally:
        release.set()
        await registry.aclose()
