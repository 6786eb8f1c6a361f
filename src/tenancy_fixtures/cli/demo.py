"""The demo command: three tenants (free, premium, enterprise) end to end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import TaskID
from rich.table import Table

from tenancy_fixtures.cli.context import UNTIMED, console, print_json, run, state
from tenancy_fixtures.cli.fixtures import load_progress
from tenancy_fixtures.tenancy.sizes import format_size

if TYPE_CHECKING:
    from tenancy_fixtures.fixtures.context import ProgressCallback
    from tenancy_fixtures.manager import FixtureManager
    from tenancy_fixtures.settings import Settings
    from tenancy_fixtures.spotify.demo import DemoResult

__all__ = ["register"]


def demo(
    ctx: typer.Context,
    reset: Annotated[bool, typer.Option(help="Drop the demo tenants first if they exist.")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Create three demo tenants (free, premium, enterprise), load, validate, summarise.

    Example: TENANCY_DATABASE_URL=postgresql+asyncpg://127.0.0.1:5432/test tenancy-fixtures demo
    """
    from tenancy_fixtures.spotify.demo import DEMO_TENANTS, run_demo

    settings = state(ctx).settings
    with load_progress(disable=json_out) as progress:
        callbacks: dict[str, ProgressCallback] = {}
        for tenant in DEMO_TENANTS:
            task = progress.add_task(f"{tenant.tenant_id}", total=None)

            def advance(_table: str, rows: int, task: TaskID = task) -> None:
                progress.advance(task, rows)

            callbacks[tenant.tenant_id] = advance

        async def work(manager: FixtureManager) -> list[DemoResult]:
            return await run_demo(manager, reset=reset, progress_for=callbacks)

        results = run(ctx, work)
        for task in progress.task_ids:
            progress.update(task, total=progress.tasks[task].completed)
    timed = settings.performance_monitoring
    if json_out:
        print_json([_result_json(r, timed=timed) for r in results])
        return
    console.print(_summary(results, settings))
    if not timed:
        console.print(f"create and load {UNTIMED}", markup=False)
    console.print("all demo tenants validated: row counts match, no orphans")


def _result_json(result: DemoResult, *, timed: bool) -> dict[str, object]:
    """A demo tenant for ``--json``; its seconds are null when not ``timed``
    (performance monitoring off), as ``load-fixtures --json`` says."""
    config = result.config
    return {
        "tenant_id": config.tenant_id,
        "tier": config.tier,
        "features": list(config.features),
        "limits": config.describe_limits(),
        "tables": result.tables,
        "rows": result.rows,
        "derived_rows": result.derived_rows,
        "create_seconds": round(result.create_seconds, 4) if timed else None,
        "load_seconds": round(result.load_seconds, 4) if timed else None,
        "monitoring": "on" if timed else "off",
        "valid": result.validation_ok,
    }


def _summary(results: list[DemoResult], settings: Settings) -> Table:
    """A row per demo tenant: tier, features, limits, tables, rows and timings (none
    with performance monitoring off: nothing is timed then)."""
    table = Table(title=f"demo tenants on {settings.backend} ({settings.safe_database_url()})")
    timed = settings.performance_monitoring
    numbers = ("tables", "rows", "derived rows", *(("create", "load") if timed else ()))
    for column in ("tenant", "tier", "features", "limits", *numbers):
        table.add_column(
            column,
            justify="right" if column in numbers else "left",
            no_wrap=True,
        )
    for r in results:
        limits = r.config.limits
        took = [f"{r.create_seconds * 1000:.0f} ms", f"{r.load_seconds * 1000:.0f} ms"]
        table.add_row(
            r.config.tenant_id,
            r.config.tier,
            "\n".join(r.config.features),
            f"api_calls {limits.api_calls:,}\nstorage {format_size(limits.storage)}\n"
            f"users {limits.users:,}",
            str(r.tables),
            f"{r.rows:,}",
            f"{r.derived_rows:,}",
            *(took if timed else ()),
        )
    return table


def register(app: typer.Typer) -> None:
    """Add the demo command to ``app``."""
    app.command("demo")(demo)
