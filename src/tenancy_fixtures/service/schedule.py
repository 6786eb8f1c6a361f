"""Usage snapshots on a schedule: while the app runs, every
``service_snapshot_interval_seconds`` a snapshot of every tenant, then the fleet's
forecasts (which set the ``tenancy_days_to_limit`` and ``tenancy_anomaly`` gauges that
``/metrics`` serves).

One task per app, started in its lifespan and cancelled when it stops. A round that
fails is logged and the next one runs as planned: a database away for a while must not
end the schedule.
"""

from __future__ import annotations

import asyncio
import contextlib

from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.manager import FixtureManager

__all__ = ["SnapshotSchedule"]

log = get_logger("tenancy_fixtures.service.schedule")


class SnapshotSchedule:
    """Snapshots every tenant every ``interval`` seconds (the first after one interval,
    so restarts do not crowd the history)."""

    def __init__(self, manager: FixtureManager, interval: float) -> None:
        self.manager = manager
        self.interval = interval
        #: Rounds finished, failed or not (what a test or a probe can watch).
        self.rounds = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run the schedule in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="tenancy-usage-snapshots")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.run_once()

    async def run_once(self) -> None:
        """One round: snapshot every tenant, then forecast the fleet (also when a
        snapshot failed: the others were taken, and the gauges of every tenant would
        go stale for as long as one tenant's storage fails)."""
        try:
            taken: int | None = len(await self.manager.usage_snapshots())
        except Exception as exc:  # a round's failure must not end the schedule
            log.warning("usage_snapshots_failed", error=f"{type(exc).__name__}: {exc}")
            taken = None
        try:
            forecasts = await self.manager.forecast()
        except Exception as exc:
            log.warning("forecasts_failed", error=f"{type(exc).__name__}: {exc}")
        else:
            log.info("usage_snapshots_taken", tenants=taken, forecasts=len(forecasts))
        finally:
            self.rounds += 1

    async def aclose(self) -> None:
        """Stop the schedule (a round under way is cancelled, its transaction rolled back)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
