"""Migration commands: migrate, migrate status, migrate check."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tenancy_fixtures.cli.context import UNTIMED, console, err_console, print_json, run, state
from tenancy_fixtures.cli.tenants import validate_or_fail
from tenancy_fixtures.errors import TenantStorageMissingError

if TYPE_CHECKING:
    from tenancy_fixtures.manager import FixtureManager
    from tenancy_fixtures.migrations.report import MigrationReport, TenantMigration
    from tenancy_fixtures.store.migration_ledger import LedgerEntry
    from tenancy_fixtures.validation.drift import DriftReport

__all__ = ["register"]

migrate_app = typer.Typer(
    help="Move tenants' schemas through the schema's Alembic revisions.",
    invoke_without_command=True,
    no_args_is_help=False,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
Tenants = Annotated[
    list[str] | None, typer.Option("--tenant", "-t", help="A tenant to include (repeatable).")
]


def _chosen(all_tenants: bool, tenant: list[str] | None) -> list[str] | None:
    if all_tenants == bool(tenant):
        err_console.print("error: give either --all or one or more --tenant/-t")
        raise typer.Exit(2)
    for tenant_id in tenant or []:
        validate_or_fail(tenant_id)
    return None if all_tenants else list(tenant or [])


@migrate_app.callback()
def migrate(  # shape: a Typer command declares its nine options in its signature
    ctx: typer.Context,
    all_tenants: Annotated[bool, typer.Option("--all", help="Every registered tenant.")] = False,
    tenant: Tenants = None,
    to: Annotated[
        str, typer.Option("--to", help="head, base, a revision id (or prefix), -1, +1...")
    ] = "head",
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1, max=100, help="Tenants at once (default: TENANCY_MIGRATE_CONCURRENCY)."
        ),
    ] = None,
    canary: Annotated[
        int, typer.Option(min=0, help="Migrate this many first; stop if any of them fails.")
    ] = 0,
    keep_going: Annotated[
        bool, typer.Option("--keep-going", help="Go on with the others after a failure.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; change nothing.")
    ] = False,
    sql: Annotated[
        bool,
        typer.Option("--sql", help="Print the SQL of the first pending tenant (rolled back)."),
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Migrate tenants to a revision (default: the head); up-to-date ones are skipped.

    Each tenant migrates in its own transaction; a failure rolls that tenant back
    alone, is reported with its error, and makes the command exit 9.

    Example: tenancy-fixtures migrate --all --canary 5 --concurrency 8
    """
    if ctx.invoked_subcommand is not None:
        _refuse_misplaced(ctx, ctx.invoked_subcommand)
        return
    if dry_run and sql:
        err_console.print("error: give --dry-run or --sql, not both")
        raise typer.Exit(2)
    tenants = _chosen(all_tenants, tenant)
    options = {
        "to": to,
        "concurrency": concurrency,
        "canary": canary,
        "keep_going": keep_going,
        "dry_run": dry_run,
        "sql": sql,
    }
    quiet = json_out or dry_run or sql

    async def work(manager: FixtureManager) -> MigrationReport:
        return await _with_progress(manager, tenants, options, quiet=quiet)

    report = run(ctx, work)
    timed = state(ctx).settings.performance_monitoring
    if json_out:
        print_json(_report_json(report, timed=timed))
    elif sql:
        _print_sql(report)
    else:
        _print_report(report, timed=timed)
    if not report.ok:
        raise typer.Exit(9)


def _refuse_misplaced(ctx: typer.Context, subcommand: str) -> None:
    """Options of the migration itself given before a subcommand (``migrate -t acme
    status``) would be ignored without a word: refused, saying where they go."""
    given = [
        param
        for param in ctx.command.params
        if param.name is not None
        and (source := ctx.get_parameter_source(param.name)) is not None
        and source.name in {"COMMANDLINE", "ENVIRONMENT"}
    ]
    if not given:
        return
    sub = getattr(ctx.command, "commands", {})[subcommand]
    takes = {opt for param in sub.params for opt in param.opts}
    names = [param.opts[0] for param in given]
    movable = [name for name in names if name in takes]
    hint = (
        f"put {', '.join(movable)} after it: tenancy-fixtures migrate {subcommand} "
        f"{' '.join(movable)} ..."
        if movable == names
        else f"`migrate {subcommand}` takes {', '.join(sorted(takes - {'--help'})) or 'none'}"
    )
    err_console.print(
        f"error: {', '.join(names)} before `{subcommand}` would not apply to it; {hint}",
        markup=False,
    )
    raise typer.Exit(2)


async def _with_progress(
    manager: FixtureManager,
    tenants: list[str] | None,
    options: dict[str, Any],
    *,
    quiet: bool,
) -> MigrationReport:
    """``manager.migrate`` with a progress bar of tenants done (on stderr), shown from
    the first tenant done: a run refused while planning prints its error alone."""
    progress = _progress(disable=quiet)
    task = progress.add_task("migrating", total=None)

    def advance(result: TenantMigration) -> None:
        if not progress.live.is_started:
            progress.start()
        progress.advance(task)

    try:
        return await manager.migrate(tenants, progress=advance, **options)
    finally:
        if progress.live.is_started:
            progress.stop()


def _progress(*, disable: bool) -> Progress:
    """Tenants done, on a terminal (elsewhere its last frame is noise among the logs)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=disable or not err_console.is_terminal or err_console.json_lines,
    )


def _print_sql(report: MigrationReport) -> None:
    if not report.results:
        console.print("every tenant is at its target; no SQL to show")
        return
    result = report.results[0]
    if result.error is not None:  # the revision failed: no SQL, and the run exits 9
        err_console.print(
            f"error: tenant {result.tenant_id} ({result.from_revision} -> "
            f"{result.to_revision}): {result.error}",
            markup=False,
        )
        return
    typer.echo(f"-- tenant {result.tenant_id}: {result.from_revision} -> {result.to_revision}")
    for statement in result.sql:
        typer.echo(statement)


def _report_json(report: MigrationReport, *, timed: bool) -> dict[str, Any]:
    """The run for ``--json``; its seconds and each tenant's are null when it was not
    ``timed`` (performance monitoring off), as ``load-fixtures --json`` says."""
    document = report.as_dict()
    document["monitoring"] = "on" if timed else "off"
    if not timed:
        document["seconds"] = None
        for tenant in document["tenants"]:
            tenant["seconds"] = None
    return document


def _print_report(report: MigrationReport, *, timed: bool) -> None:
    """A row per tenant the run changed or refused, then the counts; no seconds when
    the run was not ``timed`` (performance monitoring off)."""
    shown = [r for r in report.results if r.outcome != "skipped"]
    if shown:
        console.print(_table(report, shown, timed=timed))
    counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(report.counts().items()))
    took = f"{report.seconds:.2f} s" if timed else UNTIMED
    console.print(f"{counts or 'no tenants'} (head {report.head}, {took})", markup=False)
    if report.stopped:
        err_console.print(f"stopped: {report.stopped}", markup=False, level="error")


def _table(report: MigrationReport, shown: list[TenantMigration], *, timed: bool) -> Table:
    """The tenants ``shown``, with their seconds when the run was ``timed``."""
    table = Table(title=escape(f"{'plan' if report.dry_run else 'migration'} to {report.target}"))
    columns = ("tenant", "from", "to", "outcome", "seconds", "error")
    for column in columns if timed else [c for c in columns if c != "seconds"]:
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for r in shown:
        seconds = [f"{r.seconds:.3f}" if r.seconds else ""] if timed else []
        table.add_row(
            escape(r.tenant_id),
            escape(r.from_revision or "-"),
            escape(r.to_revision or "-"),
            r.outcome,
            *seconds,
            escape(r.error or ""),
        )
    return table


@migrate_app.command("status")
def status(
    ctx: typer.Context,
    tenant: Tenants = None,
    json_out: JsonFlag = False,
) -> None:
    """Each tenant's schema revision and last migration attempt.

    Example: tenancy-fixtures migrate status --json
    """
    for tenant_id in tenant or []:
        validate_or_fail(tenant_id)

    async def work(manager: FixtureManager) -> tuple[list[str], list[LedgerEntry]]:
        entries = await manager.migration_status(tenant or None)
        assert manager.migrations is not None
        return manager.migrations.chain, entries

    chain, entries = run(ctx, work)
    head = chain[-1]
    if json_out:
        print_json(
            {
                "head": head,
                "tenants": [
                    {
                        "tenant_id": e.tenant_id,
                        "revision": e.revision,
                        "at_head": e.revision == head,
                        "status": e.status,
                        "attempted_at": e.attempted_at.isoformat() if e.attempted_at else None,
                        "duration_seconds": e.duration_seconds,
                        "error": e.error,
                    }
                    for e in entries
                ],
            }
        )
        return
    table = Table(title=escape(f"{len(entries)} tenant(s), head {head}"))
    for column in ("tenant", "revision", "status", "last attempt", "error"):
        table.add_column(column)
    for e in entries:
        table.add_row(
            escape(e.tenant_id),
            escape(e.revision or "-"),
            e.status,
            e.attempted_at.strftime("%Y-%m-%d %H:%M:%S") if e.attempted_at else "",
            escape(e.error or ""),
        )
    console.print(table)
    console.print(_not_at_head(entries, chain), markup=False, soft_wrap=True)


def _not_at_head(entries: list[LedgerEntry], chain: list[str]) -> str:
    """How many tenants are behind the head, and how many at a revision the history
    lacks (a newer release's, which ``migrate`` refuses: they were counted behind)."""
    behind = sum(1 for e in entries if e.revision in chain[:-1])
    ahead = sum(1 for e in entries if e.revision not in chain)
    said = f"{behind} tenant(s) behind the head"
    return f"{said}, {ahead} ahead of it (a revision this code lacks)" if ahead else said


@migrate_app.command("check")
def check(
    ctx: typer.Context,
    all_tenants: Annotated[bool, typer.Option("--all", help="Every registered tenant.")] = False,
    tenant: Tenants = None,
    json_out: JsonFlag = False,
) -> None:
    """Compare each live tenant schema with the code's at its recorded revision.

    Columns, types, nullability, indexes, unique/CHECK/foreign-key constraints. Exit 6
    on drift; exit 7 if a registered tenant's storage is missing (the others are still
    checked).

    Example: tenancy-fixtures migrate check --all
    """
    tenants = _chosen(all_tenants, tenant)

    async def work(manager: FixtureManager) -> list[DriftReport]:
        return await manager.check_drift(tenants, report_missing=True)

    reports = run(ctx, work)
    if json_out:
        print_json([r.as_dict() for r in reports])
    else:
        for r in reports:
            if r.problem is not None:
                console.print(f"{r.tenant_id}: {r.problem}", markup=False, soft_wrap=True)
                continue
            mark = "ok" if r.ok else f"{len(r.findings)} difference(s)"
            console.print(f"{r.tenant_id} ({r.revision}): {mark}", markup=False)
            for finding in r.findings:
                console.print(f"  - {finding}", markup=False)
    if any(r.problem is not None for r in reports):
        raise typer.Exit(TenantStorageMissingError.exit_code)
    if any(not r.ok for r in reports):
        raise typer.Exit(6)


def register(app: typer.Typer) -> None:
    """Add the migration commands to ``app``."""
    app.add_typer(migrate_app, name="migrate")
