"""Fixture commands: load-fixtures, validate-data, generate, schema-sql."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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

from tenancy_fixtures.cli.context import (
    UNTIMED,
    console,
    err_console,
    fail,
    key_values,
    print_json,
    run,
    say_unvalidated,
    state,
)
from tenancy_fixtures.cli.tenants import validate_or_fail
from tenancy_fixtures.errors import (
    ConfigError,
    DestinationExistsError,
    StorageError,
    TenancyFixturesError,
    ValidationFailedError,
)

if TYPE_CHECKING:
    from tenancy_fixtures.fixtures.context import ProgressCallback
    from tenancy_fixtures.manager import FixtureManager, LoadOptions, LoadReport, ManyLoadReport
    from tenancy_fixtures.settings import Settings
    from tenancy_fixtures.validation import IntegrityReport

__all__ = ["load_progress", "register"]

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def load_progress(*, disable: bool = False) -> Progress:
    """The progress display of fixture loads: rows per table as they are written (on a
    terminal: elsewhere its last frame would only be noise among the logs)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        console=err_console,
        disable=disable or not err_console.is_terminal or err_console.json_lines,
        # Bars vanish when done: a refused load leaves only its one error line (the rows
        # they counted were rolled back), a finished one prints its summary instead.
        transient=True,
    )


async def load_with_progress(
    manager: FixtureManager, tenant_id: str, options: LoadOptions, progress: Progress
) -> LoadReport:
    """Load a tenant's fixtures, one progress bar per table (sized from the set's files)."""
    tasks: dict[str, TaskID] = {}

    def advance(table: str, rows: int) -> None:
        if table not in tasks:
            tasks[table] = progress.add_task(f"{tenant_id} {table}", total=None)
        progress.advance(tasks[table], rows)

    report = await manager.load(tenant_id, replace(options, progress=advance))
    for task in tasks.values():
        done = progress.tasks[task].completed
        progress.update(task, total=done)
    return report


TenantArgument = Annotated[
    str | None, typer.Argument(help="The tenant to load into (or use --all / --tenant).")
]
SourceArgument = Annotated[
    Path | None,
    typer.Argument(help="A fixture set directory; default: each tenant's tier template."),
]
AllFlag = Annotated[bool, typer.Option("--all", help="Load into every tenant.")]
TenantsOption = Annotated[
    list[str] | None, typer.Option("--tenant", "-t", help="Load into this tenant too.")
]
ForceFlag = Annotated[bool, typer.Option(help="Apply even fixtures already applied.")]
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="Read PATH as source files of this format (spotify-api, spotify-history, "
        "mpd, ai-models, django, ...); detected per file when not given.",
    ),
]
SourceOptions = Annotated[
    list[str] | None,
    typer.Option(
        "--option",
        "-o",
        help="An option of the source format, KEY=VALUE (repeatable), e.g. "
        "-o user_id=u_ava for a streaming-history export, "
        "-o mapping=django.yaml for Django fixtures.",
    ),
]
LenientFlag = Annotated[
    bool | None,
    typer.Option(
        "--lenient/--strict",
        help="--lenient: load all but the bad records and write those to a reject "
        "file; --strict: any bad record refuses the load (default: "
        "TENANCY_VALIDATION_MODE, else strict).",
    ),
]
RejectDirOption = Annotated[
    Path | None,
    typer.Option(
        help="Where --lenient writes <tenant>-<plane>-<run_id>.jsonl (default: "
        "TENANCY_REJECT_DIR, else ./rejects)."
    ),
]


def load_fixtures(
    ctx: typer.Context,
    tenant_id: TenantArgument = None,
    source: SourceArgument = None,
    all_tenants: AllFlag = False,
    tenants: TenantsOption = None,
    force: ForceFlag = False,
    source_format: FormatOption = None,
    source_options: SourceOptions = None,
    lenient: LenientFlag = None,
    reject_dir: RejectDirOption = None,
    json_out: JsonFlag = False,
) -> None:
    """Load fixtures into tenants: one transaction per tenant, skipped if already applied.

    Example: tenancy-fixtures load-fixtures --all ./fixtures/spotify
    Example: tenancy-fixtures load-fixtures acme ./export --lenient --reject-dir ./rejects
    """
    many = all_tenants or bool(tenants)
    if many and tenant_id is not None and source is None:
        # `load-fixtures --all ./set`: the one positional is the set.
        source, tenant_id = Path(tenant_id), None
    if tenant_id is None and not many:
        err_console.print("error: give a TENANT, --tenant T (repeatable) or --all")
        raise typer.Exit(2)
    targets = [tenant_id] if tenant_id is not None else []
    targets += tenants or []
    for target in targets:
        validate_or_fail(target)
    if source is not None:
        source_exists_or_fail(source)
    if reject_dir is not None:
        reject_dir_or_fail(reject_dir)
    from tenancy_fixtures.loading.load import LoadOptions

    options = LoadOptions(
        source=source,
        format=source_format,
        options=key_values(source_options or [], "option", _option_error),
        force=force,
        validation=None if lenient is None else "lenient" if lenient else "strict",
        reject_dir=reject_dir,
    )
    if not many and tenant_id is not None:
        _load_one(ctx, tenant_id, options, json_out=json_out)
    else:
        _load_many(ctx, targets, options, every=all_tenants, json_out=json_out)


def source_exists_or_fail(source: Path) -> None:
    """Exit 2 (invalid input) when PATH does not exist, or is no file nor directory (a
    device such as /dev/null, a pipe): nothing was read, no data refused."""
    if source.is_file() or source.is_dir():
        return
    what = (
        "is neither a file nor a directory (a device, pipe or socket)"
        if source.exists()
        else "does not exist"
    )
    err_console.print(
        f"error: {escape(str(source))} {what}: give a fixture set directory or "
        "source files (tenancy-fixtures generate DIR writes a set)",
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(2)


def reject_dir_or_fail(reject_dir: Path) -> None:
    """Exit 2 (invalid input) when --reject-dir names a file, as TENANCY_REJECT_DIR
    naming one does: not the storage failure of writing a reject file into it."""
    if reject_dir.exists() and not reject_dir.is_dir():
        fail(ConfigError(f"--reject-dir {str(reject_dir)!r} is a file: give a directory"))


def _load_one(ctx: typer.Context, tenant_id: str, options: LoadOptions, *, json_out: bool) -> None:
    with load_progress(disable=json_out) as progress:
        report = run(ctx, lambda manager: load_with_progress(manager, tenant_id, options, progress))
    settings = state(ctx).settings
    validated, timed = settings.data_validation, settings.performance_monitoring
    if json_out:
        print_json(
            {**_report_json(report, timed=timed), "validation": "on" if validated else "off"}
        )
        return
    if not validated:
        say_unvalidated(tenant_id)
    if report.reject_file is not None:
        err_console.print(
            f"{tenant_id}: {report.rejected:,} bad record(s) left out, listed in "
            f"{report.reject_file}",
            markup=False,
        )
    if not report.changed:
        console.print(
            f"{tenant_id}: fixtures already applied, nothing changed "
            f"({', '.join(r.fixture for r in report.results)})",
            markup=False,
        )
        return
    console.print(
        f"{tenant_id}: loaded {report.rows:,} rows into {len(report.row_counts)} tables"
        + (f" (+{report.derived_rows:,} derived rows)" if report.derived_rows else "")
        + (
            f" in {report.seconds:.2f}s ({report.rows / max(report.seconds, 1e-9):,.0f} rows/s)"
            if timed
            else f" ({UNTIMED})"
        ),
        markup=False,
    )


def _report_json(report: LoadReport, *, timed: bool) -> dict[str, object]:
    """A tenant's load for ``--json``; ``seconds`` is null when the load was not
    ``timed`` (performance monitoring off), as its run keeps no timings then."""
    return {
        "tenant_id": report.tenant_id,
        "run_id": report.run_id,
        "changed": report.changed,
        "rows": report.row_counts,
        "rows_loaded": report.rows,
        "derived_rows": report.derived_rows,
        "derived": report.derived_counts,
        "writes": {table: vars(counts) for table, counts in report.writes.items()},
        "fixtures": {r.fixture: r.status for r in report.results},
        "seconds": round(report.seconds, 3) if timed else None,
        "monitoring": "on" if timed else "off",
        "stages": dict(report.stages),
        "rejected": report.rejected,
        "reject_file": str(report.reject_file) if report.reject_file is not None else None,
    }


def _load_many(
    ctx: typer.Context,
    targets: list[str],
    options: LoadOptions,
    *,
    every: bool,
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
            return await manager.load_many(ids, options, progress_for=callbacks)

        combined = run(ctx, work)
        for task in progress.task_ids:
            progress.update(task, total=progress.tasks[task].completed)
    settings = state(ctx).settings
    validated, timed = settings.data_validation, settings.performance_monitoring
    if json_out:
        print_json(
            {
                "seconds": round(combined.seconds, 3) if timed else None,
                "rows": combined.rows,
                "loaded": {t: _report_json(r, timed=timed) for t, r in combined.reports.items()},
                "failed": {t: str(e) for t, e in combined.failures.items()},
                "validation": "on" if validated else "off",
                "monitoring": "on" if timed else "off",
            }
        )
    else:
        _print_many(combined, timed=timed)
        if not validated and combined.reports:
            say_unvalidated(", ".join(combined.reports))
    if combined.failures:
        first = next(iter(combined.failures.values()))
        raise typer.Exit(first.exit_code)


def _print_many(combined: ManyLoadReport, *, timed: bool) -> None:
    """A line per tenant (loaded, unchanged or why it failed), then the totals; the
    seconds only of ``timed`` loads (performance monitoring on)."""
    table = Table(title=f"{len(combined.reports)} loaded, {len(combined.failures)} failed")
    columns = ("tenant", "result", "rows", "seconds") if timed else ("tenant", "result", "rows")
    for column in columns:
        table.add_column(column, justify="right" if column in ("rows", "seconds") else "left")
    for tenant, report in combined.reports.items():
        result = "loaded" if report.changed else "unchanged"
        seconds = [f"{report.seconds:.2f}"] if timed else []
        table.add_row(tenant, result, f"{report.rows:,}", *seconds)
    for tenant, error in combined.failures.items():
        table.add_row(
            tenant, "[red]" + escape(str(error))[:160] + "[/]", "0", *([""] if timed else [])
        )
    console.print(table)
    console.print(
        f"{combined.rows:,} rows into {len(combined.reports)} tenant(s)"
        + (f" in {combined.seconds:.2f}s" if timed else f" ({UNTIMED})"),
        markup=False,
    )


def _advance(progress: Progress, task: TaskID, _table: str, rows: int) -> None:
    progress.advance(task, rows)


_STATUS_STYLE = {"ok": "green", "failed": "bold red", "info": "yellow"}


def _report_table(report: IntegrityReport) -> Table:
    """One tenant's report: a line per check (check, status, detail)."""
    verdict = (
        "[green]ok[/]" if report.ok else f"[red]{len(report.failed_checks)} check(s) failed[/]"
    )
    table = Table(title=f"{escape(report.tenant_id)}: {verdict}", title_justify="left")
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    for result in report.checks:
        style = _STATUS_STYLE[result.status]
        table.add_row(result.check, f"[{style}]{result.status}[/]", escape(result.detail))
    return table


def validate_data(
    ctx: typer.Context,
    tenant_id: Annotated[str | None, typer.Argument(help="The tenant to check.")] = None,
    all_tenants: Annotated[bool, typer.Option("--all", help="Check every tenant.")] = False,
    source: Annotated[
        Path | None,
        typer.Option(help="Check a fixture set on disk instead (nothing is loaded)."),
    ] = None,
    source_format: FormatOption = None,
    source_options: SourceOptions = None,
    json_out: JsonFlag = False,
    recompute: Annotated[
        bool,
        typer.Option(
            "--recompute-checksums",
            help="Read and hash every table again, also those PostgreSQL shows only "
            "their recorded loads wrote.",
        ),
    ] = False,
) -> None:
    """Check tenants' data or a fixture set; exit 6 if anything fails.

    A tenant is checked for foreign-key orphans, duplicate keys, NOT NULL and CHECK
    violations, row counts and content checksums against its applied fixtures,
    isolation from other tenants, and storage against its limit. Each report is stored
    in the control plane as a "validate" run and audited.

    Example: tenancy-fixtures validate-data --all
    """
    _one_target(tenant_id, all_tenants, source, source_format is not None or bool(source_options))
    if source is not None:
        source_exists_or_fail(source)
        given = key_values(source_options or [], "option", _option_error)
        _validate_source(source, json_out, state(ctx).settings, source_format, given)
        return
    if tenant_id is not None:
        validate_or_fail(tenant_id)

    async def work(manager: FixtureManager) -> list[IntegrityReport]:
        if tenant_id is not None:
            return [
                await manager.validate_tenant(tenant_id, record=True, recompute_checksums=recompute)
            ]
        return await manager.validate_all(record=True, recompute_checksums=recompute)

    reports = run(ctx, work)
    failed = [r for r in reports if not r.ok]
    _print_reports(reports, failed, json_out)
    if len(failed) == 1:
        fail(ValidationFailedError(failed[0].problems, tenant_id=failed[0].tenant_id))
    if failed:
        fail(ValidationFailedError([f"{r.tenant_id}: {p}" for r in failed for p in r.problems]))


def _print_reports(
    reports: list[IntegrityReport], failed: list[IntegrityReport], json_out: bool
) -> None:
    """The tenants' reports, as JSON or as a table each and a summary line."""
    if json_out:
        print_json([r.as_dict() for r in reports])
        return
    for report in reports:
        console.print(_report_table(report))
    console.print(
        f"{len(reports)} tenant(s) checked, {len(failed)} failed"
        + (f" (run {reports[0].run_id})" if len(reports) == 1 and reports[0].run_id else ""),
        markup=False,
    )


def _one_target(
    tenant_id: str | None, all_tenants: bool, source: Path | None, read_as: bool
) -> None:
    """A TENANT, ``--all`` or ``--source``: exactly one (exit 2 otherwise); ``--format``
    and ``-o`` (``read_as``) only with ``--source``."""
    if read_as and source is None:
        err_console.print("error: --format and --option say how to read --source PATH: give it")
        raise typer.Exit(2)
    if source is not None and (tenant_id is not None or all_tenants):
        err_console.print(
            "error: --source checks a fixture set on disk, not a tenant: "
            "give it without a TENANT or --all"
        )
        raise typer.Exit(2)
    if source is None and (tenant_id is None) == (not all_tenants):
        err_console.print("error: give either a TENANT or --all")
        raise typer.Exit(2)


def _validate_source(
    source: Path,
    json_out: bool,
    settings: Settings,
    source_format: str | None,
    options: dict[str, str],
) -> None:
    """Check every file ``load-fixtures`` would load from ``source`` (read with
    ``--format`` and ``-o`` as it would); exit 6 on a problem or a source file that only
    a load can stage."""
    from tenancy_fixtures.fixtures.schema import tenant_metadata
    from tenancy_fixtures.loading.archives import ArchiveLimits, unpacked_set
    from tenancy_fixtures.loading.set_check import check_set

    limits = ArchiveLimits.of(settings)
    try:
        with unpacked_set(source, limits, work_dir=settings.service_work_dir) as found:
            check = check_set(
                found,
                metadata=tenant_metadata(settings),
                settings=settings,
                format=source_format,
                options=options,
            )
    except TenancyFixturesError as exc:
        fail(exc)
    report = check.report
    if json_out:
        print_json(
            {
                "source": str(source),
                "ok": check.ok,
                "records": report.records,
                "total": check.total,
                "rules": dict(report.rules),
                "problems": check.problems,
                "truncated": report.truncated,
                "not_staged": check.unstaged,
                "not_checked": check.not_checked,
            }
        )
    else:
        console.print(f"{source}: {report.records:,} records checked", markup=False)
        for rule, count in sorted(report.rules.items()):
            console.print(f"  {rule}: {count} record(s)")
        for problem in check.problems:
            console.print(f"  - {problem}", highlight=False, markup=False)
        if (unlisted := check.total - len(check.problems)) > 0:
            console.print(
                f"  ... {unlisted:,} more problem(s) not listed "
                "(TENANCY_VALIDATION_MAX_PROBLEMS; see the counts per rule above)",
                highlight=False,
                markup=False,
            )
        for item in check.not_checked:
            console.print(f"  not checked: {item}", highlight=False, markup=False)
    if not check.ok:
        fail(ValidationFailedError(check.problems, errors=report.errors, total=check.total))


def generate(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="Where to write the fixture set.")],
    scale: Annotated[int, typer.Option(min=1, help="Size: 1 is ~900 rows.")] = 1,
    seed: Annotated[int, typer.Option(help="Same seed and scale, same bytes.")] = 0,
    name: Annotated[
        str | None,
        typer.Option(
            help="The set's name in its manifest (default: spotify-demo; with --sources: "
            "spotify-sources).",
            show_default=False,
        ),
    ] = None,
    sources: Annotated[
        bool,
        typer.Option(
            "--sources",
            help="Write source files instead (Web API responses, streaming-history "
            "exports, MPD slices) with a manifest naming their formats.",
        ),
    ] = False,
) -> None:
    """Write a deterministic Spotify-domain fixture set (table files, or --sources).

    Example: tenancy-fixtures generate ./fixtures/big --scale 100 --seed 7
    """
    from tenancy_fixtures.loading.fixture_sets import MAX_SET_NAME
    from tenancy_fixtures.spotify.generator import generate_fixture_set
    from tenancy_fixtures.spotify.source_generator import generate_sources

    del ctx
    name = name or ("spotify-sources" if sources else "spotify-demo")
    if len(name) > MAX_SET_NAME:
        raise typer.BadParameter(
            f"is {len(name)} characters long: a set's name is at most {MAX_SET_NAME}",
            param_hint="--name",
        )
    if directory.exists() and not directory.is_dir():
        fail(DestinationExistsError("is a file: name a directory for the set", path=directory))
    try:
        if sources:
            written = generate_sources(directory, scale=scale, seed=seed, name=name)
            console.print(f"wrote {len(written.files)} source files to {directory}")
            return
        generated = generate_fixture_set(directory, scale=scale, seed=seed, name=name)
    except ValueError as exc:  # a scale past the largest whose ids stay unique
        raise typer.BadParameter(str(exc), param_hint="--scale") from exc
    except OSError as exc:
        reason = exc.strerror or str(exc)
        fail(StorageError(f"cannot write the fixture set to {directory}: {reason}"))
    console.print(
        f"wrote {generated.total_rows:,} rows in {len(generated.files)} files to {directory}"
    )


def schema_sql(ctx: typer.Context) -> None:
    """Print the tenant schema as PostgreSQL DDL (the schema template).

    Example: tenancy-fixtures schema-sql > src/tenancy_fixtures/templates/schema_template.sql
    """
    from tenancy_fixtures.fixtures.schema import render_schema_sql, tenant_metadata

    typer.echo(render_schema_sql(tenant_metadata(state(ctx).settings)), nl=False)


def register(app: typer.Typer) -> None:
    """Add the fixture commands to ``app``."""
    app.command("load-fixtures")(load_fixtures)
    app.command("validate-data")(validate_data)
    app.command("generate")(generate)
    app.command("schema-sql")(schema_sql)


def _option_error(message: str) -> ConfigError:
    """A malformed ``-o``: a mistaken argument (exit 2), not data refused."""
    return ConfigError(message, key="option")
