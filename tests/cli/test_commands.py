"""The ``tenancy-fixtures`` commands end to end, in-process, on both backends.

Every test that creates tenants takes them under its own ``tenant_prefix``; the prefix
is dropped with ``cleanup --prefix ... --yes`` afterwards, because on PostgreSQL the
database is shared by every test of the run. The runner and error
checks are shared with the other CLI tests through ``cli_runner.py``.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import text

from tenancy_fixtures import FixtureManager
from tenancy_fixtures.cli.app import app
from tenancy_fixtures.fixtures.templates import BUILTIN_TEMPLATE_DIR
from tenancy_fixtures.monitoring.monitor import TenantStatus
from tests.cli.cli_runner import Cli, assert_one_line_error, with_manager

COMMANDS = sorted(str(c.name) for c in app.registered_commands)
HOSTILE_IDS = ["Robert'); DROP TABLE students;--", "../etc", "UPPER", "", "pg_x"]
DEMO_IDS = {"demo_free": "free", "demo_premium": "premium", "demo_enterprise": "enterprise"}


# --- helpers -------------------------------------------------------------------------


def _remove_storage(database_url: str, tenant: str) -> str:
    """Behind the CLI's back: drop the tenant's schema (PostgreSQL) or delete its file
    (SQLite), keeping its registration; returns the storage's name."""

    async def work(manager: FixtureManager) -> tuple[str, bool]:
        name = manager.store.storage_name(tenant)
        if manager.store.backend == "postgresql":
            async with manager.store.control() as conn:
                await conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
            return name, False
        return name, True

    name, is_file = with_manager(database_url, work)
    if is_file:
        Path(name).unlink()
    return name


# --- help ----------------------------------------------------------------------------


def test_app_help_exits_zero_and_shows_an_example(sqlite_cli: Cli) -> None:
    """``--help`` of the app exits 0 and shows an ``Example:`` line."""
    result = sqlite_cli.ok("--help")
    assert "Example:" in result.stdout


def test_app_help_lists_every_command(sqlite_cli: Cli) -> None:
    """``--help`` of the app exits 0 and names every command."""
    result = sqlite_cli.ok("--help")
    for command in COMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help_exits_zero_and_shows_an_example(sqlite_cli: Cli, command: str) -> None:
    """Every command's ``--help`` exits 0 and shows an ``Example:`` line naming the command."""
    result = sqlite_cli.ok(command, "--help")
    assert "Example:" in result.stdout, result.stdout
    assert command in result.stdout.split("Example:", 1)[1]


def test_init_tenant_help_shows_the_id_character_class(sqlite_cli: Cli) -> None:
    """``init-tenant --help`` shows the allowed id characters ``[a-z0-9_]``."""
    result = sqlite_cli.ok("init-tenant", "--help")
    assert "[a-z0-9_]" in result.stdout


# --- init-tenant ---------------------------------------------------------------------


def test_init_tenant_prints_the_config_and_a_second_init_exits_3(
    cli: Cli, tenant_prefix: str
) -> None:
    """``init-tenant --json`` prints the merged config; creating it again exits 3 in one line."""
    tenant = f"{tenant_prefix}acme"
    document = cli.json(
        "init-tenant", tenant, "--tier", "premium", "-f", "ai_collaboration", "-l", "storage=200GB"
    )
    config = document["config"]
    assert config["tenant_id"] == tenant
    assert config["tier"] == "premium"
    assert "ai_collaboration" in config["features"]
    assert config["limits"]["storage"] == 200 * 1024**3
    assert document["rows_loaded"] == 0

    again = cli("init-tenant", tenant)
    line = assert_one_line_error(again, 3, "error:")
    assert line == f"error: tenant '{tenant}' already exists"
    assert tenant in cli.tenant_ids()


def test_init_tenant_load_that_is_refused_leaves_no_tenant_so_it_can_run_again(
    database_url: str, tenant_prefix: str
) -> None:
    """``init-tenant --load`` past a limit exits 10 and makes nothing; running it again
    exits 10 again (it exited 3, "already exists", with an empty tenant left)."""
    enforcing = Cli(database_url, env={"TENANCY_ENFORCE_LIMITS": "true"})
    tenant = f"{tenant_prefix}small"

    first = enforcing("init-tenant", tenant, "-l", "users=2", "--load")
    second = enforcing("init-tenant", tenant, "-l", "users=2", "--load")

    assert_one_line_error(first, 10, f"error: tenant '{tenant}': limit 'users' exceeded")
    assert_one_line_error(second, 10, f"error: tenant '{tenant}': limit 'users' exceeded")
    assert tenant not in enforcing.tenant_ids()


def test_init_tenant_with_a_malformed_limit_exits_2(cli: Cli, tenant_prefix: str) -> None:
    """``-l`` without ``KEY=VALUE`` exits 2 in one line and creates nothing."""
    tenant = f"{tenant_prefix}badlimit"
    result = cli("init-tenant", tenant, "-l", "storage")
    assert_one_line_error(result, 2, "error: --limit expects KEY=VALUE")
    assert tenant not in cli.tenant_ids()


# --- hostile ids ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "init-tenant",
        "load-fixtures",
        "show",
        "cleanup",
    ],
)
@pytest.mark.parametrize("tenant_id", HOSTILE_IDS, ids=["sql", "dotdot", "upper", "empty", "pg"])
def test_hostile_tenant_id_exits_2_and_creates_nothing(
    cli: Cli, command: str, tenant_id: str
) -> None:
    """A hostile id exits 2 with one ``error: invalid tenant id`` line and adds no tenant."""
    before = cli.tenant_ids()
    args = [command, tenant_id] + (["--yes"] if command == "cleanup" else [])
    result = cli(*args)
    assert_one_line_error(result, 2, "error: invalid tenant id")
    assert cli.tenant_ids() == before


@pytest.mark.parametrize(
    ("args", "exit_code"),
    [
        (["load-fixtures", "[/]"], 2),
        (["validate-data", "--source", "/nonexistent/[/]"], 2),
    ],
    ids=["id", "path"],
)
def test_markup_characters_in_input_give_a_one_line_error(
    sqlite_cli: Cli, args: list[str], exit_code: int
) -> None:
    """Rich markup characters in an id or a path still give a one-line error, no traceback."""
    line = assert_one_line_error(sqlite_cli(*args), exit_code, "error:")
    assert "[/]" in line


def test_show_of_an_unknown_tenant_exits_4(cli: Cli, tenant_prefix: str) -> None:
    """``show`` of a well-formed id that is not registered exits 4 in one line."""
    tenant = f"{tenant_prefix}ghost"
    line = assert_one_line_error(cli("show", tenant), 4, "error:")
    assert line == f"error: tenant '{tenant}' does not exist"


# --- load-fixtures, show, list -------------------------------------------------------


def test_loading_the_tier_template_twice_changes_nothing_the_second_time(
    cli: Cli, tenant_prefix: str
) -> None:
    """The second ``load-fixtures`` of the tier template reports that nothing changed."""
    tenant = f"{tenant_prefix}twice"
    cli.ok("init-tenant", tenant, "--tier", "premium")
    first = cli.json("load-fixtures", tenant)
    assert first["changed"] is True
    assert sum(first["rows"].values()) > 0
    assert set(first["fixtures"].values()) == {"applied"}

    second = cli.json("load-fixtures", tenant)
    assert second["changed"] is False
    assert set(second["fixtures"]) == set(first["fixtures"])
    assert set(second["fixtures"].values()) == {"unchanged"}

    third = cli.ok("load-fixtures", tenant)
    assert "nothing changed" in third.stdout


def test_loading_the_demo_set_reports_rows_that_show_and_list_agree_with(
    cli: Cli, tenant_prefix: str, demo_set: Path
) -> None:
    """``load-fixtures T <demo_set>`` reports row counts; ``show`` and ``list`` agree."""
    tenant = f"{tenant_prefix}demo_set"
    cli.ok("init-tenant", tenant, "--tier", "enterprise")
    loaded = cli.json("load-fixtures", tenant, str(demo_set))
    assert loaded["tenant_id"] == tenant
    assert loaded["changed"] is True
    assert loaded["rows"]
    assert all(count > 0 for count in loaded["rows"].values())

    shown = cli.json("show", tenant)
    assert shown["tenant_id"] == tenant
    assert sum(shown["row_counts"].values()) == shown["total_rows"]
    assert shown["total_rows"] == sum(loaded["rows"].values())
    for table, count in loaded["rows"].items():
        assert shown["row_counts"][table] == count

    listed = {entry["tenant_id"]: entry for entry in cli.json("list")}
    assert tenant in listed
    assert listed[tenant]["total_rows"] == shown["total_rows"]
    # ISO 8601 in UTC on both backends (SQLite's were naive; the audit's had a space).
    started = shown["last_load"]["started_at"]
    assert (True, "T") == (started.endswith("+00:00"), started[10])
    assert listed[tenant]["last_load"]["started_at"] == started
    at = cli.json("audit", tenant)[0]["at"]
    assert (True, "T") == (at.endswith("+00:00"), at[10])
    assert tenant in {entry["tenant_id"] for entry in cli.json("list", "--prefix", tenant_prefix)}


def test_a_bad_record_exits_5_naming_file_and_line_and_loads_nothing(
    cli: Cli, tenant_prefix: str, demo_set: Path, tmp_path: Path
) -> None:
    """A string ``duration_ms`` on line 2 exits 5 naming ``tracks.jsonl:2``; no row stays."""
    source = tmp_path / "bad_set"
    source.mkdir()
    lines = (demo_set / "tracks.jsonl").read_text(encoding="utf-8").splitlines()[:3]
    record = json.loads(lines[1])
    record["duration_ms"] = "three minutes"
    lines[1] = json.dumps(record)
    (source / "tracks.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    tenant = f"{tenant_prefix}badfile"
    cli.ok("init-tenant", tenant)
    result = cli("load-fixtures", tenant, str(source), "--json")
    line = assert_one_line_error(result, 5, "error:")
    assert "tracks.jsonl:2" in line
    assert "duration_ms" in line
    assert result.stdout == ""

    shown = cli.json("show", tenant)
    assert shown["total_rows"] == 0
    assert set(shown["row_counts"].values()) == {0}


def test_a_duplicate_key_exits_5_naming_file_line_and_column_and_loads_nothing(
    cli: Cli, tenant_prefix: str, tmp_path: Path
) -> None:
    """A users.jsonl whose line 3 repeats line 1's user_id exits 5 in one line naming
    ``users.jsonl:3, column user_id`` on both backends; no row stays."""
    source = tmp_path / "duplicate_set"
    source.mkdir()
    records = [
        {"user_id": user, "display_name": user, "email": f"{user}.{n}@example.com"}
        for n, user in enumerate(["u1", "u2", "u1"])
    ]
    lines = [json.dumps(record) for record in records]
    (source / "users.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    tenant = f"{tenant_prefix}dupkey"
    cli.ok("init-tenant", tenant)
    result = cli("load-fixtures", tenant, str(source))
    assert_one_line_error(result, 5, f"error: tenant '{tenant}', users.jsonl:3, column user_id: ")
    assert cli.json("show", tenant)["total_rows"] == 0


def test_loading_from_a_missing_directory_exits_nonzero_in_one_line(
    cli: Cli, tenant_prefix: str
) -> None:
    """``load-fixtures T /nonexistent`` exits non-zero with one line naming the path."""
    tenant = f"{tenant_prefix}nodir"
    cli.ok("init-tenant", tenant)
    result = cli("load-fixtures", tenant, "/nonexistent")
    assert result.exit_code != 0
    line = assert_one_line_error(result, result.exit_code, "error:")
    assert "/nonexistent" in line
    assert "does not exist" in line
    assert cli.json("show", tenant)["total_rows"] == 0


def test_list_and_show_report_a_tenant_whose_storage_is_missing(
    cli: Cli, tenant_prefix: str, database_url: str
) -> None:
    """A registered tenant without its file or schema: ``list`` shows every tenant, that
    one as storage missing with a warning; ``show`` of it exits 7 with the hint (both
    failed with "does not exist", exit 4, listing nothing)."""
    kept, gone = f"{tenant_prefix}kept", f"{tenant_prefix}gone"
    cli.ok("init-tenant", kept, "--load")
    cli.ok("init-tenant", gone)
    storage = _remove_storage(database_url, gone)
    problem = (
        f"registered, but its storage {storage} is missing; cleanup {gone} removes the registration"
    )

    as_json = cli.ok("list", "--prefix", tenant_prefix, "--json")
    listed = {entry["tenant_id"]: entry for entry in json.loads(as_json.stdout)}
    assert {kept: None, gone: problem} == {t: listed[t]["problem"] for t in (kept, gone)}
    assert listed[kept]["rows"] > 0
    assert as_json.stderr.strip() == f"warning: tenant '{gone}' is {problem}"
    table = cli.ok("list", "--prefix", tenant_prefix)
    assert kept in table.stdout
    assert "storage missing" in table.stdout

    line = assert_one_line_error(cli("show", gone), 7, f"error: tenant '{gone}' is registered")
    assert line == f"error: tenant '{gone}' is {problem}"
    assert cli.json("show", kept)["problem"] is None

    cli.ok("cleanup", gone, "--yes")
    assert {kept} == {t for t in cli.tenant_ids() if t.startswith(tenant_prefix)}


def test_monitor_snapshot_all_warns_of_a_tenant_whose_storage_is_missing(
    cli: Cli, tenant_prefix: str, database_url: str
) -> None:
    """``monitor snapshot --all`` (cron's command) left out a tenant whose storage is
    missing without a word, exiting 0, so its history just stopped."""
    kept, gone = f"{tenant_prefix}kept", f"{tenant_prefix}gone"
    cli.ok("init-tenant", kept)
    cli.ok("init-tenant", gone)
    _remove_storage(database_url, gone)

    result = cli.ok("monitor", "snapshot", "--all", "--json")

    taken = {s["tenant_id"] for s in json.loads(result.stdout)}
    assert (kept in taken, gone in taken) == (True, False)
    [warning] = [line for line in result.stderr.splitlines() if gone in line]
    assert "usage_snapshot_skipped" in warning
    assert "is missing" in warning


# --- validate-data -------------------------------------------------------------------


def test_validate_data_passes_on_a_loaded_tenant_and_on_all(cli: Cli, tenant_prefix: str) -> None:
    """``validate-data T`` and ``validate-data --all`` exit 0 once T is loaded."""
    tenant = f"{tenant_prefix}valid"
    cli.ok("init-tenant", tenant, "--tier", "enterprise", "--load")
    reports = cli.json("validate-data", tenant)
    assert [r["tenant_id"] for r in reports] == [tenant]
    assert reports[0]["ok"] is True
    assert reports[0]["problems"] == []
    assert sum(reports[0]["row_counts"].values()) > 0

    everything = cli.json("validate-data", "--all")
    assert tenant in {r["tenant_id"] for r in everything}
    assert all(r["ok"] for r in everything)
    cli.ok("validate-data", "--all")


def test_validate_data_recompute_checksums_reads_every_table_again(
    cli: Cli, tenant_prefix: str
) -> None:
    """Without the flag PostgreSQL proves tables a bulk load wrote by their write stamps;
    with ``--recompute-checksums`` every table is read and hashed again."""
    tenant = f"{tenant_prefix}recompute"
    bulk = Cli(cli.database_url, env={"TENANCY_BULK_LOAD_MIN_BYTES": "0"})
    bulk.ok("init-tenant", tenant, "--tier", "enterprise", "--load")
    [quick] = cli.json("validate-data", tenant)
    [full] = cli.json("validate-data", tenant, "--recompute-checksums")
    shortcut = "write_stamps" if cli.database_url.startswith("postgresql") else "recomputed"
    assert quick["checksums"]["tracks"]["method"] == shortcut
    assert {c["method"] for c in full["checksums"].values()} == {"recomputed"}
    assert quick["checksums"]["tracks"]["checksum"] == full["checksums"]["tracks"]["checksum"]


def test_validate_data_needs_either_a_tenant_or_all(sqlite_cli: Cli) -> None:
    """``validate-data`` with neither a tenant nor ``--all`` exits 2 in one line."""
    assert_one_line_error(sqlite_cli("validate-data"), 2, "error: give either a TENANT or --all")


def test_validate_source_passes_on_the_demo_set(sqlite_cli: Cli, demo_set: Path) -> None:
    """``validate-data --source <demo_set>`` exits 0 with no problems."""
    document = sqlite_cli.json("validate-data", "--source", str(demo_set))
    assert document["ok"] is True
    assert document["problems"] == []
    assert document["records"] > 0
    sqlite_cli.ok("validate-data", "--source", str(demo_set))


def test_validate_source_exits_6_listing_a_duplicate_key_and_a_dangling_reference(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    """A set with a duplicate key and a dangling reference exits 6 and lists both."""
    source = tmp_path / "broken_set"
    source.mkdir()
    artist = {
        "artist_id": "0OdUWJ0sBjDrqHygGUXeCF",
        "name": "One",
        "genres": [],
        "popularity": 1,
        "followers": 1,
    }
    album = {
        "album_id": "4aawyAB9vmqN3uQ7FjRGTy",
        "name": "Lost",
        "album_type": "album",
        "artist_id": "GhostArtistGhostArtist",
        "release_date": "2021-03-07",
        "release_date_precision": "day",
        "total_tracks": 1,
        "label": None,
    }
    (source / "artists.jsonl").write_text(
        json.dumps(artist) + "\n" + json.dumps({**artist, "name": "Again"}) + "\n",
        encoding="utf-8",
    )
    (source / "albums.jsonl").write_text(json.dumps(album) + "\n", encoding="utf-8")

    result = sqlite_cli("validate-data", "--source", str(source))
    line = assert_one_line_error(result, 6, "error: 2 problem(s) found")
    assert "artists.jsonl:2" in line
    assert "duplicate" in line
    assert "albums.jsonl:1" in line
    assert "GhostArtistGhostArtist" in line
    problems = [p for p in result.stdout.splitlines() if p.lstrip().startswith("- ")]
    assert len(problems) == 2

    as_json = sqlite_cli("validate-data", "--source", str(source), "--json")
    assert as_json.exit_code == 6
    document = json.loads(as_json.stdout)
    assert document["ok"] is False
    assert document["rules"] == {"duplicate_key": 1, "missing_reference": 1}
    assert len(document["problems"]) == 2


# --- cleanup -------------------------------------------------------------------------


def test_cleanup_asks_first_and_only_drops_on_yes(cli: Cli, tenant_prefix: str) -> None:
    """``cleanup T`` asks; "n" keeps the tenant, "y" drops it."""
    tenant = f"{tenant_prefix}asked"
    cli.ok("init-tenant", tenant)

    for answer in ("n\n", None):  # declined, or no one to answer (stdin not a terminal)
        declined = cli("cleanup", tenant, input=answer)
        assert declined.exit_code == 1
        assert "Drop 1 tenant(s)" in declined.output
        assert "Traceback" not in declined.output
        # It said nothing (declined) or "Aborted." (no answer): now what happened and
        # how to drop without being asked.
        assert "nothing dropped" in declined.stderr
        assert "--yes" in declined.stderr
        assert tenant in cli.tenant_ids()

    accepted = cli.ok("cleanup", tenant, input="y\n")
    assert "dropped 1 tenant(s)" in accepted.stdout
    assert tenant not in cli.tenant_ids()
    assert_one_line_error(cli("show", tenant), 4, "error:")


def test_cleanup_by_prefix_drops_those_tenants_and_only_those(cli: Cli, tenant_prefix: str) -> None:
    """``cleanup --prefix P --yes`` drops every tenant starting with P and no other."""
    doomed = [f"{tenant_prefix}drop_a", f"{tenant_prefix}drop_b", f"{tenant_prefix}drop_c"]
    kept = [f"{tenant_prefix}keep", f"{tenant_prefix}dro"]
    for tenant in doomed + kept:
        cli.ok("init-tenant", tenant)
    before = cli.tenant_ids()

    result = cli.ok("cleanup", "--prefix", f"{tenant_prefix}drop_", "--yes")
    assert "dropped 3 tenant(s)" in result.stdout
    assert cli.tenant_ids() == before - set(doomed)

    nothing = cli.ok("cleanup", "--prefix", f"{tenant_prefix}drop_", "--yes")
    assert "nothing to do" in nothing.stdout


def test_list_and_cleanup_by_an_upper_case_prefix_take_no_lower_case_tenant(
    cli: Cli, tenant_prefix: str
) -> None:
    """On SQLite, whose LIKE ignores case, ``--prefix CLI_...`` listed and dropped the
    ``cli_...`` tenants; on PostgreSQL it took none."""
    tenant = f"{tenant_prefix}kept"
    cli.ok("init-tenant", tenant)
    shouted = tenant_prefix.upper()

    listed = cli.json("list", "--prefix", shouted)
    result = cli.ok("cleanup", "--prefix", shouted, "--yes")

    assert [] == listed
    assert "nothing to do" in result.stdout
    assert tenant in cli.tenant_ids()


def test_cleanup_of_an_unknown_tenant_exits_4(cli: Cli, tenant_prefix: str) -> None:
    """``cleanup`` of a well-formed id that is not registered exits 4 in one line."""
    tenant = f"{tenant_prefix}ghost"
    line = assert_one_line_error(cli("cleanup", tenant, "--yes"), 4, "error:")
    assert line == f"error: tenant '{tenant}' does not exist"


def _expiring_tenants(cli: Cli, *tenants: str) -> None:
    """Create ``tenants`` with the tier's fixtures and a one-day retention, so that
    their events have expired."""
    for tenant in tenants:
        cli.ok("init-tenant", tenant, "--load", "-s", "retention_days=1")


def _expired_rows(cli: Cli, *selection: str) -> int:
    """The rows ``cleanup --expired --dry-run`` counts in ``selection`` (TENANT or
    ``--prefix P``)."""
    result = cli.ok("cleanup", "--expired", "--dry-run", *selection)
    match = re.search(r"would purge ([\d,]+) row\(s\)", result.stdout)
    assert match is not None, result.stdout
    return int(match.group(1).replace(",", ""))


def test_init_tenant_takes_retention_days_null_to_keep_events_forever(
    cli: Cli, tenant_prefix: str
) -> None:
    """``-s retention_days=null`` was the text "null", refused: every tier has a
    retention, so no tenant made from the shell could keep its events. Now it is null
    (keep forever): nothing expires, however old. ``null`` stays text elsewhere."""
    forever, dated = f"{tenant_prefix}forever", f"{tenant_prefix}dated"
    made = cli.json(
        "init-tenant", forever, "--tier", "premium", "--load", "-s", "retention_days=null"
    )
    _expiring_tenants(cli, dated)
    locale = cli.json("init-tenant", f"{tenant_prefix}text", "-s", "locale=null")

    assert made["config"]["settings"]["retention_days"] is None
    assert 0 == _expired_rows(cli, forever)
    assert 0 < _expired_rows(cli, dated)
    assert "keeps all" in cli.ok("cleanup", "--expired", "--dry-run", forever).stdout
    assert "null" == locale["config"]["settings"]["locale"]


def test_cleanup_expired_refuses_a_tenant_with_a_prefix_and_an_empty_prefix(
    cli: Cli, tenant_prefix: str
) -> None:
    """``cleanup --expired`` takes a TENANT or a non-empty --prefix (or neither): both
    together purged the prefix's tenants, and ``--prefix ""`` every tenant; now exit 2."""
    asked, other = f"{tenant_prefix}asked", f"{tenant_prefix}other"
    _expiring_tenants(cli, asked, other)
    expired = _expired_rows(cli, "--prefix", tenant_prefix)
    assert expired > 0

    message = "error: give either a TENANT or a non-empty --prefix"
    # The dry runs first: the code this fixed would have purged every tenant of the run.
    for extra in (["--dry-run"], ["--yes"]):
        assert_one_line_error(cli("cleanup", "--expired", "--prefix", "", *extra), 2, message)
        both = cli("cleanup", "--expired", asked, "--prefix", other, *extra)
        assert_one_line_error(both, 2, message)

    assert _expired_rows(cli, "--prefix", tenant_prefix) == expired


def test_cleanup_expired_shows_the_counts_and_purges_only_once_confirmed(
    cli: Cli, tenant_prefix: str
) -> None:
    """``cleanup --expired`` shows what has expired and asks: "n" or no answer (no
    terminal) purges nothing, "y" or ``--yes`` purges (it purged without asking)."""
    first, second = f"{tenant_prefix}first", f"{tenant_prefix}second"
    _expiring_tenants(cli, first)
    expired = _expired_rows(cli, "--prefix", tenant_prefix)
    assert expired > 0
    prompt = f"Purge {expired:,} expired row(s) of 1 tenant(s)?"

    for answer in ("n\n", None):
        declined = cli("cleanup", "--expired", "--prefix", tenant_prefix, input=answer)
        assert declined.exit_code == 1, declined.output
        assert f"would purge {expired:,} row(s) in 1 tenant(s)" in declined.stdout
        assert prompt in declined.stdout
        assert "Traceback" not in declined.output
        assert "nothing purged" in declined.stderr
        assert "--yes" in declined.stderr
        assert _expired_rows(cli, "--prefix", tenant_prefix) == expired
    # Every tenant (no TENANT, no --prefix) asks too: ours keeps its rows.
    assert cli("cleanup", "--expired", input="n\n").exit_code != 0
    assert _expired_rows(cli, first) == expired

    accepted = cli.ok("cleanup", "--expired", "--prefix", tenant_prefix, input="y\n")
    assert prompt in accepted.stdout
    assert f"purged {expired:,} row(s) in 1 tenant(s)" in accepted.stdout
    assert _expired_rows(cli, first) == 0

    _expiring_tenants(cli, second)
    at_once = cli.ok("cleanup", "--expired", second, "--yes")
    assert "Purge" not in at_once.stdout
    assert "purged " in at_once.stdout
    assert _expired_rows(cli, second) == 0
    nothing = cli.ok("cleanup", "--expired", "--prefix", tenant_prefix, input="")
    assert "nothing has expired; nothing to purge" in nothing.stdout


def test_cleanup_expired_purges_the_others_past_a_tenant_whose_storage_is_missing(
    cli: Cli, tenant_prefix: str, database_url: str
) -> None:
    """A tenant without its file or schema does not stop the purge: the tenants after it
    are purged and reported, then the command fails naming it (exit 7); it stopped at
    that tenant with "does not exist", exit 4, reporting nothing."""
    first, gone, last = (f"{tenant_prefix}{n}" for n in ("a_first", "b_gone", "c_last"))
    _expiring_tenants(cli, first, gone, last)
    expired = _expired_rows(cli, first)
    storage = _remove_storage(database_url, gone)
    problem = f"tenant '{gone}' is registered, but its storage {storage} is missing"

    result = cli("cleanup", "--expired", "--prefix", tenant_prefix, "--yes")
    line = assert_one_line_error(result, 7, f"error: 1 tenant(s) not purged ({gone}): ")
    assert f"{problem}; cleanup {gone} removes the registration" in line
    assert first in result.stdout
    assert last in result.stdout
    assert f"purged {2 * expired:,} row(s) in 2 tenant(s)" in result.stdout
    assert (_expired_rows(cli, first), _expired_rows(cli, last)) == (0, 0)

    # Every tenant, counted (read only: the test database may hold others' tenants).
    counted = cli("cleanup", "--expired", "--dry-run")
    assert counted.exit_code == 7, counted.output
    assert last in counted.stdout
    assert gone in counted.stderr
    alone = cli("cleanup", "--expired", gone, "--yes")
    assert_one_line_error(alone, 7, f"error: {problem}; cleanup {gone} removes")


# --- audit ---------------------------------------------------------------------------


def test_audit_lists_the_create_and_the_load(cli: Cli, tenant_prefix: str) -> None:
    """``audit T --json`` lists ``tenant.create`` and ``fixtures.load`` records of T."""
    tenant = f"{tenant_prefix}audited"
    cli.ok("init-tenant", tenant)
    cli.ok("load-fixtures", tenant, "--json")
    records = cli.json("audit", tenant)
    actions = [r["action"] for r in records]
    assert "tenant.create" in actions
    assert "fixtures.load" in actions
    assert actions.index("fixtures.load") < actions.index("tenant.create")  # newest first
    assert {r["tenant_id"] for r in records} == {tenant}
    assert {r["actor"] for r in records} == {"pytest-cli"}


def test_audit_lists_a_tenant_named_after_a_command_with_the_tenant_option(
    sqlite_cli: Cli,
) -> None:
    """``audit verify`` is the chain check, so a tenant named verify is listed with
    ``audit --tenant verify`` / ``-t verify``, and the help says so."""
    sqlite_cli.ok("init-tenant", "verify")
    sqlite_cli.ok("init-tenant", "other")

    for option in ("--tenant", "-t"):
        records = sqlite_cli.json("audit", option, "verify")
        assert {r["tenant_id"] for r in records} == {"verify"}
    assert "audit chain intact" in sqlite_cli.ok("audit", "verify").stdout
    assert "audit --tenant verify" in " ".join(sqlite_cli.ok("audit", "--help").stdout.split())


def test_audit_lists_a_tenant_given_after_options(cli: Cli, tenant_prefix: str) -> None:
    """``audit --limit 5 T`` and ``audit --json T`` list T's records; they were refused
    as "No such command"."""
    tenant = f"{tenant_prefix}optioned"
    cli.ok("init-tenant", tenant)

    records = cli.json("audit", "--limit", "5", tenant)
    assert {r["tenant_id"] for r in records} == {tenant}
    listed = json.loads(cli.ok("audit", "--json", tenant).stdout)
    assert {r["tenant_id"] for r in listed} == {tenant}
    assert "audit chain intact" in cli.ok("audit", "--limit", "5", "verify").stdout


# --- generate, schema-sql ------------------------------------------------------------


def test_generate_scale_1_seed_42_writes_the_shipped_demo_set(
    sqlite_cli: Cli, demo_set: Path, tmp_path: Path
) -> None:
    """``generate --scale 1 --seed 42`` writes the shipped demo set, byte for byte."""
    target = tmp_path / "generated"
    result = sqlite_cli.ok("generate", str(target), "--scale", "1", "--seed", "42")
    assert str(target) in result.stdout
    generated = sorted(p.relative_to(target) for p in target.rglob("*") if p.is_file())
    shipped = sorted(p.relative_to(demo_set) for p in demo_set.rglob("*") if p.is_file())
    assert generated == shipped
    for relative in shipped:
        assert (target / relative).read_bytes() == (demo_set / relative).read_bytes(), relative


def test_generate_refuses_a_set_name_longer_than_a_load_can_record(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    """A usage error (exit 2) naming --name, before anything is written."""
    target = tmp_path / "generated"

    result = sqlite_cli("generate", str(target), "--name", "x" * 300)

    said = " ".join(result.stderr.replace("│", " ").split())
    assert 2 == result.exit_code, result.output
    assert "Invalid value for --name: is 300 characters long" in said
    assert "at most 150" in said
    assert not target.exists()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ((), "spotify-demo"),
        (("--sources",), "spotify-sources"),
        (("--name", "acme-onboarding"), "acme-onboarding"),
        (("--sources", "--name", "acme-onboarding"), "acme-onboarding"),
    ],
)
def test_generate_names_the_set_as_told_for_table_files_and_sources(
    sqlite_cli: Cli, tmp_path: Path, options: tuple[str, ...], expected: str
) -> None:
    """``--name`` was ignored with ``--sources``: the manifest said spotify-sources."""
    target = tmp_path / "generated"

    sqlite_cli.ok("generate", str(target), *options)

    manifest = json.loads((target / "fixtures.json").read_text(encoding="utf-8"))
    assert expected == manifest["name"]


def test_a_set_named_too_long_is_refused_by_validate_data_and_load_on_both_backends(
    cli: Cli, tenant_prefix: str, tmp_path: Path, demo_set: Path
) -> None:
    """A 300-character manifest name: exit 5 naming fixtures.json from validate-data
    --source and load-fixtures alike (PostgreSQL refused the load with exit 7 once,
    SQLite loaded it)."""
    source = tmp_path / "named"
    shutil.copytree(demo_set, source)
    manifest = source / "fixtures.json"
    document = json.loads(manifest.read_text(encoding="utf-8"))
    manifest.write_text(json.dumps({**document, "name": "x" * 300}), encoding="utf-8")
    tenant = f"{tenant_prefix}named"
    cli.ok("init-tenant", tenant)

    checked = cli("validate-data", "--source", str(source))
    loaded = cli("load-fixtures", tenant, str(source))

    for result in (checked, loaded):
        assert 5 == result.exit_code, result.output
        assert "fixtures.json" in result.stderr
        assert "at most 150" in result.stderr
    assert 0 == cli.json("show", tenant)["rows"]


def test_schema_sql_prints_the_shipped_schema_template(sqlite_cli: Cli) -> None:
    """``schema-sql`` prints exactly ``templates/schema_template.sql``."""
    result = sqlite_cli.ok("schema-sql")
    template = BUILTIN_TEMPLATE_DIR / "schema_template.sql"
    assert result.stdout == template.read_text(encoding="utf-8")


# --- demo ----------------------------------------------------------------------------


@pytest.fixture
def demo_cli(cli: Cli) -> Iterator[Cli]:
    """The CLI with no demo tenant before or after the test."""
    cli.ok("cleanup", "--prefix", "demo_", "--yes")
    yield cli
    cli.ok("cleanup", "--prefix", "demo_", "--yes")
    assert not {t for t in cli.tenant_ids() if t.startswith("demo_")}


def test_demo_creates_three_valid_tenants_and_runs_again(demo_cli: Cli) -> None:
    """``demo --json`` makes free, premium and enterprise tenants, valid, twice in a row."""
    for _ in range(2):
        results = demo_cli.json("demo")
        by_id = {r["tenant_id"]: r for r in results}
        assert {i: r["tier"] for i, r in by_id.items()} == DEMO_IDS
        assert all(r["valid"] is True for r in results)
        assert all(r["rows"] > 0 for r in results)
        assert by_id["demo_enterprise"]["tables"] > by_id["demo_free"]["tables"]
        assert "ai_collaboration" in by_id["demo_premium"]["features"]
    assert set(DEMO_IDS) <= demo_cli.tenant_ids()


def test_demo_without_reset_refuses_existing_demo_tenants(demo_cli: Cli) -> None:
    """``demo --no-reset`` over existing demo tenants exits 3 in one line."""
    for tenant, tier in DEMO_IDS.items():  # as a first ``demo`` leaves them, without the load
        demo_cli.ok("init-tenant", tenant, "--tier", tier)
    result = demo_cli("demo", "--no-reset", "--json")
    line = assert_one_line_error(result, 3, "error:")
    assert line == "error: tenant 'demo_free' already exists"


# --- settings ------------------------------------------------------------------------


def test_a_malformed_database_url_exits_2_with_one_settings_line() -> None:
    """``--database-url not-a-url`` exits 2 with one ``invalid settings`` line."""
    result = Cli("not-a-url")("list")
    line = assert_one_line_error(result, 2, "error: invalid settings")
    assert "database_url" in line.lower()


def test_audit_verify_of_a_tampered_chain_exits_12_naming_the_record(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    """It exited 10, the code of a load that would pass a hard limit."""
    sqlite_cli.ok("init-tenant", "chained")
    sqlite_cli.ok("audit", "verify")
    with closing(sqlite3.connect(tmp_path / "data" / "tenancy.db")) as db, db:
        db.execute("UPDATE audit_log SET actor = 'someone else' WHERE action = 'tenant.create'")

    result = sqlite_cli("audit", "verify")

    assert 12 == result.exit_code, result.output
    assert "audit chain broken at audit record" in result.output


def test_audit_verify_of_a_record_inserted_past_the_head_exits_12_naming_its_position(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    """It printed "audit chain intact" (exit 0): records past the head were skipped as
    appended during the walk."""
    sqlite_cli.ok("init-tenant", "chained")
    with closing(sqlite3.connect(tmp_path / "data" / "tenancy.db")) as db, db:
        db.execute(
            "INSERT INTO audit_log (at, actor, action, tenant_id, outcome, run_id, detail, seq, "
            "detail_digest, prev_hash, entry_hash) VALUES ('2026-01-01 00:00:00', 'admin', "
            "'tenant.drop', 'chained', 'ok', NULL, '{\"forged\": true}', 1000000000, 'x', 'y', 'z')"
        )

    result = sqlite_cli("audit", "verify")

    assert 12 == result.exit_code, result.output
    assert "(position 1000000000)" in result.output


def test_a_database_url_port_past_65535_exits_2_naming_the_setting() -> None:
    """It was "unexpected error: OverflowError: connect(): port must be 0-65535", exit 1."""
    result = Cli("postgresql+asyncpg://127.0.0.1:99999/test")("list")
    line = assert_one_line_error(result, 2, "error: invalid settings")
    assert "TENANCY_DATABASE_URL: port 99999 is out of range: give 1 to 65535" in line


def test_init_tenant_load_interrupted_by_ctrl_c_leaves_no_tenant(
    cli: Cli, tenant_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C during ``init-tenant --load`` exited 130 ("rolled back") but left the
    tenant made and empty, so running the command again exited 3, "already exists"."""
    tenant = f"{tenant_prefix}interrupted"

    async def interrupted_load(*_: object, **__: object) -> None:
        signal.raise_signal(signal.SIGINT)  # asyncio.run cancels the command's task
        await asyncio.sleep(30)

    with monkeypatch.context() as patched:
        patched.setattr(FixtureManager, "load_fixtures", interrupted_load)
        result = cli("init-tenant", tenant, "--load")

    assert result.exit_code == 130, result.output
    assert tenant not in cli.tenant_ids()
    cli.ok("init-tenant", tenant, "--load")


def test_list_leaves_out_a_tenant_dropped_while_it_lists(
    cli: Cli, tenant_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tenant another process dropped between the listing and its status made the
    whole ``list`` exit 4, "tenant ... does not exist"."""
    kept, dropped = f"{tenant_prefix}kept", f"{tenant_prefix}gone"
    cli.ok("init-tenant", kept)
    cli.ok("init-tenant", dropped)
    status = FixtureManager.tenant_status

    async def dropped_meanwhile(
        self: FixtureManager, tenant_id: str, **options: bool
    ) -> TenantStatus:
        if tenant_id == dropped:
            await self.drop_tenant(tenant_id)
        return await status(self, tenant_id, **options)

    with monkeypatch.context() as patched:
        patched.setattr(FixtureManager, "tenant_status", dropped_meanwhile)
        listed = cli.json("list", "--prefix", tenant_prefix)

    assert [t["tenant_id"] for t in listed] == [kept]


def test_cleanup_by_prefix_goes_on_past_a_tenant_dropped_meanwhile(
    cli: Cli, tenant_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two ``cleanup --prefix`` at once: the tenant the other process dropped first made
    this one exit 4, "does not exist", leaving the tenants after it in place."""
    first, second = f"{tenant_prefix}a", f"{tenant_prefix}b"
    cli.ok("init-tenant", first)
    cli.ok("init-tenant", second)
    drop = FixtureManager.drop_tenant

    async def dropped_meanwhile(self: FixtureManager, tenant_id: str) -> None:
        if tenant_id == first:
            await drop(self, tenant_id)  # the other process
        await drop(self, tenant_id)

    with monkeypatch.context() as patched:
        patched.setattr(FixtureManager, "drop_tenant", dropped_meanwhile)
        result = cli.ok("cleanup", "--prefix", tenant_prefix, "--yes")

    assert "dropped 1 tenant(s)" in result.stdout
    assert not {t for t in cli.tenant_ids() if t.startswith(tenant_prefix)}
