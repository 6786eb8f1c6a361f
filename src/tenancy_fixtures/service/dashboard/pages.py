"""The dashboard's pages: what each shows, read through the same manager calls as the
API's routes, rendered by the templates beside this module."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from tenancy_fixtures.manager import FixtureManager
from tenancy_fixtures.monitoring.usage import STORAGE_LIMIT
from tenancy_fixtures.service.dashboard import plots
from tenancy_fixtures.store.api_tokens import ApiToken

__all__ = ["base_path", "errors_page", "render", "tenant_page", "tenants_page"]

PAGE_SIZE = 50
AUDIT_TAIL = 15
RUNS_PLOTTED = 200

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
)
_templates.filters["human"] = plots.human


def base_path(request: Request) -> str:
    """Where the dashboard is mounted, as the browser sees it (the mount sets
    ``root_path`` to the app's own root path plus ``/dashboard``)."""
    return str(request.scope.get("root_path", ""))


def render(
    request: Request,
    name: str,
    token: ApiToken | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Page ``name`` with the navigation ``token`` may follow."""
    base = base_path(request)
    html = _templates.get_template(name).render(base=base, token=token, unit=_unit, **context)
    return HTMLResponse(html, status_code=status_code)


def _unit(limit: str) -> str:
    return "B" if limit == STORAGE_LIMIT else ""


async def tenants_page(
    manager: FixtureManager, request: Request, token: ApiToken, page: int
) -> HTMLResponse:
    """Every tenant (a page at a time) with a bar per counted limit; one dropped since
    the page was listed is left out."""
    records = await manager.list_tenants(limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    total = await manager.count_tenants()
    ids = [r.tenant_id for r in records]
    usage = {u.tenant_id: u for u in await manager.latest_usage(ids, skip_missing=True)}
    warn = manager.settings.limit_warn_ratio
    rows = []
    for record in records:
        found = usage.get(record.tenant_id)
        if found is None:
            continue
        uses = found.limits.uses if found.limits else ()
        rows.append(
            {
                "tenant": record,
                "snapshot": found.snapshot,
                "bars": [(u, plots.usage_bar(u, warn, _unit(u.limit))) for u in uses],
                "breached": bool(found.limits and found.limits.breaches),
                "warned": bool(found.limits and found.limits.warnings),
            }
        )
    pages = max(1, -(-total // PAGE_SIZE))
    return render(request, "tenants.html", token, rows=rows, total=total, page=page, pages=pages)


async def tenant_page(
    manager: FixtureManager, request: Request, token: ApiToken, tenant_id: str
) -> HTMLResponse:
    """One tenant: rows per table, limits, load throughput, forecasts, audit tail."""
    status = await manager.tenant_status(tenant_id)
    (usage,) = await manager.latest_usage([tenant_id])
    runs, _ = await manager.runs(tenant_id, operation="load", limit=RUNS_PLOTTED)
    (forecast,) = await manager.forecast([tenant_id])
    history = await manager.usage_history(tenant_id)
    audit = await manager.audit_log(tenant_id, limit=AUDIT_TAIL)
    speeds = [
        (run.started_at, float(run.detail["performance"]["rows_per_second"]))
        for run in reversed(runs)
        if isinstance(run.detail.get("performance"), dict)
        and run.detail["performance"].get("rows_per_second") is not None
    ]
    slow = [a.at for a in forecast.anomalies if a.metric == "throughput"]
    forecasts = [
        {
            "forecast": item,
            "unit": _unit(item.limit),
            "plot": plots.forecast_plot(
                [
                    (s.taken_at, float(s.counters[item.limit]))
                    for s in history
                    if item.limit in s.counters
                ],
                item,
                _unit(item.limit),
            ),
        }
        for item in forecast.limits
    ]
    warn = manager.settings.limit_warn_ratio
    bars = [
        (u, plots.usage_bar(u, warn, _unit(u.limit)))
        for u in (usage.limits.uses if usage.limits else ())
    ]
    return render(
        request,
        "tenant.html",
        token,
        status=status,
        usage=usage,
        bars=bars,
        runs=runs[:10],
        throughput=plots.throughput_plot(speeds, slow),
        forecasts=forecasts,
        anomalies=forecast.anomalies,
        audit=audit,
        audit_logging=manager.settings.audit_logging,
    )


async def errors_page(
    manager: FixtureManager, request: Request, token: ApiToken, days: int
) -> HTMLResponse:
    """The fleet's refusals and failures of the last ``days``: per day, and grouped."""
    analysis = await manager.error_analysis(since=timedelta(days=days))
    per_day: dict[str, int] = {}
    for group in analysis.groups:
        for day, count in group.by_day.items():
            per_day[day] = per_day.get(day, 0) + count
    return render(
        request,
        "errors.html",
        token,
        analysis=analysis,
        audit_logging=manager.settings.audit_logging,
        days=days,
        plot=plots.bar_chart(per_day, "Refusals and failures per day"),
    )
