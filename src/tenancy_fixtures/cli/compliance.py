"""Data-subject commands: export (access and portability), erase and erase --verify."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tenancy_fixtures.cli.context import console, err_console, print_json, run, state
from tenancy_fixtures.cli.tenants import validate_or_fail
from tenancy_fixtures.errors import SubjectNotFoundError

if TYPE_CHECKING:
    from tenancy_fixtures.compliance.erasure import ErasureReport
    from tenancy_fixtures.compliance.erasure_check import ErasureCheck
    from tenancy_fixtures.compliance.export import ExportReport
    from tenancy_fixtures.manager import FixtureManager

__all__ = ["REMNANTS_EXIT", "register"]

#: Exit code of ``erase --verify`` when something of the subject is left. With nothing
#: left but no erasure of the id on record, it exits 4 (not found) instead.
REMNANTS_EXIT = 11

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def export(
    ctx: typer.Context,
    tenant_id: Annotated[str, typer.Argument(help="The tenant to export.")],
    out: Annotated[Path, typer.Argument(help="A new directory, or a file ending in .tar.gz.")],
    subject: Annotated[
        str | None, typer.Option("--subject", help="Only the rows that reach this person.")
    ] = None,
    pseudonymise: Annotated[
        bool,
        typer.Option("--pseudonymise", help="Replace personal columns with keyed HMACs."),
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Export a tenant's data (or one person's) as a fixture set with a manifest.

    The manifest holds row counts and checksums; load the set elsewhere with
    load-fixtures TENANT OUT. Needs the tenant's data_export feature.

    Example: tenancy-fixtures export demo_premium ./export --subject user_0001
    """
    validate_or_fail(tenant_id)

    async def work(manager: FixtureManager) -> ExportReport:
        return await manager.export_tenant(
            tenant_id, out, subject=subject, pseudonymise=pseudonymise
        )

    report = run(ctx, work)
    if json_out:
        print_json(report.as_dict())
        return
    table = Table(title=f"export of {tenant_id}" + (" (pseudonymised)" if pseudonymise else ""))
    for column in ("table", "rows", "checksum"):
        table.add_column(column)
    for name, rows in report.rows.items():
        table.add_row(name, f"{rows:,}", report.checksums[name])
    console.print(table)
    # A path is no markup: "acme[eu]" was printed "acme".
    console.print(f"wrote {report.total:,} row(s) to {report.path}", markup=False)


def erase(
    ctx: typer.Context,
    tenant_id: Annotated[str, typer.Argument(help="The tenant holding the person's data.")],
    subject: Annotated[str, typer.Option("--subject", help="The person's id.")],
    mode: Annotated[
        str,
        typer.Option("--mode", help="delete (default) or pseudonymise."),
    ] = "delete",
    verify: Annotated[
        bool,
        typer.Option("--verify", help="Erase nothing: prove nothing of the person is left."),
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Erase one person's personal data across every table that refers to them.

    One transaction, with a receipt in the audit chain; --verify checks tables, reject
    files, audit details and the config cache for anything left.

    Example: tenancy-fixtures erase demo_premium --subject user_0001
    """
    validate_or_fail(tenant_id)
    if verify:
        _verify(ctx, tenant_id, subject, json_out=json_out)
        return
    if mode not in ("delete", "pseudonymise"):
        err_console.print("error: --mode is delete or pseudonymise")
        raise typer.Exit(2)

    async def work(manager: FixtureManager) -> ErasureReport:
        return await manager.erase_subject(
            tenant_id, subject, mode="delete" if mode == "delete" else "pseudonymise"
        )

    report = run(ctx, work)
    if json_out:
        print_json(report.as_dict())
        return
    table = Table(title=f"erasure in {tenant_id} ({mode})")
    for column in ("table", "deleted", "updated", "recomputed"):
        table.add_column(column)
    names = [*report.deleted, *report.updated, *report.refreshed]
    for name in dict.fromkeys(names):
        table.add_row(
            name,
            str(report.deleted.get(name, "-")),
            str(report.updated.get(name, "-")),
            str(report.refreshed.get(name, "-")),
        )
    console.print(table)
    console.print(
        f"erased {report.total:,} row(s); scrubbed {report.audit_records} audit detail(s), "
        f"{report.reject_lines} reject line(s); receipt in run {report.run_id}"
    )


def _verify(ctx: typer.Context, tenant_id: str, subject: str, *, json_out: bool) -> None:
    async def work(manager: FixtureManager) -> ErasureCheck:
        return await manager.verify_erasure(tenant_id, subject)

    check = run(ctx, work)
    if not state(ctx).settings.audit_logging:
        err_console.print(
            "note: audit logging is off (TENANCY_AUDIT_LOGGING=false): erasures are refused, "
            "so only receipts recorded before are on record",
            markup=False,
        )
    if json_out:
        print_json(check.as_dict())
    else:
        for remnant in check.remnants:  # they name reject files by path: no markup
            console.print(f"remnant: {remnant}", highlight=False, markup=False)
        checked = ", ".join(check.checked)
        console.print(
            f"{_verdict(check)} ({check.receipts} receipt(s); checked {checked})", markup=False
        )
    if check.remnants:
        raise typer.Exit(REMNANTS_EXIT)
    if not check.on_record:
        raise typer.Exit(SubjectNotFoundError.exit_code)


def _verdict(check: ErasureCheck) -> str:
    """What ``--verify`` says: no receipt proves nothing, whatever else it found."""
    unrecorded = "no erasure of this id is on record"
    if check.remnants:
        return "remnants found" + ("" if check.on_record else f"; {unrecorded}")
    if not check.on_record:
        return (
            f"{unrecorded} and nothing under it was found: check the id (compared exactly, "
            "letter case included)"
        )
    return "nothing of the subject is left"


def register(app: typer.Typer) -> None:
    """Add the data-subject commands to ``app``."""
    app.command("export")(export)
    app.command("erase")(erase)
