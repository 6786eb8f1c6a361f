"""Fixture commands: load-fixtures, validate-data, generate, schema-sql."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from tenancy_fixtures.cli.context import console, err_console, fail, print_json, run, state
from tenancy_fixtures.cli.tenants import validate_or_fail
from tenancy_fixtures.errors import FixtureSetError, TenancyFixturesError, ValidationFailedError
from tenancy_fixtures.generator import generate_fixture_set
from tenancy_fixtures.loaders.data_loader import ProgressCallback
from tenancy_fixtures.loaders.fixture_sets import open_fixture_set
from tenancy_fixtures.manager import FixtureManager, LoadReport, ManyLoadReport
from tenancy_fixtures.schema import render_schema_sql
from tenancy_fixtures.spotify_schema import spotify_metadata
from tenancy_fixtures.validation import FixtureValidator, IntegrityReport

__all__ = ["load_progress", "register"]

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def load_progress(*, disable: bool = False) -> Progress:
    """The progress display of fixture loads: rows per table as they are written."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        console=err_console,
        disable=disable,
        transient=False,
    )


async def load_with_progress(
    manager: FixtureManager,
    tenant_id: str,
    source: Path | None,
    progress: Progress,
    *,
    force: bool = False,
) -> LoadReport:
    """Load a tenant's fixtures, one progress bar per table (sized from the set's files)."""
    tasks: dict[str, TaskID] = {}

    def advance(table: str, rows: int) -> None:
        if table not in tasks:
            tasks[table] = progress.add_task(f"{tenant_id} {table}", total=None)
        progress.advance(tasks[table], rows)

    report = await manager.load_fixtures(tenant_id, source, progress=advance, force=force)
    for task in tasks.values():
        done = progress.tasks[task].completed
        progress.update(task, total=done)
    return report


def load_fixtures(
    ctx: typer.Context,
    tenant_id: Annotated[
        str | None, typer.Argument(help="The tenant to load into (or use --all / --tenant).")
    ] = None,
    source: Annotated[
        Path | None,
        typer.Argument(help="A fixture set directory; default: each tenant's tier template."),
    ] = None,
    all_tenants: Annotated[bool, typer.Option("--all", help="Load into every tenant.")] = False,
    tenants: Annotated[
        list[str] | None, typer.Option("--tenant", "-t", help="Load into this tenant too.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Apply even fixtures already applied.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Load fixtures into tenants: one transaction per tenant, skipped if already applied.

    Example: tenancy-fixtures load-fixtures --all ./fixtures/spotify
    """
    many = all_tenants or bool(tenants)
    if many and tenant_id is not None and source is None:
        # `load-fixtures --all ./set`: the one positional is the set.
        source = Path(tenant_id)
        tenant_id = None
    if tenant_id is None and not many:
        err_console.print("error: give a TENANT, --tenant T (repeatable) or --all")
        raise typer.Exit(2)
    targets = [tenant_id] if tenant_id is not None else []
    targets += tenants or []
    for target in targets:
        validate_or_fail(target)
    if not many and tenant_id is not None:
        _load_one(ctx, tenant_id, source, force=force, json_out=json_out)
        return
    _load_many(ctx, targets, source, every=all_tenants, force=force, json_out=json_out)


def _load_one(
    ctx: typer.Context, tenant_id: str, source: Path | None, *, force: bool, json_out: bool
) -> None:
    with load_progress(disable=json_out) as progress:
        report = run(
            ctx,
            lambda manager: load_with_progress(manager, tenant_id, source, progress, force=force),
        )
    if json_out:
        print_json(_report_json(report))
        return
    if not report.changed:
        console.print(
            f"{tenant_id}: fixtures already applied, nothing changed "
            f"({', '.join(r.fixture for r in report.results)})",
            markup=False,
        )
        return
    console.print(
        f"{tenant_id}: loaded {report.rows:,} rows into {len(report.row_counts)} tables "
        f"in {report.seconds:.2f}s ({report.rows / max(report.seconds, 1e-9):,.0f} rows/s)"
    )


def _report_json(report: LoadReport) -> dict[str, object]:
    return {
        "tenant_id": report.tenant_id,
        "run_id": report.run_id,
        "changed": report.changed,
        "rows": report.row_counts,
        "writes": {table: vars(counts) for table, counts in report.writes.items()},
        "fixtures": {r.fixture: r.status for r in report.results},
        "seconds": round(report.seconds, 3),
        "stages": dict(report.stages),
    }


def _load_many(
    ctx: typer.Context,
    targets: list[str],
    source: Path | None,
    *,
    every: bool,
    force: bool,
    json_out: bool,
) -> None:
    with load_progress(disable=json_out) as progress:

        async def work(manager: FixtureManager) -> ManyLoadReport:
            ids = list(targets)
            if every:
                ids += [t.tenant_id for t in await manager.list_tenants() if t.tenant_id not in ids]
            tasks = {t: progress.add_task(t, total=None) for t in ids}
            callbacks: dict[str, ProgressCallback] = {
                t: partial(_advance, progress, task) for t, task in tasks.items()
            }
            return await manager.load_fixtures_many(
                ids, source, progress_for=callbacks, force=force
            )

        combined = run(ctx, work)
        for task in progress.task_ids:
            progress.update(task, total=progress.tasks[task].completed)
    if json_out:
        print_json(
            {
                "seconds": round(combined.seconds, 3),
                "rows": combined.rows,
                "loaded": {t: _report_json(r) for t, r in combined.reports.items()},
                "failed": {t: str(e) for t, e in combined.failures.items()},
            }
        )
    else:
        table = Table(title=f"{len(combined.reports)} loaded, {len(combined.failures)} failed")
        for column in ("tenant", "result", "rows", "seconds"):
            table.add_column(column, justify="right" if column in ("rows", "seconds") else "left")
        for tenant, report in combined.reports.items():
            result = "loaded" if report.changed else "unchanged"
            table.add_row(tenant, result, f"{report.rows:,}", f"{report.seconds:.2f}")
        for tenant, error in combined.failures.items():
            table.add_row(tenant, "[red]" + escape(str(error))[:160] + "[/]", "0", "")
        console.print(table)
        console.print(
            f"{combined.rows:,} rows into {len(combined.reports)} tenant(s) "
            f"in {combined.seconds:.2f}s"
        )
    if combined.failures:
        first = next(iter(combined.failures.values()))
        raise typer.Exit(first.exit_code)


def _advance(progress: Progress, task: TaskID, _table: str, rows: int) -> None:
    progress.advance(task, rows)


def _report_table(reports: list[IntegrityReport]) -> Table:
    table = Table(title="data integrity")
    for column in ("tenant", "tables", "rows", "orphans", "result"):
        table.add_column(column, justify="right" if column in ("tables", "rows") else "left")
    for report in reports:
        table.add_row(
            report.tenant_id,
            str(sum(1 for c in report.row_counts.values() if c)),
            f"{report.total_rows:,}",
            str(sum(report.orphans.values())),
            "[green]ok[/]"
            if report.ok
            else "[red]" + escape("; ".join(report.problems)[:200]) + "[/]",
        )
    return table


def validate_data(
    ctx: typer.Context,
    tenant_id: Annotated[str | None, typer.Argument(help="The tenant to check.")] = None,
    all_tenants: Annotated[bool, typer.Option("--all", help="Check every tenant.")] = False,
    source: Annotated[
        Path | None,
        typer.Option(help="Check a fixture set on disk instead (nothing is loaded)."),
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Check tenants' data (row counts, orphans) or a fixture set; non-zero exit on problems.

    Example: tenancy-fixtures validate-data --all
    """
    if source is not None:
        _validate_source(source, json_out, state(ctx).settings.validation_timeout_seconds)
        return
    if (tenant_id is None) == (not all_tenants):
        err_console.print("error: give either a TENANT or --all")
        raise typer.Exit(2)
    if tenant_id is not None:
        validate_or_fail(tenant_id)

    async def work(manager: FixtureManager) -> list[IntegrityReport]:
        ids = (
            [tenant_id]
            if tenant_id is not None
            else [t.tenant_id for t in await manager.list_tenants()]
        )
        return [await manager.validate_tenant(i) for i in ids]

    reports = run(ctx, work)
    if json_out:
        print_json(
            [
                {
                    "tenant_id": r.tenant_id,
                    "ok": r.ok,
                    "row_counts": r.row_counts,
                    "orphans": r.orphans,
                    "problems": r.problems,
                }
                for r in reports
            ]
        )
    else:
        console.print(_report_table(reports))
    failed = [r for r in reports if not r.ok]
    if failed:
        fail(ValidationFailedError([p for r in failed for p in r.problems]))


def _validate_source(source: Path, json_out: bool, timeout: float) -> None:
    try:
        fixture_set = open_fixture_set(source, metadata=spotify_metadata())
        report = FixtureValidator(timeout_seconds=timeout).validate(fixture_set)
    except TenancyFixturesError as exc:
        fail(exc)
    if json_out:
        print_json(
            {
                "source": str(source),
                "ok": report.ok,
                "records": report.records,
                "rules": dict(report.rules),
                "problems": report.problems,
                "truncated": report.truncated,
            }
        )
    else:
        console.print(f"{source}: {report.records:,} records checked", markup=False)
        for rule, count in sorted(report.rules.items()):
            console.print(f"  {rule}: {count} record(s)")
        for problem in report.problems:
            console.print(f"  - {problem}", highlight=False, markup=False)
    if not report.ok:
        fail(ValidationFailedError(report.problems))


def generate(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="Where to write the fixture set.")],
    scale: Annotated[int, typer.Option(min=1, help="Size: 1 is ~900 rows.")] = 1,
    seed: Annotated[int, typer.Option(help="Same seed and scale, same bytes.")] = 0,
    name: Annotated[str, typer.Option(help="The set's name in its manifest.")] = "spotify-demo",
) -> None:
    """Write a deterministic Spotify-domain fixture set.

    Example: tenancy-fixtures generate ./fixtures/big --scale 100 --seed 7
    """
    del ctx
    try:
        generated = generate_fixture_set(directory, scale=scale, seed=seed, name=name)
    except OSError as exc:
        fail(FixtureSetError(f"cannot write the fixture set: {exc.strerror}", path=directory))
    console.print(
        f"wrote {generated.total_rows:,} rows in {len(generated.files)} files to {directory}"
    )


def schema_sql(ctx: typer.Context) -> None:
    """Print the tenant schema as PostgreSQL DDL (the schema template).

    Example: tenancy-fixtures schema-sql > src/tenancy_fixtures/templates/schema_template.sql
    """
    state(ctx)
    typer.echo(render_schema_sql(), nl=False)


def register(app: typer.Typer) -> None:
    """Add the fixture commands to ``app``."""
    app.command("load-fixtures")(load_fixtures)
    app.command("validate-data")(validate_data)
    app.command("generate")(generate)
    app.command("schema-sql")(schema_sql)
