"""Tenant commands: init-tenant, list, show, cleanup, audit."""

from __future__ import annotations

import re
from contextlib import suppress
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from tenancy_fixtures.cli.context import (
    console,
    err_console,
    fail,
    key_values,
    print_json,
    run,
    say_unvalidated,
    state,
)
from tenancy_fixtures.errors import (
    ConfigError,
    InvalidTenantIdError,
    RetentionIncompleteError,
    TenantNotFoundError,
)
from tenancy_fixtures.ids import validate_tenant_id
from tenancy_fixtures.tenancy.sizes import format_size

if TYPE_CHECKING:
    from tenancy_fixtures.compliance.retention import RetentionReport
    from tenancy_fixtures.manager import FixtureManager
    from tenancy_fixtures.monitoring.monitor import TenantStatus
    from tenancy_fixtures.tenancy.config import TenantConfig
    from tenancy_fixtures.tenancy.tenants import TenantFixture

__all__ = ["JsonFlag", "SettingOption", "pairs", "register", "settings_of", "validate_or_fail"]

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
SettingOption = Annotated[
    list[str] | None,
    typer.Option(
        "--setting",
        "-s",
        help="Override a setting: KEY=VALUE (retention_days=null: keep events forever).",
    ),
]


def pairs(values: list[str], what: str) -> dict[str, Any]:
    """``--limit``/``--setting`` values, whole numbers (signed too) as integers: ``-1``
    stayed text, so a negative limit was refused as "not a valid integer"."""
    parsed = key_values(values, what, lambda message: ConfigError(message, key=what))
    return {k: int(v) if _WHOLE.fullmatch(v) else v for k, v in parsed.items()}


_WHOLE = re.compile(r"[+-]?[0-9]+")


def settings_of(values: list[str]) -> dict[str, Any]:
    """``--setting`` values as :func:`_pairs` reads them, ``null`` as ``None`` for a
    setting whose null means something (``retention_days=null``: keep events forever)."""
    from tenancy_fixtures.tenancy.config import NULLABLE_SETTINGS

    parsed = pairs(values, "setting")
    return {k: None if v == "null" and k in NULLABLE_SETTINGS else v for k, v in parsed.items()}


def init_tenant(
    ctx: typer.Context,
    tenant_id: Annotated[
        str,
        typer.Argument(help=r"Lowercase letter first, then \[a-z0-9_]."),
    ],
    tier: Annotated[str, typer.Option(help="free, premium or enterprise.")] = "free",
    feature: Annotated[
        list[str] | None, typer.Option("--feature", "-f", help="Turn on a feature flag.")
    ] = None,
    limit: Annotated[
        list[str] | None, typer.Option("--limit", "-l", help="Override a limit: KEY=VALUE.")
    ] = None,
    setting: SettingOption = None,
    load: Annotated[bool, typer.Option(help="Also load the tier's fixtures.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Create a tenant: isolated storage, schema and config (tables left empty).

    Example: tenancy-fixtures init-tenant acme_music --tier premium -l storage=200GB --load
    """
    from tenancy_fixtures.tenancy.tenants import TenantFixture

    limits = pairs(limit or [], "limit")
    settings = settings_of(setting or [])

    async def work(manager: FixtureManager) -> tuple[TenantConfig, int, int]:
        fixture = TenantFixture(
            tenant_id=tenant_id,
            tier=tier,
            features=feature or [],
            limits=limits,
            settings=settings,
        )
        return await _create(manager, fixture, load=load)

    config, rows, derived = run(ctx, work)
    validated = state(ctx).settings.data_validation
    if json_out:
        print_json(
            {
                "config": config.model_dump(mode="json"),
                "rows_loaded": rows,
                "derived_rows": derived,
            }
            | ({"validation": "on" if validated else "off"} if load else {})
        )
        return
    if load and not validated:
        say_unvalidated(tenant_id)
    console.print(
        f"created tenant [bold]{tenant_id}[/] ({config.tier}): "
        f"{len(config.features)} features, storage limit {format_size(config.limits.storage)}"
        + (f", {rows:,} rows loaded" if load else "")
        + (f" (+{derived:,} derived rows)" if derived else "")
    )


async def _create(
    manager: FixtureManager, fixture: TenantFixture, *, load: bool
) -> tuple[TenantConfig, int, int]:
    """Create the tenant and, with ``load``, load its tier's fixtures: all or nothing
    (the tenant goes with its refused or interrupted load, so the command can run
    again)."""
    config = await manager.create_tenant(fixture)
    if not load:
        return config, 0, 0
    try:
        report = await manager.load_fixtures(fixture.tenant_id)
    except BaseException:  # Ctrl-C arrives as the task's cancellation
        with suppress(Exception):  # the load's error is the one to show
            await manager.drop_tenant(fixture.tenant_id)
        raise
    return config, report.rows, report.derived_rows


def list_tenants(
    ctx: typer.Context,
    prefix: Annotated[str | None, typer.Option(help="Only ids starting with this.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """List tenants with tier, rows and size.

    Example: tenancy-fixtures list --prefix demo_ --json
    """

    async def work(manager: FixtureManager) -> list[TenantStatus]:
        statuses = []
        for record in await manager.list_tenants(prefix=prefix):
            with suppress(TenantNotFoundError):  # dropped since it was listed
                statuses.append(await manager.tenant_status(record.tenant_id, report_missing=True))
        return statuses

    statuses = run(ctx, work)
    for s in statuses:
        if s.problem:
            err_console.print(
                f"warning: tenant '{s.tenant.tenant_id}' is {s.problem}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
    if json_out:
        print_json([s.as_dict() for s in statuses])
        return
    table = Table(title=f"{len(statuses)} tenant(s)")
    numbers = ("rows", "derived rows", "size")
    for column in ("tenant", "tier", "revision", *numbers, "fixtures", "created"):
        table.add_column(column, justify="right" if column in numbers else "left")
    for s in statuses:
        table.add_row(
            escape(s.tenant.tenant_id),
            escape(s.tenant.tier),
            escape(s.revision or "-"),
            *(
                ("-", "-", _problem_cell(s.problem), "-")
                if s.problem
                else (
                    f"{s.rows:,}",
                    f"{s.derived_rows:,}",
                    format_size(s.storage_bytes),
                    escape(", ".join(s.fixtures)),
                )
            ),
            s.tenant.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)


def _problem_cell(problem: str) -> str:
    """What ``list`` shows for a tenant it could not read (``problem`` says why)."""
    from tenancy_fixtures.monitoring.monitor import UNREADABLE

    return UNREADABLE if problem.startswith(UNREADABLE) else "storage missing"


def show(
    ctx: typer.Context,
    tenant_id: Annotated[str, typer.Argument(help="The tenant to show.")],
    json_out: JsonFlag = False,
) -> None:
    """Show one tenant: config, applied fixtures and rows per table.

    Example: tenancy-fixtures show demo_premium --json
    """
    validate_or_fail(tenant_id)
    status = run(ctx, lambda manager: manager.tenant_status(tenant_id))
    if json_out:
        print_json(status.as_dict())
        return
    config = status.config or {}
    console.print(
        f"[bold]{escape(tenant_id)}[/]  tier {escape(status.tenant.tier)}  "
        f"size {format_size(status.storage_bytes)}"
        + (f"  revision {escape(status.revision)}" if status.revision else "")
    )
    console.print(f"rows {status.rows:,} (+{status.derived_rows:,} derived rows)")
    console.print("features: " + ", ".join(config.get("features", [])))
    limits = config.get("limits", {})
    console.print(
        "limits: "
        + ", ".join(f"{k}={format_size(v) if k == 'storage' else v}" for k, v in limits.items())
    )
    fixtures = Table(title="applied fixtures")
    for column in ("fixture", "kind", "rows", "checksum", "applied"):
        fixtures.add_column(column)
    for name, fixture in status.fixtures.items():
        fixtures.add_row(
            escape(name),
            fixture.kind,
            f"{sum(fixture.row_counts.values()):,}",
            fixture.checksum[:12],
            fixture.applied_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    console.print(fixtures)
    rows = Table(title="rows per table")
    rows.add_column("table")
    rows.add_column("rows", justify="right")
    for table_name, count in status.row_counts.items():
        derived = " (derived)" if table_name in status.derived_tables else ""
        rows.add_row(table_name + derived, f"{count:,}")
    console.print(rows)


# shape: one Typer option a parameter; the --expired branch is a function of its own
def cleanup(
    ctx: typer.Context,
    tenant_id: Annotated[str | None, typer.Argument(help="The tenant to drop.")] = None,
    prefix: Annotated[
        str | None, typer.Option(help="Drop every tenant whose id starts with this.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    expired: Annotated[
        bool,
        typer.Option(
            "--expired",
            help="Drop no tenant: purge events older than retention_days (all tenants, or "
            "TENANT / --prefix).",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="With --expired: count, purge nothing.")
    ] = False,
) -> None:
    """Drop tenants entirely, or (--expired) purge their events past retention.

    Dropping removes the schema or file, registry rows, runs, reject files and cached
    config; their audit records keep who did what when and how it ended, nothing more.
    --prefix also drops storage nothing registers (what validate-data --all reports).
    --expired instead purges each tenant's events older than its retention_days, once
    their counts are shown and confirmed (--yes: at once).

    Example: tenancy-fixtures cleanup --prefix demo_ --yes
    Example: tenancy-fixtures cleanup --expired --dry-run
    """
    if expired or dry_run:
        _purge_expired(ctx, tenant_id, prefix, expired=expired, dry_run=dry_run, yes=yes)
        return
    if (tenant_id is None) == (prefix is None) or prefix == "":
        err_console.print("error: give either a TENANT or a non-empty --prefix")
        raise typer.Exit(2)
    if tenant_id is not None:
        validate_or_fail(tenant_id)

    async def targets(manager: FixtureManager) -> list[str]:
        if tenant_id is not None:
            if not await manager.store.storage_exists(tenant_id):
                await manager.get_tenant(tenant_id)
            return [tenant_id]
        assert prefix is not None
        registered = [t.tenant_id for t in await manager.list_tenants(prefix=prefix)]
        mismatch = await manager.store.registry_mismatch()
        return sorted({*registered, *(t for t in mismatch.unregistered if t.startswith(prefix))})

    names = run(ctx, targets)
    if not names:
        console.print(f"no tenant starts with {prefix!r}; nothing to do", markup=False)
        return
    if not yes:
        _ask(
            f"Drop {len(names)} tenant(s) ({', '.join(names[:5])}"
            f"{'...' if len(names) > 5 else ''}) and all their data?",
            declined="nothing dropped",
        )

    async def drop(manager: FixtureManager) -> int:
        dropped = 0
        for name in names:
            try:
                await manager.drop_tenant(name)
            except TenantNotFoundError:
                if tenant_id is not None:
                    raise
                continue  # another process dropped it since it was listed
            dropped += 1
        return dropped

    console.print(f"dropped {run(ctx, drop)} tenant(s)")


#: A retention run's reports, and the error naming the tenants it could not purge.
_Retention = tuple[list["RetentionReport"], RetentionIncompleteError | None]


def _purge_expired(
    ctx: typer.Context,
    tenant_id: str | None,
    prefix: str | None,
    *,
    expired: bool,
    dry_run: bool,
    yes: bool,
) -> None:
    """``cleanup --expired``: retention for one tenant, a prefix, or every tenant. Unless
    ``yes``, what has expired is counted and shown, and the purge waits for a yes."""
    if not expired:
        err_console.print("error: --dry-run goes with --expired")
        raise typer.Exit(2)
    if (tenant_id is not None and prefix is not None) or prefix == "":
        err_console.print(
            "error: give either a TENANT or a non-empty --prefix (neither: every tenant)"
        )
        raise typer.Exit(2)
    if tenant_id is not None:
        validate_or_fail(tenant_id)
    now = datetime.now(UTC)  # one cutoff: the purge takes what the count showed

    async def purge(manager: FixtureManager, *, dry: bool) -> _Retention:
        tenants = [tenant_id] if tenant_id is not None else None
        if prefix:
            tenants = [t.tenant_id for t in await manager.list_tenants(prefix=prefix)]
        try:
            return await manager.purge_expired(tenants, dry_run=dry, now=now), None
        except RetentionIncompleteError as exc:  # the others' reports, then the error
            return exc.reports, exc

    if not dry_run and not yes and not _confirmed(*run(ctx, partial(purge, dry=True))):
        return
    reports, failed = run(ctx, partial(purge, dry=dry_run))
    _print_retention(reports, dry_run=dry_run)
    if failed:
        fail(failed)


def _confirmed(counted: list[RetentionReport], failed: RetentionIncompleteError | None) -> bool:
    """Show what has expired and ask to purge it (exit 1 on a no); ``False``: nothing
    has expired. Tenants that could not be counted are named in a warning, or in the
    error that ends the command when nothing else has expired."""
    _print_retention(counted, dry_run=True)
    total = sum(r.total for r in counted)
    if failed and not total:
        fail(failed)
    if failed:
        err_console.print(f"warning: {failed}", markup=False, highlight=False, soft_wrap=True)
    if not total:
        console.print("nothing has expired; nothing to purge")
        return False
    holding = sum(1 for r in counted if r.total)
    _ask(f"Purge {total:,} expired row(s) of {holding} tenant(s)?", declined="nothing purged")
    return True


def _ask(question: str, *, declined: str) -> None:
    """Go on only on a yes; a no, or no answer (stdin not a terminal, closed), says what
    did not happen and how to skip the question, and exits 1."""
    try:
        if typer.confirm(question):
            return
    except typer.Abort:
        pass
    err_console.print(
        f"{declined}: answer y, or pass --yes where no one can answer", markup=False, level="error"
    )
    raise typer.Exit(1)


def _print_retention(reports: list[RetentionReport], *, dry_run: bool) -> None:
    """The table of a retention run (or count) and its one-line total."""
    table = Table(title="expired events" + (" (dry run: nothing purged)" if dry_run else ""))
    for column in ("tenant", "retention days", "cutoff", "rows"):
        table.add_column(column)
    for r in reports:
        table.add_row(
            r.tenant_id,
            str(r.retention_days or "-"),
            r.cutoff.strftime("%Y-%m-%d %H:%M") if r.cutoff else "keeps all",
            ", ".join(f"{name} {count:,}" for name, count in r.purged.items()) or "-",
        )
    console.print(table)
    verb = "would purge" if dry_run else "purged"
    console.print(f"{verb} {sum(r.total for r in reports):,} row(s) in {len(reports)} tenant(s)")


def warm_up(
    ctx: typer.Context,
    spares: Annotated[
        int, typer.Option(min=0, max=100_000, help="Spare schemas to keep (PostgreSQL).")
    ] = 20,
) -> None:
    """Prepare fast provisioning: spare pre-built schemas (PostgreSQL), a template file (SQLite).

    Example: tenancy-fixtures warm-up --spares 50
    """
    created = run(ctx, lambda manager: manager.warm_up(spares))
    if state(ctx).settings.backend == "sqlite":
        console.print(
            "ready: new tenants are copied from the template file (SQLite keeps no spare "
            "schemas; --spares is for PostgreSQL)"
        )
    else:
        console.print(f"ready: {created} spare schema(s) created, {spares} wanted in the pool")


def validate_or_fail(tenant_id: str) -> None:
    """Exit with the typed error's message if ``tenant_id`` is not a valid id."""
    try:
        validate_tenant_id(tenant_id)
    except InvalidTenantIdError as exc:
        fail(exc)


def register(app: typer.Typer) -> None:
    """Add the tenant commands to ``app``."""
    app.command("init-tenant")(init_tenant)
    app.command("list")(list_tenants)
    app.command("show")(show)
    app.command("cleanup")(cleanup)
    app.command("warm-up")(warm_up)
