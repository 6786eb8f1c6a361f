"""Issue 15, "Load at the limit": its targets, one row per goal, and where the CPU goes.

The goals, measured in the same run on the same rows, every validation rule and
checksum on:

(a) a new tenant's load ≥ 0.9x limit (b) (``\\copy`` into bare tables, then the keys);
(b) a re-load into the populated tenant ≥ 1.5x limit (a) (``\\copy`` into the
    constrained tables);
(c) the peak RSS of the loader and its parse workers together ≤ 128 MiB on a 1 GiB
    JSON Lines file, at the default worker count, and flat as the file doubles
    (512 MiB → 1 GiB: at most 1.10x);
(d) a streaming-history export ≥ 0.5x the same rows as table files;
(e) ``validate-data`` of the new tenant ≤ 0.25x the time its load took;
(f) the generator's peak memory flat in ``--scale`` (largest scale at most 1.10x the
    smallest), read from the run's ``generator_memory`` results: a list of
    ``{"scale": ..., "peak_rss_bytes": ...}``, one per scale measured.

:func:`cpu_table` shows CPU seconds by process (the loader, each parse worker,
PostgreSQL) and how the new-tenant load scales with parse workers (0, 1, default).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table

from bench.cases import (
    HISTORY,
    HISTORY_TABLES,
    HISTORY_TENANT,
    LIMIT_A,
    LIMIT_B,
    OURS,
    OURS_ONE_WORKER,
    OURS_SINGLE,
    RSS_FULL,
    RSS_HALF,
    UPSERT,
    VALIDATE,
    Case,
)
from bench.dataset import MiB
from bench.report import Target, throughput

__all__ = ["RSS_LIMIT_MIB", "cpu_table", "issue15_targets", "scaling"]

RSS_LIMIT_MIB = 128
#: How much a peak may grow while its input doubles (file) or grows (scale) and still
#: count as flat.
FLAT = 1.10
_FULL_HISTORY = 1_000_000
_GIB = 1024 * MiB


def _speed(
    name: str, required: float, ours: Case | None, base: Case | None, note: str = ""
) -> Target:
    """Rows per second of ``ours`` over ``base``, at least ``required``."""
    if ours is None or base is None or not ours.measurement.seconds or not base.measurement.seconds:
        return Target(name, f"≥ {required:g}x", "not measured", None, note)
    ratio = throughput(ours) / throughput(base)
    return Target(name, f"≥ {required:g}x", f"{ratio:.2f}x", ratio >= required, note, ratio)


def _memory(half: Case | None, full: Case | None, scale_note: str) -> Target:
    name = "(c) peak RSS, loader + parse workers, on 1 GiB JSON Lines; flat as it doubles"
    required = f"≤ {RSS_LIMIT_MIB} MiB; ≤ {FLAT:.2f}x from 512 MiB"
    peaks = [c.measurement.peak_rss_bytes if c is not None else None for c in (half, full)]
    if half is None or full is None or peaks[0] is None or peaks[1] is None:
        return Target(name, required, "not measured", None)
    low, high = peaks[0] / MiB, peaks[1] / MiB
    sizes = [c.extra.get("file_bytes", 0) / MiB for c in (half, full)]
    processes = full.extra.get("peak_processes")
    workers = full.extra.get("parse_workers")
    note = f"default settings ({workers} parse workers; {processes} process(es) at most)"
    if full.extra.get("file_bytes", 0) < _GIB * 0.99:
        note += f"; {scale_note}"
    return Target(
        name,
        required,
        f"{low:,.1f} MiB at {sizes[0]:,.0f} MiB → {high:,.1f} MiB at {sizes[1]:,.0f} MiB "
        f"({high / low:.2f}x)",
        max(low, high) <= RSS_LIMIT_MIB and high <= FLAT * low,
        note,
        high,
    )


def _history(
    export: Case | None, tenant: Case | None, tables: Case | None, scale_note: str
) -> Target:
    """Goal d: the export against the table files that leave the same tenant (its
    daily aggregates included); the twin of the staged rows alone is noted."""
    target = _speed(
        "(d) streaming-history export vs the same rows as table files", 0.5, export, tenant
    )
    notes = []
    if export is not None and tables is not None and tables.measurement.seconds:
        alone = tables.measurement.median_seconds / export.measurement.median_seconds
        notes.append(f"{alone:.2f}x against the staged rows alone, without the aggregates")
    if export is not None:
        entries = export.extra.get("entries", 0)
        notes.append(f"{entries:,} plays")
        if entries < _FULL_HISTORY:
            notes.append(scale_note)
    if tenant is not None and tenant.extra.get("same_rows") is not True:
        notes.append("the same rows not confirmed (validate-data checksums)")
    return Target(
        target.name, target.required, target.measured, target.passed, "; ".join(notes), target.value
    )


def _validate(validate: Case | None, load: Case | None) -> Target:
    name = "(e) validate-data of the new tenant vs its load time"
    if validate is None or load is None or not validate.measurement.seconds:
        return Target(name, "≤ 0.25x", "not measured", None)
    checked, loaded = validate.measurement.median_seconds, load.measurement.median_seconds
    ratio = checked / loaded
    return Target(
        name,
        "≤ 0.25x",
        f"{ratio:.2f}x ({checked:.2f} s of {loaded:.2f} s)",
        ratio <= 0.25,
        "medians of the same runs; every check, checksums from write stamps where "
        "PostgreSQL shows the rows are the load's",
        ratio,
    )


def _generator(results: Sequence[Mapping[str, Any]] | None) -> Target:
    name = "(f) generator peak memory flat in --scale"
    required = f"largest scale ≤ {FLAT:.2f}x smallest"
    if not results:
        return Target(name, required, "not measured", None, "no generator_memory results")
    measured = sorted(
        (r for r in results if r.get("peak_rss_bytes") is not None), key=lambda r: r["scale"]
    )
    if len(measured) < 2:
        return Target(name, required, "not measured", None, "fewer than two scales measured")
    low, high = measured[0], measured[-1]
    ratio = high["peak_rss_bytes"] / low["peak_rss_bytes"]
    return Target(
        name,
        required,
        f"{low['peak_rss_bytes'] / MiB:,.1f} MiB at {low['scale']} → "
        f"{high['peak_rss_bytes'] / MiB:,.1f} MiB at {high['scale']} ({ratio:.2f}x)",
        ratio <= FLAT,
        ", ".join(f"{r['scale']}: {r['peak_rss_bytes'] / MiB:,.1f} MiB" for r in measured),
        ratio,
    )


def issue15_targets(
    cases: Sequence[Case],
    *,
    scale: str,
    generator_memory: Sequence[Mapping[str, Any]] | None = None,
) -> list[Target]:
    """One row per goal of issue 15, measured in this run."""
    by_key = {c.key: c for c in cases}
    scale_note = "" if scale == "full" else "small set; the README figure needs SCALE=full"
    return [
        _speed(
            "(a) new tenant load vs limit (b) \\copy bare + constraints",
            0.9,
            by_key.get(OURS),
            by_key.get(LIMIT_B),
            scale_note,
        ),
        _speed(
            "(b) re-load into the populated tenant vs limit (a) \\copy constrained",
            1.5,
            by_key.get(UPSERT),
            by_key.get(LIMIT_A),
            scale_note,
        ),
        _memory(by_key.get(RSS_HALF), by_key.get(RSS_FULL), scale_note),
        _history(
            by_key.get(HISTORY), by_key.get(HISTORY_TENANT), by_key.get(HISTORY_TABLES), scale_note
        ),
        _validate(by_key.get(VALIDATE), by_key.get(OURS)),
        _generator(generator_memory),
    ]


_SCALING = (OURS_SINGLE, OURS_ONE_WORKER, OURS)
_CPU_CASES = (*_SCALING, HISTORY, HISTORY_TENANT, HISTORY_TABLES)


def scaling(cases: Sequence[Case]) -> list[dict[str, Any]]:
    """The new-tenant load with 0, 1 and the default number of parse workers: median
    seconds, rows per second, speed-up over in-process, CPU seconds by process."""
    by_key = {c.key: c for c in cases}
    alone = by_key.get(OURS_SINGLE)
    rows = []
    for key in _SCALING:
        case = by_key.get(key)
        if case is None or not case.measurement.seconds:
            continue
        median = case.measurement.median_seconds
        rows.append(
            {
                "key": key,
                "parse_workers": case.extra.get("parse_workers"),
                "median_seconds": median,
                "rows_per_second": throughput(case),
                "speedup_over_in_process": (
                    alone.measurement.median_seconds / median
                    if alone is not None and alone.measurement.seconds
                    else None
                ),
                "cpu_median_seconds": case.extra.get("cpu_median_seconds"),
            }
        )
    return rows


def _cpu_cells(cpu: Mapping[str, Any] | None) -> list[str]:
    if not cpu:
        return ["—"] * 4
    each = [s for s in cpu.get("workers_each", []) if s >= 0.005]
    server = cpu.get("postgres")
    total = cpu["loader"] + cpu["workers"] + (server or 0.0)
    return [
        f"{cpu['loader']:.2f}",
        " + ".join(f"{s:.2f}" for s in each) or "—",
        "—" if server is None else f"{server:.2f}",
        f"{total:.2f}",
    ]


def cpu_table(cases: Sequence[Case], *, title: str) -> Table:
    """CPU seconds by process (medians) for our loads, and the speed-up parse workers
    give the new-tenant load over parsing in-process."""
    by_key = {c.key: c for c in cases}
    speedups = {row["key"]: row["speedup_over_in_process"] for row in scaling(cases)}
    table = Table(title=title)
    table.add_column("case")
    for column in ("workers", "wall s", "rows/s", "vs in-process"):
        table.add_column(column, justify="right")
    for column in ("loader CPU s", "each worker CPU s", "PostgreSQL CPU s", "CPU s in all"):
        table.add_column(column, justify="right")
    for key in _CPU_CASES:
        case = by_key.get(key)
        if case is None or not case.measurement.seconds:
            continue
        workers = case.extra.get("parse_workers")
        speedup = speedups.get(key)
        table.add_row(
            case.measurement.name,
            "default" if workers is None else str(workers),
            f"{case.measurement.median_seconds:.2f}",
            f"{throughput(case):,.0f}",
            "—" if speedup is None else f"{speedup:.2f}x",
            *_cpu_cells(case.extra.get("cpu_median_seconds")),
        )
    return table
