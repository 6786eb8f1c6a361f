"""Service tokens: token create, token list, token revoke."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tenancy_fixtures.cli.context import console, err_console, print_json, run
from tenancy_fixtures.cli.tenants import validate_or_fail

if TYPE_CHECKING:
    from tenancy_fixtures.manager import FixtureManager
    from tenancy_fixtures.store.api_tokens import ApiToken
    from tenancy_fixtures.tenancy.tokens import IssuedToken

__all__ = ["register"]

token_app = typer.Typer(
    help="Bearer tokens of the HTTP service (`serve`): create, list, revoke.",
    no_args_is_help=True,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


async def _tokens(manager: FixtureManager, tenant_id: str | None, revoked: bool) -> list[ApiToken]:
    """The tokens to list; a tenant that is not registered is a not-found (exit 4), not
    an empty list."""
    if tenant_id is not None:
        await manager.get_tenant(tenant_id)
    return await manager.list_tokens(tenant_id=tenant_id, include_revoked=revoked)


def _document(token: ApiToken) -> dict[str, object]:
    return {
        "token_id": token.token_id,
        "tenant_id": token.tenant_id,
        "scope": token.scope,
        "name": token.name,
        "created_at": token.created_at.isoformat(),
        "created_by": token.created_by,
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
    }


@token_app.command("create")
def create(
    ctx: typer.Context,
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", "-t", help="Only this tenant; without it, the whole fleet."),
    ] = None,
    scope: Annotated[
        str, typer.Option(help="read, write (config, loads, validation) or admin (create/delete).")
    ] = "read",
    name: Annotated[str, typer.Option(help="What the token is for (shown by token list).")] = "",
    json_out: JsonFlag = False,
) -> None:
    """Make a token and print it once: only a digest of it is kept.

    Example: tenancy-fixtures token create --tenant acme_music --scope write --name ci
    """
    if tenant is not None:
        validate_or_fail(tenant)

    async def work(manager: FixtureManager) -> IssuedToken:
        return await manager.create_token(scope=scope, tenant_id=tenant, name=name)

    issued = run(ctx, work)
    if json_out:
        print_json({**_document(issued.token), "token": issued.bearer})
        return
    who = f"tenant {issued.token.tenant_id}" if issued.token.tenant_id else "the whole fleet"
    err_console.print(
        f"token {issued.token.token_id} ({issued.token.scope}, {who}); "
        "it is shown only now — keep it:",
        highlight=False,
    )
    typer.echo(issued.bearer)


@token_app.command("list")
def list_tokens(
    ctx: typer.Context,
    tenant: Annotated[
        str | None, typer.Option("--tenant", "-t", help="Only this tenant's.")
    ] = None,
    revoked: Annotated[bool, typer.Option("--revoked", help="Include revoked tokens.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """List tokens (never their secrets).

    Example: tenancy-fixtures token list --tenant acme_music
    """
    if tenant is not None:
        validate_or_fail(tenant)
    tokens = run(ctx, lambda manager: _tokens(manager, tenant, revoked))
    if json_out:
        print_json([_document(t) for t in tokens])
        return
    table = Table(title=f"{len(tokens)} token(s)")
    for column in ("id", "tenant", "scope", "name", "created", "by", "revoked"):
        table.add_column(column)
    for t in tokens:
        table.add_row(
            t.token_id,
            t.tenant_id or "(fleet)",
            t.scope,
            escape(t.name),
            t.created_at.strftime("%Y-%m-%d %H:%M"),
            escape(t.created_by),
            t.revoked_at.strftime("%Y-%m-%d %H:%M") if t.revoked_at else "",
        )
    console.print(table)


@token_app.command("revoke")
def revoke(
    ctx: typer.Context,
    token_id: Annotated[
        str, typer.Argument(help="The token's id (token list shows it), or the token itself.")
    ],
) -> None:
    """Revoke a token: requests bearing it are refused from now on.

    Example: tenancy-fixtures token revoke 3f9c2a7b1d0e4c56
    """
    token = run(ctx, lambda manager: manager.revoke_token(token_id))
    console.print(f"revoked token {token.token_id}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the ``token`` group to ``app``."""
    app.add_typer(token_app, name="token")
