"""django-tenants ``migrate_schemas`` over a fleet with nothing to apply, from the harness.

Nothing here imports Django: :class:`DjangoFleet` drives
:mod:`bench.django_baseline.fleet_child` and ``manage.py`` in subprocesses against one
fresh database (created and dropped by :func:`django_fleet`). The fleet grows from one
count to the next (tenants are created once, not per count).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.django_baseline.child import RESULT_PREFIX
from bench.django_baseline.runner import _TENANT_SETTINGS, _env, _run, fresh_database

__all__ = ["DjangoFleet", "django_fleet"]

_CHILD = "bench.django_baseline.fleet_child"


@dataclass
class DjangoFleet:
    """The django-tenants fleet of one fresh database."""

    database_url: str
    tenants: int = 0
    #: Seconds each tenant's creation took, every tenant so far.
    creation_seconds: list[float] = field(default_factory=list)
    versions: str = ""

    @property
    def env(self) -> dict[str, str]:
        return _env(_TENANT_SETTINGS, self.database_url)

    def _child(self, *args: str) -> dict[str, Any]:
        done = _run(_CHILD, args, self.env, None)
        lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
        if not lines:
            raise RuntimeError(f"{_CHILD} printed no result line:\n{done.stdout[-2000:]}")
        result: dict[str, Any] = json.loads(lines[-1].removeprefix(RESULT_PREFIX))
        return result

    def grow(self, n: int) -> float:
        """Bring the fleet to ``n`` migrated tenants; returns the wall time it took."""
        started = time.perf_counter()
        result = self._child("grow", str(n))
        self.tenants = int(result["tenants"])
        self.creation_seconds += [float(s) for s in result["seconds"]]
        self.versions = f"Django {result['django']}, django-tenants {result['django_tenants']}"
        return time.perf_counter() - started

    @property
    def creation_p50(self) -> float:
        return statistics.median(self.creation_seconds) if self.creation_seconds else 0.0

    def noop_in_process(self) -> float:
        """``call_command("migrate_schemas")`` timed in a child that has set Django up."""
        result = self._child("noop")
        if int(result["tenants"]) != self.tenants:
            raise RuntimeError(f"migrate_schemas saw {result['tenants']} tenants of {self.tenants}")
        return float(result["seconds"])

    def noop_command(self) -> float:
        """``manage.py migrate_schemas --noinput`` as a user runs it: the whole process."""
        started = time.perf_counter()
        _run(
            "bench.django_baseline.manage",
            ["migrate_schemas", "--noinput", "--verbosity", "0"],
            self.env,
            None,
        )
        return time.perf_counter() - started


@contextmanager
def django_fleet(pg_url: str) -> Iterator[DjangoFleet]:
    """A :class:`DjangoFleet` in a fresh database on ``pg_url``'s server, dropped after."""
    with fresh_database(pg_url) as database_url:
        yield DjangoFleet(database_url)
