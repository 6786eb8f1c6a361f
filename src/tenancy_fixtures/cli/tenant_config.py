"""The ``config`` command: read or change an existing tenant's config from a shell."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from tenancy_fixtures.cli.context import console, err_console, print_json, run
from tenancy_fixtures.cli.tenants import (
    JsonFlag,
    SettingOption,
    pairs,
    settings_of,
    validate_or_fail,
)

if TYPE_CHECKING:
    from tenancy_fixtures.manager import FixtureManager
    from tenancy_fixtures.tenancy.config import TenantConfig

__all__ = ["register"]


def config(
    ctx: typer.Context,
    tenant_id: Annotated[str, typer.Argument(help="The tenant whose config to read or change.")],
    tier: Annotated[
        str | None, typer.Option(help="Move to this tier (its defaults, your overrides on top).")
    ] = None,
    feature: Annotated[
        list[str] | None,
        typer.Option(
            "--feature", "-f", help="The extra feature flags beyond the tier's (replaces them)."
        ),
    ] = None,
    no_features: Annotated[
        bool, typer.Option("--no-features", help="Drop every extra feature flag.")
    ] = False,
    limit: Annotated[
        list[str] | None, typer.Option("--limit", "-l", help="Override a limit: KEY=VALUE.")
    ] = None,
    setting: SettingOption = None,
    json_out: JsonFlag = False,
) -> None:
    """Show a tenant's config, or change part of it (audited; other overrides kept).

    Lowering a limit below what the tenant holds is refused (exit 10).

    Example: tenancy-fixtures config acme_music --tier premium -l users=500
    """
    validate_or_fail(tenant_id)
    if no_features and feature:  # which was meant? --no-features won, -f went unheard
        err_console.print("error: give -f/--feature or --no-features, not both")
        raise typer.Exit(2)
    limits = pairs(limit or [], "limit")
    settings = settings_of(setting or [])
    features = [] if no_features else feature
    changing = bool(tier or features is not None or limits or settings)

    async def work(manager: FixtureManager) -> TenantConfig:
        if not changing:
            return await manager.get_tenant_config(tenant_id)
        return await manager.update_tenant_config(
            tenant_id,
            tier=tier,
            features=features,
            limits=limits or None,
            settings=settings or None,
        )

    found = run(ctx, work)
    if json_out:
        print_json(found.model_dump(mode="json"))
        return
    verb = "changed" if changing else "config of"
    console.print(f"{verb} [bold]{escape(tenant_id)}[/]: tier {escape(found.tier)}")
    console.print("features: " + escape(", ".join(found.features) or "none"))
    limits = found.describe_limits()
    console.print("limits: " + escape(", ".join(f"{k}={v}" for k, v in limits.items())))
    console.print(
        "settings: "
        + escape(", ".join(f"{k}={_text(v)}" for k, v in found.settings.items()) or "none")
    )


def register(app: typer.Typer) -> None:
    """Add the ``config`` command to ``app``."""
    app.command("config")(config)


def _text(value: object) -> str:
    """A setting's value as typed on the command line (``null``: unset, keep forever)."""
    return "null" if value is None else str(value)
