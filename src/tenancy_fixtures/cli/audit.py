"""Audit and key commands: audit (the log, newest first), audit verify, audit head,
keys rewrap."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from tenancy_fixtures.cli.context import console, err_console, print_json, run, state
from tenancy_fixtures.cli.tenants import validate_or_fail

if TYPE_CHECKING:
    from tenancy_fixtures.manager import FixtureManager
    from tenancy_fixtures.store.audit_chain import ChainReport
    from tenancy_fixtures.store.control_plane import AuditRecord

__all__ = ["BROKEN_CHAIN_EXIT", "UNDECRYPTABLE_EXIT", "register"]

#: Exit code of ``audit verify`` when a link is broken.
#: Not 10, which says a load would pass a hard limit of the tier.
BROKEN_CHAIN_EXIT = 12
#: Exit code of ``keys rewrap`` when some token decrypts with no key given.
UNDECRYPTABLE_EXIT = 13

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


class _TenantOrCommand(TyperGroup):
    """``audit TENANT`` lists one tenant's records, after options too (``audit --json
    acme``); ``audit verify`` and ``audit head`` are commands, so a tenant of either
    name is ``audit --tenant verify``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        at = self._first_positional(args)
        if at is not None and args[at] not in self.commands:
            args = [*args[:at], "--tenant", args[at], *args[at + 1 :]]
        return super().parse_args(ctx, args)

    def _first_positional(self, args: list[str]) -> int | None:
        """Where the first argument that is neither an option nor its value is."""
        valued = {
            name
            for param in self.params
            if param.param_type_name == "option"
            and not (getattr(param, "is_flag", False) or getattr(param, "count", False))
            for name in param.opts
        }
        at = 0
        while at < len(args) and args[at] != "--":
            if not args[at].startswith("-"):
                return at
            at += 2 if args[at] in valued else 1
        return None


audit_app = typer.Typer(
    cls=_TenantOrCommand,
    invoke_without_command=True,
    no_args_is_help=False,
    subcommand_metavar="[TENANT | COMMAND [ARGS]...]",
)


@audit_app.callback()
def audit(
    ctx: typer.Context,
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant", "-t", help="Only this tenant; needed for a tenant named verify or head."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    json_out: JsonFlag = False,
) -> None:
    """Show the audit log, newest first; verify its hash chain; print its head.

    audit TENANT lists one tenant's records; verify and head are the chain's commands,
    so a tenant named verify or head is listed with audit --tenant verify (or -t).

    Example: tenancy-fixtures audit demo_free --limit 10
    """
    if ctx.invoked_subcommand is not None:
        return
    if tenant is not None:
        validate_or_fail(tenant)
    records = run(ctx, lambda manager: _audit_records(manager, tenant, limit))
    if not state(ctx).settings.audit_logging:
        err_console.print(
            "note: audit logging is off (TENANCY_AUDIT_LOGGING=false): operations are not "
            "being recorded",
            markup=False,
        )
    if json_out:
        print_json([vars(r) for r in records])
        return
    table = Table(title="audit log")
    for column in ("at", "actor", "action", "tenant", "outcome", "run"):
        table.add_column(column)
    for r in records:
        table.add_row(
            r.at.strftime("%Y-%m-%d %H:%M:%S"),
            escape(r.actor),
            escape(r.action),
            r.tenant_id or "",
            r.outcome,
            (r.run_id or "")[:8],
        )
    console.print(table)


async def _audit_records(
    manager: FixtureManager, tenant_id: str | None, limit: int
) -> list[AuditRecord]:
    """The audit log's newest records; a tenant that is not registered and was never
    audited (never existed) is a :class:`TenantNotFoundError`. A dropped tenant keeps
    its minimal trail, so it is shown."""
    records = await manager.audit_log(tenant_id, limit=limit)
    if tenant_id is not None and not records:
        await manager.get_tenant(tenant_id)  # raises TenantNotFoundError
    return records


def _report(report: ChainReport) -> dict[str, Any]:
    broken = report.broken
    return {
        "ok": report.ok,
        "checked": report.checked,
        "unchained": report.unchained,
        "head_seq": report.head_seq,
        "head_hash": report.head_hash,
        "broken": None
        if broken is None
        else {"audit_id": broken.audit_id, "seq": broken.seq, "reason": broken.reason},
    }


@audit_app.command("verify")
def verify(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Walk the audit log's hash chain; name the first broken link and exit 12 if any.

    Example: tenancy-fixtures audit verify
    """
    report = run(ctx, lambda manager: manager.verify_audit())
    if json_out:
        print_json(_report(report))
    elif report.broken is None:
        console.print(
            f"audit chain intact: {report.checked} record(s) linked"
            + (f", {report.unchained} sealed from before the chain" if report.unchained else "")
            + f"; head {report.head_seq} {report.head_hash}"
        )
    else:
        err_console.print(f"audit chain broken at {report.broken}", markup=False, level="error")
    if report.broken is not None:
        raise typer.Exit(BROKEN_CHAIN_EXIT)


@audit_app.command("head")
def head(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Print the chain's head (position and hash), to anchor it somewhere else.

    Example: tenancy-fixtures audit head
    """
    seq, digest = run(ctx, lambda manager: manager.audit_head())
    if json_out:
        print_json({"seq": seq, "hash": digest})
        return
    console.print(f"{seq} {digest}", markup=False)


keys_app = typer.Typer(help="Tenants' data keys (crypto-shredding).", no_args_is_help=True)


@keys_app.command("rewrap")
def rewrap(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Re-wrap every tenant's data key with the first key of TENANCY_SECRET_KEY.

    Tokens only an old master key decrypts are re-encrypted with it too.

    Rotate the master key: put the new key first (old keys after it), run this, then
    remove the old keys. Exits 13, naming the tenants, if some token decrypts with no
    key given (it is lost unless the key that made it comes back).

    Example: TENANCY_SECRET_KEY=NEW,OLD tenancy-fixtures keys rewrap
    """
    report = run(ctx, lambda manager: manager.rewrap_keys())
    if json_out:
        print_json(report.as_dict())
    else:
        moved = sum(report.reencrypted.values())
        console.print(
            f"re-wrapped {len(report.rewrapped)} tenant data key(s); re-encrypted {moved} "
            "token(s) from the master key to their tenant's data key"
        )
        for tenant_id, count in report.reencrypted.items():
            if count:
                console.print(f"  {tenant_id}: {count} token(s) re-encrypted", markup=False)
    if not report.complete:
        lost = ", ".join(f"{t} ({n})" for t, n in report.undecryptable.items() if n)
        err_console.print(
            f"token(s) that no key in TENANCY_SECRET_KEY decrypts: {lost}; keep the old keys "
            "until the key that made them is found, or load them again",
            markup=False,
            level="error",
        )
        raise typer.Exit(UNDECRYPTABLE_EXIT)


def register(app: typer.Typer) -> None:
    """Add the audit and key commands to ``app``."""
    app.add_typer(audit_app, name="audit")
    app.add_typer(keys_app, name="keys")
