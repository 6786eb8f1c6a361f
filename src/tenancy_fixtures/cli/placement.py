"""Placement commands for a distributed store (Citus): placement, move-tenant, rebalance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tenancy_fixtures.cli.context import console, err_console, print_json, run
from tenancy_fixtures.cli.tenants import validate_or_fail
from tenancy_fixtures.tenancy.sizes import format_size

if TYPE_CHECKING:
    from tenancy_fixtures.manager import FixtureManager
    from tenancy_fixtures.store.placement import Node, PlannedMove, TenantPlacement

__all__ = ["register"]

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
Mode = Annotated[
    str,
    typer.Option(
        "--mode",
        help="How shards are copied: auto (online, by logical replication), "
        "force_logical, or block_writes (writes wait during the copy).",
    ),
]
_MODES = ("auto", "force_logical", "block_writes")


def _check_mode(mode: str) -> None:
    if mode not in _MODES:
        raise typer.BadParameter(f"choose one of {', '.join(_MODES)}", param_hint="--mode")


def placement(
    ctx: typer.Context,
    prefix: Annotated[str | None, typer.Option(help="Only ids starting with this.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Show which node holds each tenant, and its size (Citus).

    Example: tenancy-fixtures placement --json
    """

    async def work(manager: FixtureManager) -> list[TenantPlacement]:
        return await manager.placements(prefix=prefix)

    placed = run(ctx, work)
    if json_out:
        print_json([p.as_dict() for p in placed])
        return
    table = Table(title=f"{len(placed)} tenant(s)")
    for column in ("tenant", "node", "node id", "tables", "size"):
        table.add_column(column, justify="right" if column in ("tables", "size") else "left")
    for p in placed:
        table.add_row(
            p.tenant_id,
            "coordinator (not distributed)" if p.node is None else str(p.node),
            "-" if p.node is None else str(p.node.node_id),
            str(p.tables),
            format_size(p.bytes),
        )
    console.print(table)


def move_tenant(
    ctx: typer.Context,
    tenant_id: Annotated[str, typer.Argument(help="The tenant to move.")],
    node: Annotated[str, typer.Argument(help="Target worker: its node id or host:port.")],
    mode: Mode = "auto",
    json_out: JsonFlag = False,
) -> None:
    """Move one tenant to another node while it stays in use (Citus), audited.

    Example: tenancy-fixtures move-tenant acme_music 127.0.0.1:9702
    """
    validate_or_fail(tenant_id)
    _check_mode(mode)

    async def work(manager: FixtureManager) -> tuple[Node, Node]:
        return await manager.move_tenant(tenant_id, node, mode=mode)

    source, target = run(ctx, work)
    if json_out:
        print_json({"tenant_id": tenant_id, "from": str(source), "to": str(target)})
    elif source == target:
        console.print(f"{tenant_id} is already on {target}: nothing moved")
    else:
        console.print(f"moved [bold]{tenant_id}[/] from {source} to {target}")


def _print_plan(plan: list[PlannedMove]) -> None:
    if not plan:
        console.print("the tenants are balanced: nothing to move")
        return
    table = Table(title=f"rebalance plan: {len(plan)} move(s)")
    for column in ("tenant", "from", "to", "size"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for move in plan:
        who = move.tenant_id or f"{move.schema} (no tenant)"
        table.add_row(escape(who), move.source, move.target, format_size(move.bytes))
    console.print(table)


def rebalance(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Make the moves.")] = False,
    mode: Mode = "auto",
    json_out: JsonFlag = False,
) -> None:
    """Even tenants out over the nodes with Citus's rebalancer.

    Prints the plan, and makes the moves with --yes (online, audited).

    Example: tenancy-fixtures rebalance --yes
    """
    _check_mode(mode)

    async def work(manager: FixtureManager) -> list[PlannedMove]:
        plan = await manager.rebalance_plan()
        if not json_out:
            _print_plan(plan)
        if yes and plan:
            return await manager.rebalance(mode=mode)
        return plan

    plan = run(ctx, work)
    if json_out:
        print_json({"moves": [m.as_dict() for m in plan], "done": yes})
    elif plan and yes:
        console.print(f"rebalanced: {len(plan)} tenant(s) moved")
    elif plan:
        err_console.print("nothing moved: run again with --yes to make these moves")


def register(app: typer.Typer) -> None:
    """Add the placement commands to ``app``."""
    app.command("placement")(placement)
    app.command("move-tenant")(move_tenant)
    app.command("rebalance")(rebalance)
