"""The Django peers, from ``bench/django_baseline/`` (another module), when present.

``run_loaddata`` and ``run_tenant_provisioning`` are imported lazily; without them
(or without Django) the harness prints why and goes on. They run in a worker thread:
Django refuses to run its ORM from inside an event loop.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from bench.cases import DJANGO, Case, Failures, Inputs
from bench.common import Measurement
from bench.database import BenchDatabase

__all__ = ["DjangoBaseline", "django_baseline"]


async def _call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run an entry point off the event loop (Django refuses async contexts)."""
    result = await asyncio.to_thread(function, *args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


@dataclass(frozen=True)
class DjangoBaseline:
    """The two entry points of ``bench.django_baseline``."""

    run_loaddata: Callable[..., Any]
    run_tenant_provisioning: Callable[..., Any]

    async def loaddata(self, db: BenchDatabase, inputs: Inputs, failures: Failures) -> list[Case]:
        """``loaddata`` of (a prefix of) the set; no case if it fails."""
        console = failures.console
        measurement = await failures.run(
            "django baseline loaddata",
            _call(
                self.run_loaddata,
                inputs.dataset.directory,
                db.dsn,
                max_rows=inputs.config.django_rows,
                # At full scale one loaddata takes minutes; one run is enough for ~50x gaps.
                repeats=inputs.config.django_repeats,
            ),
        )
        if measurement is None:
            return []
        if not isinstance(measurement, Measurement) or not measurement.seconds:
            console.print(f"django baseline not available: loaddata returned {measurement!r}")
            return []
        console.print(
            f"  Django loaddata {measurement.rows:,} rows, {measurement.median_seconds:.2f}s"
        )
        return [Case(DJANGO, measurement, "load")]

    async def provisioning(
        self, db: BenchDatabase, n: int, failures: Failures
    ) -> Measurement | None:
        """``n`` django-tenants creations, per-tenant times; ``None`` if it fails."""
        measurement = await failures.run(
            "django baseline tenant provisioning", _call(self.run_tenant_provisioning, db.dsn, n)
        )
        if measurement is None:
            return None
        if not isinstance(measurement, Measurement) or not measurement.seconds:
            failures.console.print(
                f"django baseline not available: provisioning returned {measurement!r}"
            )
            return None
        return measurement


def django_baseline(console: Console) -> DjangoBaseline | None:
    """The Django entry points, or ``None`` (saying why) when they cannot be imported."""
    try:
        from bench.django_baseline import run_loaddata, run_tenant_provisioning
    except ImportError as exc:
        console.print(f"django baseline not available: {exc}")
        return None
    return DjangoBaseline(run_loaddata, run_tenant_provisioning)
