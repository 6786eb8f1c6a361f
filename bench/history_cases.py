"""Issue 15, goal d: a streaming-history export against the same rows as table files.

Each repeat loads the export into a fresh tenant as ``load-fixtures T DIR --format
spotify-history -o user_id=<listener>`` does (``format`` and ``options`` of
``load_fixtures``), then its two table-file twins (see :mod:`bench.history`) into
fresh tenants of their own, each timed, with the default parse workers. The export's
load also computes the daily aggregates of its plays (a source load refreshes derived
tables; a table-file load takes rows as given): the ``tenant`` twin holds them too, so
it leaves the same tenant as the export (the goal's "same rows"); the ``tables`` twin
holds only the rows the format stages. The first repeat also runs ``validate-data`` on
the three tenants and checks that each twin's tables have the same content checksums
as the export's tenant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.cases import HISTORY, HISTORY_TABLES, HISTORY_TENANT, Case, Failures, Inputs
from bench.common import Measurement
from bench.cpu import median_cpu
from bench.database import BenchDatabase
from bench.dataset import MiB
from bench.history import DERIVED_TABLES, ENTRIES_PER_FILE, TABLES, HistorySet
from bench.ours import LoadRun, OurLoader, manager_for

__all__ = ["history_cases", "run_history"]

FORMAT = "spotify-history"


@dataclass
class _Side:
    """One side of the comparison: its loader, how to load, what it measured."""

    loader: OurLoader
    measurement: Measurement
    #: The rows the load reports: data rows, and rows of the daily aggregates (computed
    #: or given), which a report counts apart.
    rows: int
    derived: int
    #: The tables whose content must match the export's tenant.
    tables: tuple[str, ...]
    source_format: str | None = None
    options: dict[str, Any] | None = None
    runs: list[LoadRun] = field(default_factory=list)

    async def load(self, db: BenchDatabase, tenant: str) -> LoadRun:
        await db.settle()
        run = await self.loader.load(tenant, source_format=self.source_format, options=self.options)
        if (run.rows, run.derived_rows) != (self.rows, self.derived):
            raise RuntimeError(
                f"{tenant}: loaded {run.rows:,} rows and {run.derived_rows:,} of aggregates, "
                f"expected {self.rows:,} and {self.derived:,}"
            )
        self.measurement.seconds.append(run.seconds)
        self.runs.append(run)
        return run

    def case(self, key: str, extra: dict[str, Any]) -> Case:
        cpu = median_cpu([r.cpu for r in self.runs if r.cpu is not None])
        return Case(
            key,
            self.measurement,
            "load",
            {
                "stages": [dict(r.stages) for r in self.runs],
                "cpu_median_seconds": cpu,
                "derived_rows": [r.derived_rows for r in self.runs],
                **extra,
            },
        )


async def _same_rows(db: BenchDatabase, sides: tuple[_Side, ...], tenants: list[str]) -> bool:
    """``validate-data`` on every tenant; whether each twin's tables match the export's
    tenant checksum for checksum (raises naming the tables that differ)."""
    await db.settle()
    loaded = await sides[0].loader.validate(tenants[0])
    for side, tenant in zip(sides[1:], tenants[1:], strict=True):
        twin = await side.loader.validate(tenant)
        differ = [t for t in side.tables if loaded.checksums.get(t) != twin.checksums.get(t)]
        if differ:
            raise RuntimeError(
                f"the export and {side.loader.set_dir.name} differ in {', '.join(differ)}"
            )
    return True


async def _round(
    db: BenchDatabase, sides: tuple[_Side, ...], run: int, *, check: bool
) -> tuple[list[LoadRun], bool | None]:
    """Every side's load of one repeat into fresh tenants; with ``check``, compare their
    rows."""
    tenants = [f"bench_history_{n}_{run}" for n in range(len(sides))]
    for side, tenant in zip(sides, tenants, strict=True):
        await side.loader.new_tenant(tenant)
    try:
        loads = [await side.load(db, tenant) for side, tenant in zip(sides, tenants, strict=True)]
        return loads, (await _same_rows(db, sides, tenants) if check else None)
    finally:
        for side, tenant in zip(sides, tenants, strict=True):
            await side.loader.drop(tenant)


def _sides(manager: Any, history: HistorySet) -> tuple[_Side, _Side, _Side]:
    """The export, its twin of the staged rows, its twin of the whole tenant."""
    derived = sum(history.derived_rows.values())
    files = -(-history.entries // ENTRIES_PER_FILE)
    export = Measurement(
        f"ours: streaming-history export ({FORMAT}), new tenant",
        rows=history.tenant_rows,
        note=f"{history.entries:,} plays in {files} Streaming_History_Audio_*.json "
        f"({history.export_bytes / MiB:,.0f} MiB), --format {FORMAT} -o user_id=; "
        "daily aggregates computed by the load",
    )
    tables = Measurement(
        "ours: the staged rows as JSON Lines table files (no aggregates), new tenant",
        rows=history.total_rows,
        note=", ".join(f"{t} {n:,}" for t, n in history.rows.items()),
    )
    tenant = Measurement(
        "ours: the same tenant as JSON Lines table files (with the aggregates), new tenant",
        rows=history.tenant_rows,
        note=", ".join(f"{t} {n:,}" for t, n in history.derived_rows.items()) + " besides",
    )
    return (
        _Side(
            OurLoader(manager, history.export),
            export,
            history.total_rows,
            derived,
            (*TABLES, *DERIVED_TABLES),
            FORMAT,
            {"user_id": history.user_id},
        ),
        _Side(OurLoader(manager, history.tables), tables, history.total_rows, 0, TABLES),
        _Side(
            OurLoader(manager, history.tenant),
            tenant,
            history.total_rows,
            derived,
            (*TABLES, *DERIVED_TABLES),
        ),
    )


async def _run(
    db: BenchDatabase, history: HistorySet, repeats: int, failures: Failures
) -> tuple[tuple[_Side, _Side, _Side], bool | None, int]:
    """Every load ``repeats`` times; the sides, whether their rows matched (checked on
    the first repeat that ran), and the parse workers the loads used."""
    console = failures.console
    same: bool | None = None
    async with manager_for(db.dsn) as manager:
        sides = _sides(manager, history)
        for run in range(repeats):
            done = await failures.run(
                "streaming history", _round(db, sides, run, check=same is None)
            )
            if done is None:
                console.print(f"  run {run + 1}/{repeats}: failed")
                continue
            (export, tables, tenant), checked = done
            same = same if checked is None else checked
            console.print(
                f"  run {run + 1}/{repeats}: export {export.seconds:.2f}s, table files "
                f"{tables.seconds:.2f}s, with the aggregates {tenant.seconds:.2f}s"
                + (" (validate-data: the same checksums)" if checked else "")
            )
    return sides, same, manager.settings.workers_for_parsing


async def run_history(
    db: BenchDatabase, history: HistorySet, repeats: int, failures: Failures
) -> tuple[float, float, float]:
    """The median seconds of the export's load, of its staged rows' table files' and
    of the whole tenant's table files' (``nan`` for a side none of whose runs
    succeeded)."""
    sides, _, _ = await _run(db, history, repeats, failures)

    def median(side: _Side) -> float:
        return side.measurement.median_seconds if side.measurement.seconds else float("nan")

    export, tables, tenant = sides
    return median(export), median(tables), median(tenant)


async def history_cases(db: BenchDatabase, inputs: Inputs, failures: Failures) -> list[Case]:
    """The export and its table-file twins, loaded in turn ``repeats`` times."""
    history = inputs.history
    (export, tables, tenant), same, workers = await _run(
        db, history, inputs.config.repeats, failures
    )
    common = {
        "entries": history.entries,
        "export_bytes": history.export_bytes,
        "parse_workers": workers,
    }
    return [
        export.case(HISTORY, {**common, "format": FORMAT}),
        tables.case(HISTORY_TABLES, {**common, "rows_per_table": history.rows, "same_rows": same}),
        tenant.case(
            HISTORY_TENANT,
            {
                **common,
                "rows_per_table": {**history.rows, **history.derived_rows},
                "same_rows": same,
            },
        ),
    ]
