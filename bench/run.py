"""``make bench``: every case side by side, on one PostgreSQL and one generated set.

    python -m bench.run --scale small    # quick check (fleet migrations take most of it)
    python -m bench.run --scale full     # the README's numbers (1M listening events)

Prepares the data first (generated once per scale, cached under ``bench/.data/``), then
in one fresh database: start-up in fresh interpreters (the import, the CLI, a parse
worker; see :mod:`bench.startup`), the load cases (round-robin, see
:mod:`bench.load_cases`), a streaming-history export against the same rows as table
files (:mod:`bench.history_cases`), our CLI and its peak RSS, Django when available,
provisioning; then fleet migrations in fresh databases of their own (see
:mod:`bench.migrations`). Prints one table of medians and ratios, one of CPU seconds
by process and scaling with parse workers, one of start-up times, one of fleet
migrations, plus the targets of issues 5, 10 and 12 and those of issue 15 (see
:mod:`bench.load_targets`), and writes the same figures as JSON under
``bench/results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import structlog
from rich.console import Console

from bench.cases import (
    CLI,
    DJANGO,
    HISTORY,
    HISTORY_TABLES,
    HISTORY_TENANT,
    LIMIT_A,
    LIMIT_B,
    OURS,
    OURS_ONE_WORKER,
    OURS_SINGLE,
    PROV_DJANGO,
    PROV_MANY,
    PROV_OURS,
    PROV_RAW,
    PROV_SQLITE,
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
from bench.database import bench_database, bench_url
from bench.dataset import SCALES, MiB, export_csv, prepare_dataset
from bench.django_cases import django_baseline
from bench.generator_memory import GENERATOR_SCALES, generator_memory
from bench.history import write_history_set
from bench.history_cases import history_cases
from bench.load_cases import cli_cases, load_cases
from bench.load_targets import cpu_table, issue15_targets, scaling
from bench.migrations import MIGRATION_SCALES, migration_cases, migration_table, migration_targets
from bench.provisioning import provisioning_cases
from bench.report import (
    evaluate_targets,
    load_table,
    startup_table,
    target_json,
    targets_table,
    write_json,
)
from bench.rss import write_big_set
from bench.startup import RUNS, startup_cases

__all__ = ["main"]


def _drop_limit_warnings(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """The benchmark's sets are past the tiers' limits on purpose (limits are not
    enforced, see :func:`bench.ours.manager_for`): one warning per load says so."""
    if event.get("event") in ("limit_near", "limit_exceeded"):
        raise structlog.DropEvent
    return event


def _quiet_logs() -> None:
    structlog.configure(
        processors=[_drop_limit_warnings, *structlog.get_config()["processors"]],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    )


@contextmanager
def _phase(console: Console, name: str) -> Iterator[None]:
    console.print(f"{name}:")
    started = time.perf_counter()
    yield
    console.print(f"  ({name}: {time.perf_counter() - started:.1f}s)")


async def _measure(inputs: Inputs, server_url: str, failures: Failures) -> tuple[list[Case], str]:
    console = failures.console
    async with bench_database(server_url) as db:
        version = await db.server_version()
        console.print(f"database {db.name} (PostgreSQL {version}); dropped at the end")
        with _phase(console, f"start-up (fresh interpreters, {RUNS} runs each)"):
            cases = await startup_cases(failures)
        with _phase(console, "load cases"):
            cases += await load_cases(db, inputs, failures)
        with _phase(console, "streaming-history export vs the same rows as table files"):
            cases += await history_cases(db, inputs, failures)
        with _phase(console, "CLI and peak RSS"):
            cases += await cli_cases(db, inputs, failures)
        django = django_baseline(console)
        if django is not None:
            with _phase(console, "Django loaddata"):
                cases += await django.loaddata(db, inputs, failures)
        with _phase(console, "provisioning"):
            cases += await provisioning_cases(db, inputs.config, failures, django)
    with _phase(console, "fleet migrations (fresh databases of their own)"):
        scale = MIGRATION_SCALES[inputs.config.name]
        cases += await migration_cases(server_url, scale, failures, django=django is not None)
    return [c for c in cases if c.measurement.seconds], version


def _order(cases: list[Case]) -> list[Case]:
    order = [
        LIMIT_A,
        LIMIT_B,
        OURS,
        OURS_SINGLE,
        OURS_ONE_WORKER,
        CLI,
        UPSERT,
        VALIDATE,
        VALIDATE_RECOMPUTED,
        HISTORY,
        HISTORY_TABLES,
        HISTORY_TENANT,
        SQLA,
        DJANGO,
        RSS_HALF,
        RSS_FULL,
        RSS_SINGLE,
        PROV_RAW,
        PROV_OURS,
        PROV_DJANGO,
        PROV_SQLITE,
        PROV_MANY,
    ]
    return sorted(cases, key=lambda c: order.index(c.key) if c.key in order else len(order))


def _validation_line(cases: list[Case]) -> str:
    ours = next((c for c in cases if c.key == OURS), None)
    if ours is None:
        return "our load failed: no stage figures"
    shares = ours.extra["stage_shares"]
    medians = ", ".join(f"{k} {v:.3f}s" for k, v in shares["median_seconds"].items())
    line = f"our load stages (median s): {medians}, total {shares['median_total']:.3f}s. "
    if shares["validate_share"] is None:
        return line + (
            "validation's share of load time: not split out (LoadReport.stages has no "
            "'validate'; typing and checking each record happen inside 'parse')"
        )
    return line + f"validation's share of load time: {shares['validate_share']:.1%}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument(
        "--database-url",
        default=bench_url(),
        help="server to run on (default: TENANCY_BENCH_DATABASE_URL or the local one)",
    )
    args = parser.parse_args(argv)
    _quiet_logs()
    console = Console(width=None if sys.stdout.isatty() else 180)
    started = datetime.now(UTC)
    clock = time.perf_counter()
    config = SCALES[args.scale]

    dataset = prepare_dataset(config, log=console.print)
    csv_set = export_csv(dataset, log=console.print)
    inputs = Inputs(
        config,
        dataset,
        csv_set,
        half=write_big_set(dataset, config.rss_bytes // 2, log=console.print),
        full=write_big_set(dataset, config.rss_bytes, log=console.print),
        history=write_history_set(
            dataset.root, config.history_entries, config.seed, log=console.print
        ),
    )
    console.print(
        f"scale {config.name}: {dataset.total_rows:,} rows "
        f"({dataset.rows['listening_events']:,} listening events), {config.repeats} runs per case"
    )
    failures = Failures(console)
    cases, version = asyncio.run(_measure(inputs, args.database_url, failures))
    cases = _order(cases)
    targets = evaluate_targets(cases, scale=config.name) + migration_targets(cases)
    with _phase(console, "generator memory (goal f of issue 15)"):
        generated = generator_memory(GENERATOR_SCALES[config.name])
    for record in generated:
        console.print(
            f"  generate --scale {record['scale']:,}: {record['rows']:,} rows in "
            f"{record['seconds']:.1f}s, peak RSS {record['peak_rss_bytes'] / MiB:.1f} MiB"
        )
    elapsed = time.perf_counter() - clock
    context: dict[str, Any] = {
        "seed": config.seed,
        "generator_scale": config.generator_scale,
        "rows_per_table": dataset.rows,
        "total_rows": dataset.total_rows,
        "repeats": config.repeats,
        "postgresql": version,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
        "elapsed_seconds": elapsed,
        "fixture_set": str(dataset.directory),
        "failures": failures.items,
        "validation_share": next(
            (c.extra["stage_shares"]["validate_share"] for c in cases if c.key == OURS), None
        ),
        "scaling": scaling(cases),
        "generator_memory": generated,
    }
    issue15 = issue15_targets(
        cases, scale=config.name, generator_memory=context.get("generator_memory")
    )
    context["targets_issue_15"] = [target_json(t) for t in issue15]

    title = (
        f"bench {config.name}: {dataset.total_rows:,} rows, medians of {config.repeats} runs, "
        f"PostgreSQL {version}, {os.cpu_count()} CPUs"
    )
    console.print()
    console.print(
        load_table([c for c in cases if c.group not in ("startup", "migrate")], title=title)
    )
    console.print(_validation_line(cases))
    console.print()
    console.print(
        cpu_table(cases, title="CPU seconds by process (medians) and scaling with parse workers")
    )
    console.print()
    console.print(
        startup_table(
            [c for c in cases if c.group == "startup"],
            title=f"start-up (ms): medians of {RUNS} fresh interpreters",
        )
    )
    console.print()
    console.print(
        migration_table(
            [c for c in cases if c.group == "migrate"],
            title="fleet migrations (issue 12): medians; ratios per tenant vs django-tenants",
        )
    )
    console.print()
    console.print(targets_table(targets, title="targets (issues 5 and 12)"))
    console.print()
    console.print(targets_table(issue15, title="targets of issue 15 (load at the limit)"))
    for failure in failures.items:
        console.print(f"FAILED {failure['case']}: {failure['error']}", markup=False)
    path = write_json(config.name, started, cases, targets, context)
    console.print(f"took {elapsed:.1f}s; results written to {path}")
    return 1 if failures.items else 0


if __name__ == "__main__":
    raise SystemExit(main())
