"""One row count across init-tenant --load, load-fixtures, show and list; monitor
snapshot, monitor errors and forecast, on both backends."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.schema import DropTable

from tenancy_fixtures import FixtureManager
from tenancy_fixtures.store.base import TENANT_SCHEMA
from tests.cli.cli_runner import Cli, assert_one_line_error, with_manager


def test_every_command_counts_rows_the_same_way(cli: Cli, tenant_prefix: str) -> None:
    """Data rows and derived rows, apart and labelled, agree between the commands."""
    first, second = f"{tenant_prefix}a", f"{tenant_prefix}b"
    created = cli.json("init-tenant", first, "--tier", "premium", "--load")
    cli.ok("init-tenant", second, "--tier", "premium")
    loaded = cli.json("load-fixtures", second)
    shown = cli.json("show", first)
    listed = {t["tenant_id"]: t for t in cli.json("list", "--prefix", tenant_prefix)}
    assert created["derived_rows"] > 0
    for view in (loaded, shown, listed[first], listed[second]):
        assert (view.get("rows_loaded", view.get("rows")), view["derived_rows"]) == (
            created["rows_loaded"],
            created["derived_rows"],
        )
    assert shown["total_rows"] == created["rows_loaded"] + created["derived_rows"]
    text = cli.ok("init-tenant", f"{tenant_prefix}c", "--tier", "premium", "--load").stdout
    assert (
        f"{created['rows_loaded']:,} rows loaded (+{created['derived_rows']:,} derived rows)"
        in text
    )
    assert "derived rows" in cli.ok("list", "--prefix", tenant_prefix).stdout
    assert f"+{created['derived_rows']:,} derived rows" in cli.ok("show", first).stdout


def test_monitor_commands_report_usage_refusals_and_forecasts(
    database_url: str, tenant_prefix: str, demo_set: Path
) -> None:
    enforcing = Cli(database_url, env={"TENANCY_ENFORCE_LIMITS": "true"})
    tenant = f"{tenant_prefix}free"
    enforcing.ok("init-tenant", tenant)
    refused = enforcing("load-fixtures", tenant, str(demo_set))
    assert_one_line_error(refused, 10, f"error: tenant '{tenant}': limit 'users' exceeded")
    enforcing.ok("load-fixtures", tenant)
    [snapshot] = enforcing.json("monitor", "snapshot", "-t", tenant)
    assert snapshot["counters"]["users"] == 3
    assert snapshot["source"] == "snapshot"
    assert any(s["tenant_id"] == tenant for s in enforcing.json("monitor", "snapshot", "--all"))
    errors = enforcing.json("monitor", "errors", "--since", "1d")
    [group] = [g for g in errors["groups"] if g["tenant_id"] == tenant]
    assert (group["rule"], group["table"], group["refusals"]) == ("limit:users", "users", 1)
    [forecast] = enforcing.json("forecast", tenant)
    users = next(f for f in forecast["limits"] if f["limit"] == "users")
    assert (users["value"], users["maximum"], users["points"]) == (3, 5, 3)
    assert "days to limit" in enforcing.ok("forecast", "--all").stdout
    assert enforcing("forecast").exit_code == 2
    assert enforcing("monitor", "errors", "--since", "soon").exit_code == 2


def test_monitor_errors_since_past_the_longest_window_exits_2_naming_it(cli: Cli) -> None:
    """``9999999999d`` was a raw OverflowError traceback, ``99999999d`` an "unexpected
    error" (the date went before year 1), both exit 1; the longest window still runs."""
    for since in ("9999999999d", "99999999d", "36526d", "5218w", "1" + "0" * 5000 + "m"):
        line = assert_one_line_error(cli("monitor", "errors", "--since", since), 2, "error:")
        assert "longest window allowed is 36525d" in line

    assert "groups" in cli.json("monitor", "errors", "--since", "36525d")


def test_monitor_errors_groups_a_failed_validation_by_its_check(
    cli: Cli, tenant_prefix: str
) -> None:
    """A failed validate-data audits its problems as messages: ``monitor errors`` raised
    ``AttributeError: 'str' object has no attribute 'get'`` for as long as one was in
    its window (``GET /errors`` and the dashboard too)."""
    tenant = f"{tenant_prefix}tampered"
    cli.ok("init-tenant", tenant, "--load")

    async def lose_a_track(manager: FixtureManager) -> None:
        async with manager.store.session(tenant) as session:
            tracks = session.metadata.tables[f"{TENANT_SCHEMA}.tracks"]
            first = (await session.connection.execute(select(tracks.c.track_id))).first()
            assert first is not None
            await session.connection.execute(delete(tracks).where(tracks.c.track_id == first[0]))

    with_manager(cli.database_url, lose_a_track)
    assert 6 == cli("validate-data", tenant).exit_code

    errors = cli.json("monitor", "errors", "--since", "1h")

    [group] = [g for g in errors["groups"] if g["tenant_id"] == tenant]
    assert ("data.validate", "row_counts") == (group["action"], group["rule"])


def test_forecast_shows_a_limit_passed_from_one_snapshot_as_reached(
    database_url: str, tenant_prefix: str, demo_set: Path
) -> None:
    """A limit already passed is 0 days away without a trend (``--json`` and the gauge
    said so) but the table said "too few snapshots" for it."""
    lax = Cli(database_url, env={"TENANCY_ENFORCE_LIMITS": "false"})
    tenant = f"{tenant_prefix}over"
    lax.ok("init-tenant", tenant)
    lax.ok("load-fixtures", tenant, str(demo_set))  # 20 users of the free tier's 5

    [forecast] = lax.json("forecast", tenant)
    users = next(f for f in forecast["limits"] if f["limit"] == "users")
    assert (users["points"], users["days_to_limit"]) == (1, 0.0)
    rows = lax.ok("forecast", tenant).stdout.splitlines()
    [users_row] = [line for line in rows if " users " in line]
    assert "reached" in users_row
    [storage_row] = [line for line in rows if " storage " in line]
    assert "too few snapshots" in storage_row


def test_list_goes_on_past_a_tenant_whose_storage_cannot_be_read(
    cli: Cli, tenant_prefix: str
) -> None:
    """A tenant whose storage lacks a table (its migration failed, say) ended ``list``
    with a storage error (exit 7): no tenant of the fleet could be listed. It is listed
    as unreadable, with a warning saying why, and the others as before."""
    fine, broken = f"{tenant_prefix}fine", f"{tenant_prefix}broken"
    for tenant in (broken, fine):
        cli.ok("init-tenant", tenant)

    async def lose_a_table(manager: FixtureManager) -> None:
        async with manager.store.session(broken) as session:
            table = session.metadata.tables[f"{TENANT_SCHEMA}.workspace_playlists"]
            await session.connection.execute(DropTable(table))

    with_manager(cli.database_url, lose_a_table)

    listed = cli("list", "--prefix", tenant_prefix, "--json")

    assert listed.exit_code == 0, listed.output
    problems = {t["tenant_id"]: t["problem"] for t in json.loads(listed.stdout)}
    assert problems[fine] is None
    assert problems[broken].startswith("unreadable: ")
    assert "workspace_playlists" in problems[broken]
    assert f"warning: tenant '{broken}' is unreadable: " in listed.stderr
    assert "unreadable" in cli.ok("list", "--prefix", tenant_prefix).stdout


def test_forecast_of_a_tenant_never_measured_says_why_it_shows_nothing(
    cli: Cli, tenant_prefix: str
) -> None:
    """A tenant made and never loaded has no usage snapshot: ``forecast`` printed an
    empty table and nothing else, as if it counted no limit."""
    tenant = f"{tenant_prefix}fresh"
    cli.ok("init-tenant", tenant)

    shown = cli.ok("forecast", tenant)

    assert f"note: no usage snapshot of {tenant} yet" in shown.stderr
    assert "monitor snapshot" in shown.stderr
    cli.ok("monitor", "snapshot", "-t", tenant)
    assert "no usage snapshot" not in cli.ok("forecast", tenant).stderr
