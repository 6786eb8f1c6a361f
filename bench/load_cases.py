"""The load cases, round-robin, then our CLI end to end and its peak RSS.

Each repeat runs limit (a), limit (b), ours into a new tenant, ``validate-data`` of
that tenant, ours again into it now populated (``force=True``), ours parsing
in-process, ours with one parse worker and SQLAlchemy Core, in that order, so drift on
the machine hits every case alike; a CHECKPOINT before each timed run keeps one case's
dirty buffers off the next one's bill. A case that fails is reported and skipped; the
others go on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from bench.cases import (
    CLI,
    LIMIT_A,
    LIMIT_B,
    OURS,
    OURS_ONE_WORKER,
    OURS_SINGLE,
    RSS_FULL,
    RSS_HALF,
    RSS_SINGLE,
    SQLA,
    UPSERT,
    VALIDATE,
    VALIDATE_RECOMPUTED,
    Case,
    Failures,
    Inputs,
)
from bench.common import Measurement
from bench.cpu import median_cpu
from bench.database import BenchDatabase
from bench.dataset import MiB
from bench.limits import CopyLimits, constraint_ddl
from bench.ours import CliRun, LoadRun, OurLoader, ValidateRun, cli_load, manager_for
from bench.report import stage_shares
from bench.sqlalchemy_core import BATCH_SIZE, CoreInserts
from tenancy_fixtures.spotify.schema import spotify_metadata

__all__ = ["cli_cases", "load_cases"]


def _mib(value: int | None) -> str:
    return "—" if value is None else f"{value / MiB:,.1f} MiB"


def _share_note(shares: dict[str, Any]) -> str:
    parts = [f"{name} {share:.0%}" for name, share in shares["shares"].items()]
    return "stage ÷ load time (stages nest and overlap): " + ", ".join(parts)


def _processes(count: int) -> str:
    return f"{count} process" + ("" if count == 1 else "es")


def _seconds(value: float | None) -> str:
    return "failed" if value is None else f"{value:.2f}s"


@dataclass(frozen=True)
class _OursRound:
    """Ours in one round: the new-tenant load, its validation, the re-load."""

    first: LoadRun
    validated: ValidateRun | None
    recomputed: ValidateRun | None
    again: LoadRun | None


async def _ours(
    db: BenchDatabase, loader: OurLoader, tenant: str, total: int, failures: Failures
) -> _OursRound:
    """A fresh tenant, loaded (timed), validated as ``validate-data`` does and with
    ``--recompute-checksums`` (each timed), then loaded again with ``force`` (timed)."""
    await loader.new_tenant(tenant)
    try:
        await db.settle()
        first = await loader.load(tenant)
        if first.rows != total:
            raise RuntimeError(f"ours loaded {first.rows:,} rows, the set has {total:,}")
        await db.settle()
        validated = await failures.run("validate-data", loader.validate(tenant))
        await db.settle()
        recomputed = await failures.run(
            "validate-data --recompute-checksums", loader.validate(tenant, recompute=True)
        )
        await db.settle()
        again = await failures.run("ours re-load", loader.load(tenant, force=True))
        return _OursRound(first, validated, recomputed, again)
    finally:
        await loader.drop(tenant)


async def _fresh(
    db: BenchDatabase, loader: OurLoader, tenant: str, total: int, label: str
) -> LoadRun:
    """A fresh tenant loaded (timed) by ``loader``'s manager."""
    await loader.new_tenant(tenant)
    try:
        await db.settle()
        run = await loader.load(tenant)
        if run.rows != total:
            raise RuntimeError(f"ours ({label}) loaded {run.rows:,} rows, the set has {total:,}")
        return run
    finally:
        await loader.drop(tenant)


def _over(measured: Measurement, load: Measurement) -> float | None:
    """``measured``'s median time over ``load``'s, when both were measured."""
    if not measured.seconds or not load.seconds:
        return None
    return measured.median_seconds / load.median_seconds


def _cpu_medians(runs: list[LoadRun]) -> dict[str, Any] | None:
    """Median CPU seconds per party over ``runs`` (see :func:`bench.cpu.median_cpu`)."""
    return median_cpu([r.cpu for r in runs if r.cpu is not None])


async def _core(core: CoreInserts, run: int, total: int) -> float:
    seconds, rows = await core.run(run)
    if rows != total:
        raise RuntimeError(f"SQLAlchemy Core loaded {rows:,} rows, the set has {total:,}")
    return seconds


def _measurements(total: int, limits: CopyLimits, metadata: Any) -> dict[str, Measurement]:
    """The empty measurements of :func:`load_cases`, by case key."""
    return {
        LIMIT_A: Measurement(
            "limit (a): psql \\copy into constrained tables",
            rows=limits.rows,
            note="CSV, FK order, one transaction, fresh schema per run",
        ),
        LIMIT_B: Measurement(
            "limit (b): \\copy into bare tables + constraints",
            rows=limits.rows,
            note=f"then {len(constraint_ddl(metadata, 'x'))} ADD CONSTRAINT / CREATE INDEX, "
            "same transaction",
        ),
        OURS: Measurement("ours: load_fixtures, new tenant", rows=total),
        OURS_SINGLE: Measurement(
            "ours: load_fixtures, new tenant, TENANCY_PARSE_WORKERS=0",
            rows=total,
            note="the same load parsed in the loading process alone",
        ),
        OURS_ONE_WORKER: Measurement(
            "ours: load_fixtures, new tenant, TENANCY_PARSE_WORKERS=1",
            rows=total,
            note="the same load with one parse worker",
        ),
        VALIDATE: Measurement(
            "ours: validate-data of the new tenant",
            rows=total,
            note="validate_tenant(record=True), as the CLI runs it: every check; checksums "
            "from write stamps where PostgreSQL shows the rows are the load's",
        ),
        VALIDATE_RECOMPUTED: Measurement(
            "ours: validate-data --recompute-checksums",
            rows=total,
            note="validate_tenant(record=True, recompute_checksums=True): every table read "
            "and hashed again",
        ),
        UPSERT: Measurement(
            "ours: re-load into populated tenant (force)",
            rows=total,
            note="load_fixtures(force=True), the same rows again: upserted (unchanged rows "
            "are found so, not rewritten)",
        ),
        SQLA: Measurement(
            "SQLAlchemy Core insert() executemany",
            rows=total,
            note=f"asyncpg, batches of {BATCH_SIZE}, stdlib readers, one transaction",
        ),
    }


@dataclass
class _Runs:
    """What the rounds of :func:`load_cases` produced, beyond the seconds."""

    firsts: list[LoadRun] = field(default_factory=list)
    singles: list[LoadRun] = field(default_factory=list)
    one_workers: list[LoadRun] = field(default_factory=list)
    validations: list[ValidateRun] = field(default_factory=list)
    recomputations: list[ValidateRun] = field(default_factory=list)


def _record(
    measurements: dict[str, Measurement],
    runs: _Runs,
    timed: dict[str, float | None],
    loads: dict[str, LoadRun | None],
    ours: _OursRound | None,
) -> None:
    """Add one round's figures to the measurements."""
    for key, seconds in timed.items():
        if seconds is not None:
            measurements[key].seconds.append(seconds)
    for key, kept in ((OURS_SINGLE, runs.singles), (OURS_ONE_WORKER, runs.one_workers)):
        run = loads[key]
        if run is not None:
            measurements[key].seconds.append(run.seconds)
            kept.append(run)
    if ours is None:
        return
    measurements[OURS].seconds.append(ours.first.seconds)
    runs.firsts.append(ours.first)
    for key, validation, kept in (
        (VALIDATE, ours.validated, runs.validations),
        (VALIDATE_RECOMPUTED, ours.recomputed, runs.recomputations),
    ):
        if validation is not None:
            measurements[key].seconds.append(validation.seconds)
            measurements[key].rows = validation.rows
            kept.append(validation)
    if ours.again is not None:
        measurements[UPSERT].seconds.append(ours.again.seconds)
        measurements[UPSERT].rows = ours.again.rows


def _round_line(
    run: int,
    repeats: int,
    timed: dict[str, float | None],
    loads: dict[str, LoadRun | None],
    ours: _OursRound | None,
) -> str:
    def of(value: LoadRun | ValidateRun | None) -> str:
        return _seconds(value.seconds if value is not None else None)

    return (
        f"  run {run + 1}/{repeats}: limit (a) {_seconds(timed[LIMIT_A])}, "
        f"limit (b) {_seconds(timed[LIMIT_B])}, "
        f"ours {of(ours.first if ours else None)}, "
        f"validate-data {of(ours.validated if ours else None)} "
        f"(recomputing {of(ours.recomputed if ours else None)}), "
        f"re-load {of(ours.again if ours else None)}, "
        f"one process {of(loads[OURS_SINGLE])}, one worker {of(loads[OURS_ONE_WORKER])}, "
        f"SQLAlchemy Core {_seconds(timed[SQLA])}"
    )


async def load_cases(db: BenchDatabase, inputs: Inputs, failures: Failures) -> list[Case]:
    """Limits (a) and (b), ours (new tenant, validated, re-loaded; with 0 and 1 parse
    workers), SQLAlchemy Core: ``repeats`` rounds."""
    config, dataset, console = inputs.config, inputs.dataset, failures.console
    metadata = spotify_metadata()
    total = dataset.total_rows
    limits = CopyLimits(db, inputs.csv_set, metadata, work=dataset.root / "sql")
    core = CoreInserts(db, dataset, metadata)
    measurements = _measurements(total, limits, metadata)
    runs = _Runs()
    async with (
        manager_for(db.dsn) as manager,
        manager_for(db.dsn, parse_workers=0) as alone,
        manager_for(db.dsn, parse_workers=1) as one,
    ):
        default_workers = manager.settings.workers_for_parsing
        loader = OurLoader(manager, dataset.directory)
        one_process = OurLoader(alone, dataset.directory)
        one_worker = OurLoader(one, dataset.directory)
        for run in range(config.repeats):
            timed: dict[str, float | None] = {
                LIMIT_A: await failures.run("limit (a)", limits.constrained(run)),
                LIMIT_B: await failures.run("limit (b)", limits.bare_then_constraints(run)),
            }
            ours = await failures.run(
                "ours", _ours(db, loader, f"bench_load_{run}", total, failures)
            )
            loads: dict[str, LoadRun | None] = {
                OURS_SINGLE: await failures.run(
                    "ours, one process",
                    _fresh(db, one_process, f"bench_one_{run}", total, "one process"),
                ),
                OURS_ONE_WORKER: await failures.run(
                    "ours, one worker",
                    _fresh(db, one_worker, f"bench_worker_{run}", total, "one worker"),
                ),
            }
            timed[SQLA] = await failures.run("SQLAlchemy Core", _core(core, run, total))
            _record(measurements, runs, timed, loads, ours)
            console.print(_round_line(run, config.repeats, timed, loads, ours))
    await core.dispose()
    return _cases(measurements, runs, default_workers)


def _cases(measurements: dict[str, Measurement], runs: _Runs, default_workers: int) -> list[Case]:
    stages = [dict(r.stages) for r in runs.firsts]
    shares = stage_shares(stages)
    ours, validate = measurements[OURS], measurements[VALIDATE]
    recomputed = measurements[VALIDATE_RECOMPUTED]
    ours.note = _share_note(shares)
    ratio = _over(validate, ours)
    recomputed_ratio = _over(recomputed, ours)
    for measured, over in ((validate, ratio), (recomputed, recomputed_ratio)):
        if over is not None:
            measured.note += f"; {over:.2f}x the new-tenant load's median time"
    if runs.validations:
        methods = runs.validations[-1].methods
        stamped = sum(1 for m in methods.values() if m == "write_stamps")
        validate.note += f"; {stamped} of {len(methods)} tables proven by write stamps"
    return [
        Case(LIMIT_A, measurements[LIMIT_A], "load"),
        Case(LIMIT_B, measurements[LIMIT_B], "load"),
        Case(
            OURS,
            ours,
            "load",
            {
                "stages": stages,
                "stage_shares": shares,
                "cpu_median_seconds": _cpu_medians(runs.firsts),
                "parse_workers": default_workers,
            },
        ),
        Case(
            VALIDATE,
            validate,
            "validate",
            {
                "stages": [dict(v.stages) for v in runs.validations],
                "over_load_median": ratio,
                "methods": dict(runs.validations[-1].methods) if runs.validations else None,
            },
        ),
        Case(
            VALIDATE_RECOMPUTED,
            recomputed,
            "validate",
            {
                "stages": [dict(v.stages) for v in runs.recomputations],
                "over_load_median": recomputed_ratio,
            },
        ),
        Case(
            OURS_SINGLE,
            measurements[OURS_SINGLE],
            "load",
            {
                "stages": [dict(r.stages) for r in runs.singles],
                "cpu_median_seconds": _cpu_medians(runs.singles),
                "parse_workers": 0,
            },
        ),
        Case(
            OURS_ONE_WORKER,
            measurements[OURS_ONE_WORKER],
            "load",
            {
                "stages": [dict(r.stages) for r in runs.one_workers],
                "cpu_median_seconds": _cpu_medians(runs.one_workers),
                "parse_workers": 1,
            },
        ),
        Case(UPSERT, measurements[UPSERT], "load"),
        Case(SQLA, measurements[SQLA], "load"),
    ]


async def _cli_run(
    db: BenchDatabase,
    loader: OurLoader,
    tenant: str,
    set_dir: Any,
    env: dict[str, str] | None = None,
) -> CliRun:
    """A fresh tenant (not timed), then the CLI loading ``set_dir`` into it."""
    await loader.new_tenant(tenant)
    try:
        await db.settle()
        return await asyncio.to_thread(partial(cli_load, db, tenant, set_dir, env=env))
    finally:
        await loader.drop(tenant)


async def cli_cases(db: BenchDatabase, inputs: Inputs, failures: Failures) -> list[Case]:
    """The CLI end to end once, and peak RSS on the big JSON Lines files."""
    dataset, console = inputs.dataset, failures.console
    cases: list[Case] = []
    async with manager_for(db.dsn) as manager:
        loader = OurLoader(manager, dataset.directory)
        cli = await failures.run(
            "CLI load-fixtures", _cli_run(db, loader, "bench_cli", dataset.directory)
        )
        if cli is not None:
            cases.append(
                Case(
                    CLI,
                    Measurement(
                        "ours: tenancy-fixtures load-fixtures (CLI)",
                        rows=cli.rows,
                        seconds=[cli.seconds],
                        peak_rss_bytes=cli.peak_rss_bytes,
                        note="1 run, process start-up included; "
                        f"peak RSS {_mib(cli.peak_rss_bytes)}",
                    ),
                    "load",
                    {"stages": cli.report.get("stages", {})},
                )
            )
            console.print(f"  CLI end to end {cli.seconds:.2f}s")

        # Default settings (parse workers on): all the loader's processes together. Then
        # the full file once more parsed in-process, the loader alone.
        runs = (
            (RSS_HALF, inputs.half, "half", None),
            (RSS_FULL, inputs.full, "full", None),
            (
                RSS_SINGLE,
                inputs.full,
                "full, TENANCY_PARSE_WORKERS=0",
                {"TENANCY_PARSE_WORKERS": "0"},
            ),
        )
        for key, big, label, env in runs:
            run = await failures.run(
                f"peak RSS ({label})",
                _cli_run(db, loader, f"bench_{key}", big.directory, env),
            )
            if run is None:
                continue
            workers = env is None
            peak = run.peak_tree_rss_bytes if workers else run.peak_rss_bytes
            note = (
                f"loader and parse workers together {_mib(peak)} (sampled sum, "
                f"{_processes(run.peak_processes)} at most), the loader "
                f"alone {_mib(run.peak_rss_bytes)}"
                if workers
                else f"one process, peak RSS {_mib(peak)}"
            )
            cases.append(
                Case(
                    key,
                    Measurement(
                        f"ours: CLI, {big.event_bytes / MiB:,.0f} MiB JSON Lines ({label})",
                        rows=run.rows,
                        seconds=[run.seconds],
                        peak_rss_bytes=peak,
                        note=f"{note}; {big.event_rows:,} events; 1 run",
                    ),
                    "memory",
                    {
                        "file_bytes": big.event_bytes,
                        "stages": run.report.get("stages", {}),
                        "loader_peak_rss_bytes": run.peak_rss_bytes,
                        "all_processes_peak_rss_bytes": run.peak_tree_rss_bytes,
                        "parse_workers": 0 if env else manager.settings.workers_for_parsing,
                        "peak_processes": run.peak_processes,
                    },
                )
            )
            console.print(
                f"  RSS {label}: {_mib(peak)} loading "
                f"{big.event_bytes / MiB:,.0f} MiB in {run.seconds:.1f}s ({note})"
            )
    return cases
