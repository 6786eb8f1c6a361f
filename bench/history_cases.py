"""Issue 15, goal d: a streaming-history export against the same rows as table files.

Each repeat loads the export into a fresh tenant as ``load-fixtures T DIR --format
spotify-history -o user_id=<listener>`` does (``format`` and ``options`` of
``load_fixtures``), then its table-file twin (see :mod:`bench.history`) into another
fresh tenant, both timed, with the default parse workers. The first repeat also runs
``validate-data`` on both tenants and checks that every table the twin holds has the
same content checksum in both: the two loads wrote the same rows. The export's load
also recomputes the daily aggregates from its plays (a source load refreshes derived
tables; a table-file load takes rows as given), which is part of its time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.cases import HISTORY, HISTORY_TABLES, Case, Failures, Inputs
from bench.common import Measurement
from bench.cpu import median_cpu
from bench.database import BenchDatabase
from bench.dataset import MiB
from bench.history import ENTRIES_PER_FILE, TABLES, HistorySet
from bench.ours import LoadRun, OurLoader, manager_for

__all__ = ["history_cases", "run_history"]

FORMAT = "spotify-history"


@dataclass
class _Side:
    """One side of the comparison: its loader, how to load, what it measured."""

    loader: OurLoader
    measurement: Measurement
    source_format: str | None = None
    options: dict[str, Any] | None = None
    runs: list[LoadRun] = field(default_factory=list)

    async def load(self, db: BenchDatabase, tenant: str, rows: int) -> LoadRun:
        await db.settle()
        run = await self.loader.load(tenant, source_format=self.source_format, options=self.options)
        if run.rows != rows:
            raise RuntimeError(f"{tenant}: loaded {run.rows:,} rows, expected {rows:,}")
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


async def _same_rows(db: BenchDatabase, export: _Side, tables: _Side, tenants: list[str]) -> bool:
    """``validate-data`` on both tenants; whether the twin's tables match checksum for
    checksum (raises naming the tables that differ)."""
    await db.settle()
    loaded = await export.loader.validate(tenants[0])
    twin = await tables.loader.validate(tenants[1])
    differ = [t for t in TABLES if loaded.checksums.get(t) != twin.checksums.get(t)]
    if differ:
        raise RuntimeError(f"the export and its table files differ in {', '.join(differ)}")
    return True


async def _round(
    db: BenchDatabase, sides: tuple[_Side, _Side], run: int, rows: int, *, check: bool
) -> tuple[LoadRun, LoadRun, bool | None]:
    """Both loads of one repeat into fresh tenants; with ``check``, compare their rows."""
    tenants = [f"bench_history_{run}", f"bench_history_tables_{run}"]
    for side, tenant in zip(sides, tenants, strict=True):
        await side.loader.new_tenant(tenant)
    try:
        export = await sides[0].load(db, tenants[0], rows)
        tables = await sides[1].load(db, tenants[1], rows)
        return export, tables, (await _same_rows(db, *sides, tenants) if check else None)
    finally:
        for side, tenant in zip(sides, tenants, strict=True):
            await side.loader.drop(tenant)


def _measurements(history: HistorySet) -> tuple[Measurement, Measurement]:
    files = -(-history.entries // ENTRIES_PER_FILE)
    export = Measurement(
        f"ours: streaming-history export ({FORMAT}), new tenant",
        rows=history.total_rows,
        note=f"{history.entries:,} plays in {files} Streaming_History_Audio_*.json "
        f"({history.export_bytes / MiB:,.0f} MiB), --format {FORMAT} -o user_id=; "
        "daily aggregates recomputed",
    )
    tables = Measurement(
        "ours: the same rows as JSON Lines table files, new tenant",
        rows=history.total_rows,
        note=", ".join(f"{t} {n:,}" for t, n in history.rows.items()),
    )
    return export, tables


async def _run(
    db: BenchDatabase, history: HistorySet, repeats: int, failures: Failures
) -> tuple[_Side, _Side, bool | None, int]:
    """Both loads ``repeats`` times; the two sides, whether their rows matched (checked
    on the first repeat that ran), and the parse workers the loads used."""
    console = failures.console
    export_m, tables_m = _measurements(history)
    same: bool | None = None
    async with manager_for(db.dsn) as manager:
        export = _Side(
            OurLoader(manager, history.export),
            export_m,
            FORMAT,
            {"user_id": history.user_id},
        )
        tables = _Side(OurLoader(manager, history.tables), tables_m)
        for run in range(repeats):
            done = await failures.run(
                "streaming history",
                _round(db, (export, tables), run, history.total_rows, check=same is None),
            )
            if done is None:
                console.print(f"  run {run + 1}/{repeats}: failed")
                continue
            first, second, checked = done
            same = same if checked is None else checked
            console.print(
                f"  run {run + 1}/{repeats}: export {first.seconds:.2f}s, "
                f"table files {second.seconds:.2f}s"
                + (" (validate-data: the same checksums)" if checked else "")
            )
    return export, tables, same, manager.settings.workers_for_parsing


async def run_history(
    db: BenchDatabase, history: HistorySet, repeats: int, failures: Failures
) -> tuple[float, float]:
    """The median seconds of the export's load and of its table files' (``nan`` for a
    side none of whose runs succeeded)."""
    export, tables, _, _ = await _run(db, history, repeats, failures)

    def median(side: _Side) -> float:
        return side.measurement.median_seconds if side.measurement.seconds else float("nan")

    return median(export), median(tables)


async def history_cases(db: BenchDatabase, inputs: Inputs, failures: Failures) -> list[Case]:
    """The export and its table files, loaded in turn ``repeats`` times."""
    history = inputs.history
    export, tables, same, workers = await _run(db, history, inputs.config.repeats, failures)
    common = {
        "entries": history.entries,
        "export_bytes": history.export_bytes,
        "parse_workers": workers,
    }
    return [
        export.case(HISTORY, {**common, "format": FORMAT}),
        tables.case(HISTORY_TABLES, {**common, "rows_per_table": history.rows, "same_rows": same}),
    ]
