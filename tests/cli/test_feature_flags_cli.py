"""The feature flags from the shell: what the CLI says when a flag is off, and the
start-up refusal of audit logging off while a compliance feature needs it."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import uuid
from pathlib import Path

from cryptography.fernet import Fernet

from tests.cli.cli_runner import Cli, assert_one_line_error


def fresh_tenant() -> str:
    return f"flags_cli_{uuid.uuid4().hex[:10]}"


def test_a_load_without_validation_says_so(database_url: str, demo_set: Path) -> None:
    """stderr says only the database checked the records; --json says validation off."""
    cli = Cli(database_url, env={"TENANCY_DATA_VALIDATION": "false"})
    tenant, other = fresh_tenant(), fresh_tenant()
    try:
        cli.ok("init-tenant", tenant)
        cli.ok("init-tenant", other)

        said = cli.ok("load-fixtures", tenant, str(demo_set))
        shown = cli.json("load-fixtures", other, str(demo_set))
    finally:
        cli("cleanup", tenant, "--yes")
        cli("cleanup", other, "--yes")

    assert "loaded without validation (TENANCY_DATA_VALIDATION=false)" in said.stderr
    assert "off" == shown["validation"]


def test_every_load_without_validation_says_so(database_url: str, demo_set: Path) -> None:
    """Loads of several tenants and `init-tenant --load` said nothing of it (only a
    single `load-fixtures` did): each says it on stderr, and --json says validation off."""
    cli = Cli(database_url, env={"TENANCY_DATA_VALIDATION": "false"})
    first, second, third = fresh_tenant(), fresh_tenant(), fresh_tenant()
    try:
        cli.ok("init-tenant", first)
        cli.ok("init-tenant", second)
        many = cli.ok("load-fixtures", "-t", first, "-t", second, str(demo_set))
        shown = cli.json("load-fixtures", "-t", first, "-t", second, str(demo_set), "--force")
        created = cli.ok("init-tenant", third, "--load")
    finally:
        for tenant in (first, second, third):
            cli("cleanup", tenant, "--yes")

    assert f"{first}, {second}: loaded without validation" in many.stderr
    assert "off" == shown["validation"]
    assert f"{third}: loaded without validation" in created.stderr


def test_the_audit_command_notes_that_audit_logging_is_off(sqlite_cli: Cli) -> None:
    cli = Cli(sqlite_cli.database_url, env={"TENANCY_AUDIT_LOGGING": "false"})
    cli.ok("init-tenant", "acme")

    result = cli.ok("audit", "acme")

    assert "audit logging is off" in result.stderr
    assert "tenant.create" not in result.stdout


def test_monitor_errors_notes_that_refusals_are_not_recorded_with_audit_logging_off(
    sqlite_cli: Cli,
) -> None:
    """The refusals come from the audit log: with it off the table said "0 refused" after
    a refused create, as if there had been none; it says why it is empty, as `audit` does."""
    cli = Cli(sqlite_cli.database_url, env={"TENANCY_AUDIT_LOGGING": "false"})
    cli.ok("init-tenant", "acme")
    assert 3 == cli("init-tenant", "acme").exit_code

    shown = cli.ok("monitor", "errors")
    as_json = cli.ok("monitor", "errors", "--json")

    assert "audit logging is off" in shown.stderr
    assert "refusals and failures are not being recorded" in shown.stderr
    assert "audit logging is off" in as_json.stderr


def test_audit_off_with_a_secret_key_is_refused_at_start_up(sqlite_cli: Cli) -> None:
    """Exit 2 before any command runs, naming both settings and why."""
    cli = Cli(
        sqlite_cli.database_url,
        env={
            "TENANCY_AUDIT_LOGGING": "false",
            "TENANCY_SECRET_KEY": Fernet.generate_key().decode(),
        },
    )

    line = assert_one_line_error(cli("list"), 2, "error:")

    assert "TENANCY_AUDIT_LOGGING" in line
    assert "TENANCY_SECRET_KEY" in line
    assert "audited" in line


def test_a_load_with_monitoring_off_claims_no_timing(database_url: str, demo_set: Path) -> None:
    """``load-fixtures`` printed "in 0.42s (9,000 rows/s)" with performance monitoring
    off, which times no run: it says the load was not timed (--json: seconds null,
    monitoring off), for one tenant and for several."""
    cli = Cli(database_url, env={"TENANCY_PERFORMANCE_MONITORING": "false"})
    tenant, other = fresh_tenant(), fresh_tenant()
    try:
        cli.ok("init-tenant", tenant)
        cli.ok("init-tenant", other)
        one = cli.ok("load-fixtures", tenant, str(demo_set))
        many = cli.ok("load-fixtures", "-t", tenant, "-t", other, str(demo_set), "--force")
        shown = cli.json("load-fixtures", other, str(demo_set), "--force")
    finally:
        cli("cleanup", tenant, "--yes")
        cli("cleanup", other, "--yes")

    assert "rows/s" not in one.stdout
    assert "not timed: TENANCY_PERFORMANCE_MONITORING=false" in one.stdout
    assert "seconds" not in many.stdout
    assert "not timed" in many.stdout
    assert (None, "off") == (shown["seconds"], shown["monitoring"])
