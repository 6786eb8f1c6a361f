"""What the cases share: their inputs, their keys and the record each one produces."""

from __future__ import annotations

import traceback
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rich.console import Console

from bench.common import Measurement
from bench.dataset import CsvSet, Dataset, ScaleConfig
from bench.history import HistorySet
from bench.rss import BigSet

__all__ = [
    "CLI",
    "DJANGO",
    "HISTORY",
    "HISTORY_TABLES",
    "HISTORY_TENANT",
    "LIMIT_A",
    "LIMIT_B",
    "OURS",
    "OURS_ONE_WORKER",
    "OURS_SINGLE",
    "PROV_DJANGO",
    "PROV_MANY",
    "PROV_OURS",
    "PROV_RAW",
    "PROV_SQLITE",
    "PROV_WARM",
    "RSS_FULL",
    "RSS_HALF",
    "RSS_SINGLE",
    "SQLA",
    "STARTUP_IMPORT",
    "UPSERT",
    "VALIDATE",
    "Case",
    "Failures",
    "Inputs",
]

T = TypeVar("T")

# Keys of the cases the targets refer to.
OURS = "ours_load"
OURS_SINGLE = "ours_load_one_process"
OURS_ONE_WORKER = "ours_load_one_worker"
VALIDATE = "ours_validate_data"
VALIDATE_RECOMPUTED = "ours_validate_data_recomputed"
HISTORY = "ours_history_export"
HISTORY_TABLES = "ours_history_as_tables"
HISTORY_TENANT = "ours_history_as_tenant"
LIMIT_A = "limit_a"
LIMIT_B = "limit_b"
UPSERT = "ours_reload_upsert"
SQLA = "sqlalchemy_core"
DJANGO = "django_loaddata"
CLI = "ours_cli"
RSS_HALF = "rss_half"
RSS_FULL = "rss_full"
RSS_SINGLE = "rss_full_in_process"
PROV_OURS = "provision_ours_pg"
PROV_RAW = "provision_raw_ddl"
PROV_SQLITE = "provision_ours_sqlite"
PROV_WARM = "provision_ours_warm_pool"
PROV_MANY = "provision_ours_concurrent"
PROV_DJANGO = "provision_django_tenants"
STARTUP_IMPORT = "startup_import"


@dataclass
class Case:
    """One row of the table: a measurement and how to read it."""

    key: str
    measurement: Measurement
    group: str  # "load", "validate", "memory", "provision", "startup" or "migrate"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Inputs:
    """Everything prepared before the database is touched."""

    config: ScaleConfig
    dataset: Dataset
    csv_set: CsvSet
    half: BigSet
    full: BigSet
    history: HistorySet


@dataclass
class Failures:
    """Cases that failed: reported and recorded, while the other cases go on.

    Each case is a unit of its own, so one failing (say, a library change under way
    elsewhere) costs that case's row, not the whole run.
    """

    console: Console
    items: list[dict[str, str]] = field(default_factory=list)

    async def run(self, name: str, work: Awaitable[T]) -> T | None:
        """``await work``; on an exception print it, record it and return ``None``."""
        try:
            return await work
        except Exception as exc:
            self.console.print(f"  {name} failed: {exc!r}", markup=False, highlight=False)
            self.items.append(
                {"case": name, "error": repr(exc), "traceback": traceback.format_exc()}
            )
            return None
