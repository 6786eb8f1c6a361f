"""CLI fixes: performance monitoring off times no migration or demo, and a validation
timeout that is not a number of seconds."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from tenancy_fixtures import Settings
from tenancy_fixtures.errors import SettingsError
from tests.cli.cli_runner import Cli, assert_one_line_error

UNTIMED = "not timed: TENANCY_PERFORMANCE_MONITORING=false"
OFF = {"TENANCY_PERFORMANCE_MONITORING": "false"}


def _migrated_up(cli: Cli, tenant: str) -> tuple[str, Any]:
    """A new tenant moved to the base and back up twice: what ``migrate`` printed the
    first time, and its ``--json`` report the second."""
    cli.ok("init-tenant", tenant)
    cli.ok("migrate", "-t", tenant, "--to", "base")
    said = cli.ok("migrate", "-t", tenant).stdout
    cli.ok("migrate", "-t", tenant, "--to", "base")
    return said, cli.json("migrate", "-t", tenant)


def test_a_migration_with_monitoring_off_claims_no_timing(
    database_url: str, tenant_prefix: str
) -> None:
    """``migrate`` printed the run's seconds (and each tenant's) with performance
    monitoring off, while ``load-fixtures`` says "not timed": it says so too (--json:
    seconds null, monitoring off)."""
    said, shown = _migrated_up(Cli(database_url, env=OFF), f"{tenant_prefix}moved")

    assert UNTIMED in said
    assert " s)" not in said
    assert "seconds" not in said
    assert (None, "off") == (shown["seconds"], shown["monitoring"])
    assert [None] == [t["seconds"] for t in shown["tenants"]]


def test_a_migration_with_monitoring_on_still_shows_its_seconds(
    database_url: str, tenant_prefix: str
) -> None:
    """The timings stay where monitoring is on."""
    said, shown = _migrated_up(Cli(database_url), f"{tenant_prefix}timed")

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


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity"])
def test_a_validation_timeout_that_is_no_finite_number_exits_2_saying_what_it_must_be(
    tmp_path: Path, value: str
) -> None:
    """``TENANCY_VALIDATION_TIMEOUT_SECONDS=nan`` said "should be less than or equal to
    2592000" (nan is no number, not a large one): it says what a duration must be."""
    cli = Cli(f"sqlite:///{tmp_path / 'data'}", env={"TENANCY_VALIDATION_TIMEOUT_SECONDS": value})
    line = assert_one_line_error(cli("list"), 2, "error: invalid settings")
    assert (
        "TENANCY_VALIDATION_TIMEOUT_SECONDS: must be a finite number of seconds, above 0, "
        f"not {value!r}"
    ) in line
    assert "2592000" not in line


@pytest.mark.parametrize(
    ("name", "least"),
    [
        ("redis_timeout_seconds", "above 0"),
        ("redis_breaker_seconds", "above 0"),
        ("cache_ttl_seconds", "above 0"),
        ("cache_revalidate_seconds", "0 or more"),
        ("validation_timeout_seconds", "above 0"),
        ("service_snapshot_interval_seconds", "above 0"),
    ],
)
def test_every_duration_setting_refuses_nan_and_infinity_saying_so(name: str, least: str) -> None:
    """The other durations had the same bound-only message; finite values still pass."""
    for value in (math.nan, math.inf):
        with pytest.raises(SettingsError) as refused:
            Settings.model_validate({name: value})
        assert f"must be a finite number of seconds, {least}, not {value!r}" in str(refused.value)
    assert 2.5 == getattr(Settings.model_validate({name: 2.5}), name)


@pytest.mark.parametrize("value", [math.nan, math.inf, "nan"])
def test_the_limit_warning_ratio_refuses_nan_and_infinity_saying_what_it_is(
    value: object,
) -> None:
    """``TENANCY_LIMIT_WARN_RATIO=nan`` said "less than or equal to 1"; 0.5 still passes."""
    with pytest.raises(SettingsError) as refused:
        Settings.model_validate({"limit_warn_ratio": value})

    assert "must be a share of the limit above 0 and at most 1" in str(refused.value)
    assert 0.5 == Settings.model_validate({"limit_warn_ratio": 0.5}).limit_warn_ratio
