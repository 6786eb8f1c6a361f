"""The migrate commands: plan, SQL, status, drift check, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tenancy_fixtures import FixtureManager
from tenancy_fixtures.store import migration_ledger
from tests.cli.cli_runner import Cli, assert_one_line_error, with_manager
from tests.cli.test_commands import _remove_storage

HEAD = "0003_daily_streams"


def test_migrate_needs_all_or_tenants(cli: Cli) -> None:
    assert_one_line_error(cli("migrate"), 2, "error: give either --all or one or more")


def test_options_of_the_migration_before_a_subcommand_are_refused_saying_where_they_go(
    cli: Cli, tenant_prefix: str
) -> None:
    """``migrate -t acme status`` showed every tenant and ``migrate --to base check``
    checked at the recorded revision: the options before the subcommand were the
    migration's own, silently dropped."""
    tenant = f"{tenant_prefix}one"
    moved = cli("migrate", "-t", tenant, "status")
    line = assert_one_line_error(moved, 2, "error: --tenant before `status` would not apply")
    assert "tenancy-fixtures migrate status --tenant" in line

    dropped = cli("migrate", "--to", "base", "check")
    line = assert_one_line_error(dropped, 2, "error: --to before `check` would not apply")
    assert "`migrate check` takes --all, --json, --tenant, -t" in line


def test_migrate_of_an_unknown_tenant_exits_4(cli: Cli) -> None:
    assert_one_line_error(cli("migrate", "-t", "ghost_tenant"), 4, "error: tenant 'ghost_tenant'")


def test_a_target_naming_no_revision_exits_2_listing_the_revisions_even_with_no_tenants(
    cli: Cli, tenant_prefix: str
) -> None:
    """It exited 9 ("a migration failed"), and 0 when the fleet was empty."""
    nobody = f"{tenant_prefix}nobody"
    for args in (["--all", "--to", "nonsense"], ["-t", nobody, "--to", "000"]):
        result = cli("migrate", *args)
        assert_one_line_error(result, 2, "error: ")
        assert f"give one of 0001_baseline, 0002_retention_indexes, {HEAD}" in result.output


def test_an_offset_in_other_than_ascii_digits_exits_2_before_any_tenant_is_read(
    cli: Cli, tenant_prefix: str
) -> None:
    """``--to -\u0661`` (an Arabic-Indic one) was taken as ``-1``."""
    result = cli("migrate", "-t", f"{tenant_prefix}nobody", "--to", "-\u0661")

    assert_one_line_error(result, 2, "error: no revision")


def test_the_status_of_an_unknown_tenant_exits_4(cli: Cli, tenant_prefix: str) -> None:
    """As ``migrate -t`` does (it printed "0 tenant(s) behind the head", exit 0)."""
    assert_one_line_error(cli("migrate", "status", "-t", f"{tenant_prefix}ghost"), 4, "error:")


def test_dry_run_status_and_sql_show_the_plan_without_changing_anything(
    cli: Cli, tenant_prefix: str
) -> None:
    tenant = f"{tenant_prefix}a"
    cli.ok("init-tenant", tenant)
    cli.ok("migrate", "-t", tenant, "--to", "base")

    plan = cli.json("migrate", "-t", tenant, "--dry-run")
    sql = cli.ok("migrate", "-t", tenant, "--sql").stdout
    status = cli.json("migrate", "status", "-t", tenant)

    assert plan["counts"] == {"planned": 1}
    assert plan["tenants"][0]["steps"] == ["0002_retention_indexes", HEAD]
    assert sql.startswith(f"-- tenant {tenant}: 0001_baseline -> {HEAD}")
    assert "CREATE INDEX ix_listening_events_played_at" in sql
    assert status["head"] == HEAD
    assert status["tenants"][0]["revision"] == "0001_baseline"
    assert status["tenants"][0]["at_head"] is False


def test_migrate_then_list_show_and_check_agree_on_the_revision(
    cli: Cli, tenant_prefix: str
) -> None:
    tenant = f"{tenant_prefix}b"
    cli.ok("init-tenant", tenant)
    cli.ok("migrate", "-t", tenant, "--to", "-1")

    done = cli.json("migrate", "-t", tenant)
    listed = cli.json("list", "--prefix", tenant_prefix)
    shown = cli.json("show", tenant)
    checked = cli.json("migrate", "check", "-t", tenant)

    assert done["counts"] == {"migrated": 1}
    assert listed[0]["revision"] == shown["revision"] == HEAD
    assert checked == [
        {"tenant_id": tenant, "revision": HEAD, "ok": True, "findings": [], "problem": None}
    ]


def test_a_load_into_a_tenant_behind_the_head_exits_8_naming_the_command(
    cli: Cli, tenant_prefix: str
) -> None:
    tenant = f"{tenant_prefix}c"
    cli.ok("init-tenant", tenant)
    cli.ok("migrate", "-t", tenant, "--to", "base")

    line = assert_one_line_error(cli("load-fixtures", tenant), 8, "error:")

    assert f"tenancy-fixtures migrate -t {tenant}" in line


def _failing_tenant(cli: Cli, tenant: str, tmp_path: Path) -> Cli:
    """``tenant`` holding a user the next revision's CHECK refuses; the CLI with it."""
    from tests.integration.test_migrations import BUILTIN_VERSIONS, FAILING_REVISION

    history = tmp_path / "history"
    shutil.copytree(BUILTIN_VERSIONS, history / "versions", ignore=shutil.ignore_patterns("__*"))
    (history / "versions" / "0004_named_users.py").write_text(FAILING_REVISION)
    cli.ok("init-tenant", tenant)
    source = tmp_path / "set"
    source.mkdir()
    (source / "users.jsonl").write_text('{"user_id": "u1", "display_name": "unknown"}\n')
    cli.ok("load-fixtures", tenant, str(source))
    return Cli(cli.database_url, env={"TENANCY_MIGRATIONS": str(history)})


def test_a_failing_revision_under_sql_exits_9_showing_its_error_and_recording_nothing(
    cli: Cli, tenant_prefix: str, tmp_path: Path
) -> None:
    """It exited 9 saying nothing of the error, and recorded the preview as failed."""
    tenant = f"{tenant_prefix}e"
    newer = _failing_tenant(cli, tenant, tmp_path)

    result = newer("migrate", "-t", tenant, "--sql")

    assert result.exit_code == 9, result.output
    assert f"error: tenant {tenant} ({HEAD} -> 0004_named_users): " in result.stderr
    assert "ck_users_named" in result.stderr.replace("\n", "")
    assert result.stdout == ""
    [entry] = newer.json("migrate", "status", "-t", tenant)["tenants"]
    assert (entry["revision"], entry["status"], entry["error"]) == (HEAD, "ok", None)


def test_a_failing_revision_exits_9_with_the_tenant_and_its_error(
    cli: Cli, tenant_prefix: str, tmp_path: Path
) -> None:
    tenant = f"{tenant_prefix}d"
    newer = _failing_tenant(cli, tenant, tmp_path)

    result = newer("migrate", "-t", tenant)

    assert result.exit_code == 9, result.output
    assert "failed" in result.stdout
    assert "ck_users_named" in result.stdout.replace("\n", "")


def test_a_tenant_whose_storage_is_missing_fails_migrate_and_check_with_exit_7_hint(
    cli: Cli, tenant_prefix: str, database_url: str
) -> None:
    """A registered tenant without its schema or file: ``migrate`` fails it with the
    storage-missing hint and migrates the others (exit 9); ``migrate check`` reports the
    others and exits 7, as do ``load-fixtures`` and ``validate-data`` of it (all said
    "does not exist", exit 4, and ``check`` stopped at it)."""
    kept, gone = f"{tenant_prefix}kept", f"{tenant_prefix}gone"
    for tenant in (kept, gone):
        cli.ok("init-tenant", tenant)
        cli.ok("migrate", "-t", tenant, "--to", "base")
    storage = _remove_storage(database_url, gone)
    problem = (
        f"registered, but its storage {storage} is missing; cleanup {gone} removes the registration"
    )

    migrated = cli("migrate", "-t", gone, "-t", kept, "--keep-going", "--json")
    checked = cli("migrate", "check", "-t", kept, "-t", gone, "--json")
    alone = cli("migrate", "check", "-t", gone)

    assert migrated.exit_code == 9, migrated.output
    outcomes = {r["tenant_id"]: r for r in json.loads(migrated.stdout)["tenants"]}
    assert (outcomes[gone]["outcome"], outcomes[gone]["error"]) == (
        "failed",
        f"tenant '{gone}' is {problem}",
    )
    assert outcomes[kept]["outcome"] == "migrated"
    assert checked.exit_code == 7, checked.output
    assert [(r["tenant_id"], r["ok"], r["problem"]) for r in json.loads(checked.stdout)] == [
        (kept, True, None),
        (gone, False, problem),
    ]
    assert alone.exit_code == 7, alone.output
    assert alone.stdout.strip() == f"{gone}: {problem}"
    for command in ("load-fixtures", "validate-data"):
        line = assert_one_line_error(cli(command, gone), 7, "error:")
        assert line == f"error: tenant '{gone}' is {problem}"


def _history_with(tmp_path: Path, name: str, revision: str) -> Path:
    """The built-in history and one more revision file, ``name`` holding ``revision``."""
    from tests.integration.test_migrations import BUILTIN_VERSIONS

    history = tmp_path / "history"
    shutil.copytree(BUILTIN_VERSIONS, history / "versions", ignore=shutil.ignore_patterns("__*"))
    (history / "versions" / name).write_text(revision)
    return history


def test_a_broken_revision_file_exits_9_naming_it_without_a_raw_warning(
    cli: Cli, tenant_prefix: str, tmp_path: Path
) -> None:
    """A down_revision naming no revision broke even ``init-tenant`` with Alembic's raw
    UserWarning and "unexpected error: KeyError: 'nope'" (exit 1)."""
    history = _history_with(
        tmp_path, "0004_dangling.py", 'revision = "0004"\ndown_revision = "nope"\n'
    )
    broken = Cli(cli.database_url, env={"TENANCY_MIGRATIONS": str(history)})

    for args in (["init-tenant", f"{tenant_prefix}new"], ["migrate", "--all"]):
        line = assert_one_line_error(broken(*args), 9, "error: ")
        assert f"migrations {history}: " in line
        assert line.endswith(
            f"{history / 'versions' / '0004_dangling.py'} (revision '0004') has "
            "down_revision 'nope', which no revision file declares"
        )


def test_a_revision_id_with_markup_is_printed_as_it_is(
    cli: Cli, tenant_prefix: str, tmp_path: Path
) -> None:
    """``revision = "0004[/]"`` ended migrate, migrate status and list in a Rich
    MarkupError traceback (exit 1)."""
    history = _history_with(
        tmp_path,
        "0004_marked.py",
        f'revision = "0004[/]"\ndown_revision = "{HEAD}"\n\n\ndef upgrade() -> None:\n'
        "    pass\n\n\ndef downgrade() -> None:\n    pass\n",
    )
    tenant = f"{tenant_prefix}marked"
    cli.ok("init-tenant", tenant)
    newer = Cli(cli.database_url, env={"TENANCY_MIGRATIONS": str(history)})

    migrated = newer.ok("migrate", "-t", tenant, "--to", "0004[/]").stdout
    status = newer.ok("migrate", "status", "-t", tenant).stdout
    listed = newer.ok("list", "--prefix", tenant_prefix).stdout
    shown = newer.ok("show", tenant).stdout

    assert "migration to 0004[/]" in migrated
    assert f"{HEAD} │ 0004[/]" in migrated
    assert "head 0004[/]" in status
    assert "│ 0004[/]" in status
    assert "0004[/]" in listed
    assert "revision 0004[/]" in shown


def test_status_counts_a_tenant_ahead_of_the_code_apart_from_those_behind(
    cli: Cli, tenant_prefix: str, database_url: str
) -> None:
    """A tenant a newer release migrated was counted "behind the head", which sends an
    operator to ``migrate`` it (it refuses)."""
    behind, ahead = f"{tenant_prefix}behind", f"{tenant_prefix}ahead"
    for tenant in (behind, ahead):
        cli.ok("init-tenant", tenant)
    cli.ok("migrate", "-t", behind, "--to", "-1")

    async def newer(manager: FixtureManager) -> None:
        async with manager.store.control() as conn:
            await migration_ledger.set_revision(conn, ahead, "0009_from_a_newer_release")

    with_manager(database_url, newer)
    status = cli.ok("migrate", "status", "-t", behind, "-t", ahead).stdout

    assert status.strip().endswith(
        "1 tenant(s) behind the head, 1 ahead of it (a revision this code lacks)"
    )
