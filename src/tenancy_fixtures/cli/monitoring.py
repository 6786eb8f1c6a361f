"""Monitoring commands: monitor snapshot, monitor errors, forecast."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tenancy_fixtures.cli.context import console, err_console, print_json, run, state
from tenancy_fixtures.cli.tenants import validate_or_fail
from tenancy_fixtures.tenancy.sizes import format_size

if TYPE_CHECKING:
    from tenancy_fixtures.monitoring.error_analysis import ErrorAnalysis
    from tenancy_fixtures.monitoring.forecast import LimitForecast, TenantForecast
    from tenancy_fixtures.monitoring.usage import UsageSnapshot

__all__ = ["MAX_SINCE", "parse_since", "register"]

monitor_app = typer.Typer(help="Usage snapshots and the fleet's refusals.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]

_SINCE = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


#: The longest ``--since`` window, about a century: longer than any audit log, and the
#: instant it goes back to stays a date (a window of 10^8 days does not).
MAX_SINCE = timedelta(days=36_525)


def parse_since(text: str) -> timedelta:
    """``30m``, ``12h``, ``7d``, ``2w`` as a timedelta, at most :data:`MAX_SINCE`; exit
    2 otherwise."""
    found = _SINCE.match(text.strip())
    if found is None:
        err_console.print(f"error: --since {text!r:.40}: give a number and m, h, d or w (7d)")
        raise typer.Exit(2)
    try:
        window = timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})
    except (OverflowError, ValueError):  # past timedelta's range, or too many digits
        window = None
    if window is None or window > MAX_SINCE:
        err_console.print(
            f"error: --since {text!r:.40}: the longest window allowed is "
            f"{MAX_SINCE.days}d (about 100 years)"
        )
        raise typer.Exit(2)
    return window


def _limit_value(limit: str, value: float | int) -> str:
    return format_size(int(value)) if limit == "storage" else f"{value:,}"


@monitor_app.command("snapshot")
def snapshot(
    ctx: typer.Context,
    all_tenants: Annotated[bool, typer.Option("--all", help="Every registered tenant.")] = False,
    tenant: Annotated[
        list[str] | None, typer.Option("--tenant", "-t", help="A tenant (repeatable).")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Record each tenant's usage now in its history (run it from cron).

    Rows per table, bytes and the counters its limits name: forecasts between loads
    need them.

    Example: tenancy-fixtures monitor snapshot --all --json
    """
    if all_tenants == bool(tenant):
        err_console.print("error: give either --all or one or more --tenant/-t")
        raise typer.Exit(2)
    for tenant_id in tenant or []:
        validate_or_fail(tenant_id)
    chosen = None if all_tenants else list(tenant or [])
    taken: list[UsageSnapshot] = run(ctx, lambda manager: manager.usage_snapshots(chosen))
    if json_out:
        print_json([s.as_dict() for s in taken])
        return
    table = Table(title=f"usage of {len(taken)} tenant(s)")
    for column in ("tenant", "rows", "derived rows", "size", "counters"):
        table.add_column(column, justify="left" if column in ("tenant", "counters") else "right")
    for s in taken:
        counters = ", ".join(f"{k} {_limit_value(k, v)}" for k, v in sorted(s.counters.items()))
        table.add_row(
            s.tenant_id,
            f"{s.data_rows:,}",
            f"{s.derived_rows:,}",
            format_size(s.storage_bytes),
            counters,
        )
    console.print(table)


@monitor_app.command("errors")
def errors(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option(help="How far back: 30m, 12h, 7d, 2w (at most 36525d).")
    ] = "7d",
    json_out: JsonFlag = False,
) -> None:
    """Refused and failed operations grouped by tenant, rule and table, per day.

    Example: tenancy-fixtures monitor errors --since 30d --json
    """
    window = parse_since(since)
    analysis: ErrorAnalysis = run(ctx, lambda manager: manager.error_analysis(since=window))
    if not state(ctx).settings.audit_logging:
        err_console.print(
            "note: audit logging is off (TENANCY_AUDIT_LOGGING=false): refusals and "
            "failures are not being recorded, so they are not counted here",
            markup=False,
        )
    if json_out:
        print_json(analysis.as_dict())
        return
    table = Table(
        title=f"{analysis.refused} refused, {analysis.failed} failed since "
        f"{analysis.since:%Y-%m-%d %H:%M} UTC"
    )
    for column in ("tenant", "action", "error", "rule", "table", "refusals", "records", "last"):
        table.add_column(column, justify="right" if column in ("refusals", "records") else "left")
    for g in analysis.groups:
        table.add_row(
            g.tenant_id or "-",
            g.action,
            g.error,
            escape(g.rule or "-"),
            escape(g.table or "-"),
            f"{g.refusals:,}",
            f"{g.records:,}",
            g.last_at.strftime("%Y-%m-%d %H:%M") if g.last_at else "-",
        )
    console.print(table)


def _days(item: LimitForecast) -> str:
    if item.value >= item.maximum:
        return "reached"  # known without a trend: 0 days, even from one snapshot
    if item.slope_per_day is None:
        return "too few snapshots"
    if item.days_to_limit is None:
        return "not growing"
    low, high = item.days_earliest, item.days_latest
    band = f"{low:,.1f}-{'∞' if high is None else f'{high:,.1f}'}" if low is not None else "?"
    return f"{item.days_to_limit:,.1f} ({band})"


def forecast(
    ctx: typer.Context,
    tenant_id: Annotated[str | None, typer.Argument(help="The tenant to forecast.")] = None,
    all_tenants: Annotated[bool, typer.Option("--all", help="Every registered tenant.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Days until each limit is reached, and anomalies in load throughput and growth.

    The trend is Theil-Sen's over the usage snapshots, with a 90 % band from Sen's
    interval; anomalies are looked for in load throughput, duration and growth.

    Example: tenancy-fixtures forecast --all --json
    """
    if all_tenants == (tenant_id is not None):
        err_console.print("error: give either a TENANT or --all")
        raise typer.Exit(2)
    if tenant_id is not None:
        validate_or_fail(tenant_id)
    chosen = None if tenant_id is None else [tenant_id]
    forecasts: list[TenantForecast] = run(ctx, lambda manager: manager.forecast(chosen))
    if json_out:
        print_json([f.as_dict() for f in forecasts])
        return
    table = Table(title="days to limit (90 % band)")
    for column in ("tenant", "limit", "now", "maximum", "per day", "days", "points"):
        table.add_column(column, justify="left" if column in ("tenant", "limit") else "right")
    for f in forecasts:
        for item in f.limits:
            slope = item.slope_per_day
            table.add_row(
                f.tenant_id,
                item.limit,
                _limit_value(item.limit, item.value),
                _limit_value(item.limit, item.maximum),
                "-" if slope is None else _limit_value(item.limit, round(slope, 1)),
                _days(item),
                str(item.points),
            )
    console.print(table)
    _print_notes(forecasts)


def _print_notes(forecasts: list[TenantForecast]) -> None:
    """After the table: tenants with no snapshot to forecast from, and each anomaly."""
    unmeasured = [f.tenant_id for f in forecasts if not f.limits]
    if unmeasured:
        err_console.print(
            f"note: no usage snapshot of {', '.join(unmeasured[:5])}"
            f"{' and more' if len(unmeasured) > 5 else ''} yet, so nothing to forecast: "
            "a load takes one, and so does `tenancy-fixtures monitor snapshot`",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    for f in forecasts:
        for a in f.anomalies:
            console.print(
                f"anomaly: {a.tenant_id} {a.metric} {a.value:,.1f} at {a.at:%Y-%m-%d %H:%M} "
                f"(median {a.median:,.1f}, robust z {a.score:+.1f})"
                + (" [latest]" if a.latest else ""),
                markup=False,
            )


def register(app: typer.Typer) -> None:
    """Add the monitoring commands to ``app``."""
    app.add_typer(monitor_app, name="monitor")
    app.command("forecast")(forecast)
