"""CLI fixes: performance monitoring off times no migration or demo, and a validation
timeout that is not a number of seconds."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

from pathlib import Path

from tests.cli.cli_runner import Cli

UNTIMED = "not timed: TENANCY_PERFORMANCE_MONITORING=false"
OFF = {"TENANCY_PERFORMANCE_MONITORING": "false"}


def test_a_migration_with_monitoring_off_claims_no_timing(
    database_url: str, tenant_prefix: str
) -> None:
    """``migrate`` printed the run's seconds (and each tenant's) with performance
    monitoring off, while ``load-fixtures`` says "not timed": it says so too (--json:
    seconds null, monitoring off)."""
    cli = Cli(database_url, env=OFF)
    tenant = f"{tenant_prefix}moved"
    cli.ok("init-tenant", tenant)
    cli.ok("migrate", "-t", tenant, "--to", "base")
    said = cli.ok("migrate", "-t", tenant).stdout
    cli.ok("migrate", "-t", tenant, "--to", "base")
    shown = cli.json("migrate", "-t", tenant)

    assert UNTIMED in said
    assert " s)" not in said
    assert "seconds" not in said
    assert (None, "off") == (shown["seconds"], shown["monitoring"])
    assert [None] == [t["seconds"] for t in shown["tenants"]]


def test_a_migration_with_monitoring_on_still_shows_its_seconds(
    database_url: str, tenant_prefix: str
) -> None:
    """The timings stay where monitoring is on."""
    cli = Cli(database_url)
    tenant = f"{tenant_prefix}timed"
    cli.ok("init-tenant", tenant)
    cli.ok("migrate", "-t", tenant, "--to", "base")
    said = cli.ok("migrate", "-t", tenant).stdout
    cli.ok("migrate", "-t", tenant, "--to", "base")
    shown = cli.json("migrate", "-t", tenant)

    assert "seconds" in said
    assert " s)" in said
    assert "on" == shown["monitoring"]
    assert isinstance(shown["seconds"], float)


def test_the_demo_with_monitoring_off_claims_no_timing(tmp_path: Path) -> None:
    """``demo`` printed each tenant's create and load milliseconds with performance
    monitoring off: it says they were not timed (--json: seconds null, monitoring off).
    On a SQLite directory of its own: the demo's tenant ids are fixed."""
    cli = Cli(f"sqlite:///{tmp_path / 'data'}", env=OFF)
    said = cli.ok("demo").stdout
    shown = cli.json("demo")

    assert " ms" not in said
    assert f"create and load {UNTIMED}" in said
    for tenant in shown:
        assert (None, None, "off") == (
            tenant["create_seconds"],
            tenant["load_seconds"],
            tenant["monitoring"],
        )
