"""The benchmark's output: one Rich table, the targets of issue 5, and a JSON file.

Every ratio is "ours ÷ case" in rows per second (our in-process load of a new tenant
against the case), so it reads the way the targets are written: ``≥ 0.9x`` the limit,
``≥ 8x`` SQLAlchemy Core, ``≥ 200x`` Django.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.cases import (
    DJANGO,
    LIMIT_A,
    LIMIT_B,
    OURS,
    PROV_MANY,
    PROV_OURS,
    PROV_SQLITE,
    PROV_WARM,
    RSS_FULL,
    RSS_HALF,
    RSS_SINGLE,
    SQLA,
    STARTUP_IMPORT,
    UPSERT,
    Case,
)
from bench.dataset import MiB

__all__ = [
    "RESULTS_DIR",
    "Target",
    "evaluate_targets",
    "load_table",
    "stage_shares",
    "startup_table",
    "target_json",
    "targets_table",
    "throughput",
    "write_json",
]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Target:
    """One target (of issue 5, 12 or 15) against what this run measured."""

    name: str
    required: str
    measured: str
    passed: bool | None  # None: not measured in this run
    note: str = ""
    #: The measured ratio or value as a number, where there is one.
    value: float | None = None

    @property
    def verdict(self) -> str:
        return "n/a" if self.passed is None else ("PASS" if self.passed else "MISS")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def throughput(case: Case) -> float:
    """Rows (tenants) per second: per-tenant timings give 1 / p50, batches rows / median."""
    m = case.measurement
    if not m.seconds:
        return 0.0
    if case.extra.get("per_tenant"):
        return 1 / m.median_seconds
    return m.rows_per_second


def _ratio(ours: Case | None, case: Case) -> float | None:
    if (
        ours is None
        or case.group in ("provision", "migrate", "validate")
        or not case.measurement.rows_per_second
    ):
        return None
    return ours.measurement.rows_per_second / case.measurement.rows_per_second


def stage_shares(runs: Sequence[Mapping[str, float]]) -> dict[str, Any]:
    """Median seconds per stage over the runs, and each stage's share of ``total``."""
    names = [n for n in dict.fromkeys(k for run in runs for k in run) if n != "total"]
    medians = {n: statistics.median(run.get(n, 0.0) for run in runs) for n in names}
    total = statistics.median(run.get("total", 0.0) for run in runs) if runs else 0.0
    shares = {n: (v / total if total else 0.0) for n, v in medians.items()}
    validate = medians.get("validate")
    return {
        "median_seconds": medians,
        "median_total": total,
        "shares": shares,
        "validate_share": (validate / total) if validate is not None and total else None,
    }


def load_table(cases: Sequence[Case], *, title: str) -> Table:
    """The main table: rows, median, rows/s, ratio vs our load, notes."""
    by_key = {c.key: c for c in cases}
    ours = by_key.get(OURS)
    table = Table(title=title)
    table.add_column("case")
    table.add_column("rows", justify="right")
    table.add_column("median s", justify="right")
    table.add_column("rows/s", justify="right")
    table.add_column("ours ÷ case", justify="right")
    table.add_column("notes")
    for case in cases:
        m = case.measurement
        ratio = _ratio(ours, case)
        table.add_row(
            m.name,
            f"{m.rows:,}",
            f"{m.median_seconds:.4f}" if m.seconds else "—",
            f"{throughput(case):,.0f}" if m.seconds else "—",
            f"{ratio:.2f}x" if ratio is not None else "—",
            m.note,
        )
    return table


def startup_table(cases: Sequence[Case], *, title: str) -> Table:
    """Start-up paths: the work alone and the whole process (wall-clock and CPU medians,
    in ms), and the modules loaded."""
    table = Table(title=title)
    for column in ("path", "work", "work CPU", "process", "process CPU", "modules"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for case in cases:
        extra = case.extra
        table.add_row(
            case.measurement.name,
            f"{case.measurement.median_seconds * 1000:,.1f}",
            f"{extra['work_cpu_median_seconds'] * 1000:,.1f}",
            f"{extra['process_median_seconds'] * 1000:,.1f}",
            f"{extra['process_cpu_median_seconds'] * 1000:,.1f}",
            str(extra["modules"]),
        )
    return table


def targets_table(targets: Sequence[Target], *, title: str) -> Table:
    table = Table(title=title)
    for column in ("target", "required", "measured", "result", "note"):
        table.add_column(column)
    colour = {"PASS": "green", "MISS": "red", "n/a": "yellow"}
    for target in targets:
        verdict = target.verdict
        table.add_row(
            target.name,
            target.required,
            target.measured,
            f"[{colour[verdict]}]{verdict}[/]",
            target.note,
        )
    return table


def _speed_target(
    name: str, required: float, ours: Case | None, case: Case | None, *, note: str = ""
) -> Target:
    if ours is None or case is None or not case.measurement.rows_per_second:
        return Target(name, f"≥ {required:g}x", "not measured", None, note)
    ratio = ours.measurement.rows_per_second / case.measurement.rows_per_second
    return Target(name, f"≥ {required:g}x", f"{ratio:.2f}x", ratio >= required, note)


def evaluate_targets(cases: Sequence[Case], *, scale: str) -> list[Target]:
    """The targets section of issue 5, measured."""
    by_key = {c.key: c for c in cases}
    ours, upsert = by_key.get(OURS), by_key.get(UPSERT)
    partial = "" if scale == "full" else "small set; the README figure needs SCALE=full"
    targets = [
        _speed_target(
            "new tenant load vs limit (b) \\copy bare + constraints",
            0.9,
            ours,
            by_key.get(LIMIT_B),
            note=partial,
        ),
        _speed_target(
            "re-load (upsert) vs limit (a) \\copy into constrained tables",
            0.8,
            upsert,
            by_key.get(LIMIT_A),
            note="ratio here is re-load ÷ limit (a)",
        ),
        _speed_target(
            "vs Django loaddata",
            200,
            ours,
            by_key.get(DJANGO),
            note="" if DJANGO in by_key else "django baseline not available",
        ),
        _speed_target("vs SQLAlchemy Core executemany", 8, ours, by_key.get(SQLA)),
    ]
    half, full = by_key.get(RSS_HALF), by_key.get(RSS_FULL)
    if full is not None and full.measurement.peak_rss_bytes is not None:
        peak = full.measurement.peak_rss_bytes / MiB
        size = full.extra.get("file_bytes", 0) / MiB
        targets.append(
            Target(
                "peak RSS of the loader on the big JSON Lines file",
                "≤ 100 MiB",
                f"{peak:,.1f} MiB at {size:,.0f} MiB",
                peak <= 100,
                "default settings: the loader and its parse workers, summed"
                + ("" if size >= 1000 else "; small file, the 1 GiB figure needs SCALE=full"),
            )
        )
        single = by_key.get(RSS_SINGLE)
        if single is not None and single.measurement.peak_rss_bytes is not None:
            alone = single.measurement.peak_rss_bytes / MiB
            targets.append(
                Target(
                    "peak RSS, parsing in-process (TENANCY_PARSE_WORKERS=0)",
                    "≤ 100 MiB",
                    f"{alone:,.1f} MiB at {size:,.0f} MiB",
                    alone <= 100,
                    "one process",
                )
            )
        if half is not None and half.measurement.peak_rss_bytes is not None:
            half_peak = half.measurement.peak_rss_bytes / MiB
            targets.append(
                Target(
                    "peak RSS flat as the file doubles",
                    "full ≤ 1.10 x half",
                    f"{half_peak:,.1f} → {peak:,.1f} MiB ({peak / half_peak:.2f}x)",
                    peak <= 1.10 * half_peak,
                )
            )
    else:
        targets.append(
            Target("peak RSS of the loader on the big JSON Lines file", "≤ 100 MiB", "—", None)
        )
    prov = by_key.get(PROV_OURS)
    if prov is not None:
        p50 = prov.measurement.percentile_seconds(50)
        targets.append(
            Target(
                "provision one PostgreSQL tenant, cold, p50",
                "≤ 20 ms",
                _ms(p50),
                p50 <= 0.020,
                f"p95 {_ms(prov.measurement.percentile_seconds(95))}",
            )
        )
    else:
        targets.append(
            Target("provision one PostgreSQL tenant, cold, p50", "≤ 20 ms", "failed", None)
        )
    warm = by_key.get(PROV_WARM)
    if warm is not None:
        p50 = warm.measurement.percentile_seconds(50)
        targets.append(
            Target(
                "provision from a warm pool of pre-created schemas, p50",
                "≤ 5 ms",
                _ms(p50),
                p50 <= 0.005,
                f"p95 {_ms(warm.measurement.percentile_seconds(95))}",
            )
        )
    else:
        targets.append(
            Target(
                "provision from a warm pool of pre-created schemas, p50", "≤ 5 ms", "failed", None
            )
        )
    many = by_key.get(PROV_MANY)
    if many is not None:
        n = many.measurement.rows
        wall = many.measurement.median_seconds
        projected = wall * 1000 / n
        targets.append(
            Target(
                "1,000 tenants, concurrency 10",
                "≤ 30 s",
                f"{projected:.1f} s" + ("" if n == 1000 else f" (from {n:,} in {wall:.1f} s)"),
                projected <= 30,
                "" if n == 1000 else "extrapolated linearly",
            )
        )
    else:
        targets.append(Target("1,000 tenants, concurrency 10", "≤ 30 s", "failed", None))
    sqlite = by_key.get(PROV_SQLITE)
    if sqlite is not None:
        p50 = sqlite.measurement.percentile_seconds(50)
        targets.append(Target("provision one SQLite tenant, p50", "≤ 5 ms", _ms(p50), p50 <= 0.005))
    else:
        targets.append(Target("provision one SQLite tenant, p50", "≤ 5 ms", "failed", None))
    targets.append(_import_target(by_key.get(STARTUP_IMPORT)))
    return targets


def _import_target(case: Case | None) -> Target:
    name = "import tenancy_fixtures (issue 10), median"
    if case is None:
        return Target(name, "< 150 ms", "failed", None)
    median = case.measurement.median_seconds
    return Target(
        name,
        "< 150 ms",
        _ms(median),
        median < 0.150,
        f"{case.extra['modules']} modules; the whole process "
        f"{_ms(case.extra['process_median_seconds'])}",
    )


def _case_json(case: Case, ours: Case | None) -> dict[str, Any]:
    m = case.measurement
    return {
        "key": case.key,
        "name": m.name,
        "group": case.group,
        "rows": m.rows,
        "seconds": m.seconds,
        "median_seconds": m.median_seconds if m.seconds else None,
        "p95_seconds": m.percentile_seconds(95) if m.seconds else None,
        "rows_per_second": throughput(case),
        "ours_over_case": _ratio(ours, case),
        "peak_rss_bytes": m.peak_rss_bytes,
        "note": m.note,
        **({"extra": case.extra} if case.extra else {}),
    }


def target_json(target: Target) -> dict[str, Any]:
    """One target as the JSON file records it."""
    return {
        "name": target.name,
        "required": target.required,
        "measured": target.measured,
        "value": target.value,
        "result": target.verdict,
        "note": target.note,
    }


def write_json(
    scale: str,
    started: datetime,
    cases: Sequence[Case],
    targets: Sequence[Target],
    context: Mapping[str, Any],
) -> Path:
    """Write the run's figures to ``bench/results/bench-<scale>-<timestamp>.json``."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"bench-{scale}-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    ours = next((c for c in cases if c.key == OURS), None)
    document = {
        "scale": scale,
        "started_at": started.isoformat(),
        **context,
        "cases": [_case_json(c, ours) for c in cases],
        "targets": [target_json(t) for t in targets],
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    return path
