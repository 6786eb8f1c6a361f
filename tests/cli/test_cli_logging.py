"""The CLI configures logging at its entry point: events on stderr (``--verbose``,
``--log-json``), exceptions without local variables, tracebacks only with ``--debug``."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tenancy_fixtures.cli.app import _configure_logging
from tenancy_fixtures.logs import get_logger
from tests.cli.cli_runner import Cli

#: A port nothing listens on: every Redis call fails fast.
DEAD_REDIS = "redis://127.0.0.1:1/0"
#: A record value; built here so that no source line a traceback quotes holds it.
SECRET = "-".join(["Quartz", "Heron"])


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """The CLI on a fresh SQLite data directory (logging is the same on both backends)."""
    return Cli(f"sqlite:///{tmp_path / 'data'}")


def events(stderr: str) -> list[dict[str, object]]:
    """The JSON log lines of ``stderr``."""
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def log_a_failure() -> None:
    """Log an exception raised where a local variable holds a record value."""
    record = {"display_name": SECRET}
    try:
        raise RuntimeError(f"failed on a record of {len(record)} field(s)")
    except RuntimeError:
        get_logger("tenancy_fixtures.test_cli_logging").exception("load_failed")


def test_verbose_logs_each_step_to_stderr_not_stdout(cli: Cli) -> None:
    """``--verbose`` shows ``tenant_created`` on stderr and leaves stdout to the command."""
    result = cli.ok("--verbose", "init-tenant", "verbose_acme")

    assert (True, False) == ("tenant_created" in result.stderr, "tenant_created" in result.stdout)


def test_without_verbose_info_events_are_not_logged(cli: Cli) -> None:
    """Without ``--verbose`` the CLI logs warnings and errors only."""
    result = cli.ok("init-tenant", "quiet_acme")

    assert "tenant_created" not in result.stderr + result.stdout


def test_log_json_writes_one_json_object_per_event_to_stderr(cli: Cli) -> None:
    """``--log-json`` events are JSON lines on stderr carrying the tenant id and level."""
    result = cli.ok("--verbose", "--log-json", "init-tenant", "json_acme")

    created = [e for e in events(result.stderr) if e["event"] == "tenant_created"]
    assert [("json_acme", "info")] == [(e["tenant_id"], e["level"]) for e in created]


def json_stderr_of_list(tmp_path: Path, schema_module: str) -> list[dict[str, object]]:
    """The events of ``--log-json list`` with ``schema_module`` as the user's schema,
    after checking that every stderr line is JSON."""
    cli = Cli(
        f"sqlite:///{tmp_path / 'data'}",
        env={"TENANCY_METADATA": f"{schema_module}:metadata"},
    )

    result = cli.ok("--log-json", "list", "--json")

    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, result.stderr
    assert all(line.startswith("{") for line in lines), lines
    return events(result.stderr)


def test_with_log_json_a_python_warning_is_a_json_event_too(tmp_path: Path) -> None:
    """A warning a library raises during a command (here: the user's schema module, on
    import) was printed as Python's two plain lines among the JSON events."""
    logged = json_stderr_of_list(tmp_path, "tests.warning_schema")

    [warned] = [e for e in logged if e["event"] == "python_warning"]
    assert ("UserWarning", "a schema module that warns") == (
        warned["category"],
        warned["message"],
    )


def test_with_log_json_a_record_of_the_standard_library_logging_is_a_json_event_too(
    tmp_path: Path,
) -> None:
    """A library logging through :mod:`logging` (asyncio, a driver) printed a plain line
    among the JSON events."""
    logged = json_stderr_of_list(tmp_path, "tests.logging_schema")

    [record] = [e for e in logged if e.get("logger") == "some.driver"]
    assert ("a driver that logs through logging", "warning") == (record["event"], record["level"])


def test_warnings_reach_stderr_without_verbose(tmp_path: Path) -> None:
    """An unreachable Redis is reported on stderr although ``--verbose`` is not given."""
    cli = Cli(f"sqlite:///{tmp_path / 'data'}", env={"TENANCY_REDIS_URL": DEAD_REDIS})

    result = cli.ok("--log-json", "init-tenant", "redis_down")

    cache = [e for e in events(result.stderr) if str(e["event"]).startswith("config_cache_")]
    assert cache
    assert {"warning", "error"} >= {e["level"] for e in cache}


def test_a_logged_exception_is_one_line_without_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without ``--debug`` a logged exception is its type and message on the event's line."""
    _configure_logging(verbose=False, json_logs=False, debug=False)

    log_a_failure()

    lines = capsys.readouterr().err.strip().splitlines()
    assert 1 == len(lines)
    assert "RuntimeError: failed on a record of 1 field(s)" in lines[0]
    assert SECRET not in lines[0]


@pytest.mark.parametrize("json_logs", [False, True], ids=["console", "json"])
def test_with_debug_a_logged_exception_shows_its_traceback_without_locals(
    capsys: pytest.CaptureFixture[str], json_logs: bool
) -> None:
    """``--debug`` adds the traceback, never the local variables of its frames."""
    _configure_logging(verbose=False, json_logs=json_logs, debug=True)

    log_a_failure()

    err = capsys.readouterr().err
    assert "log_a_failure" in err  # the traceback names the frame
    assert SECRET not in err
    assert "locals" not in err


def test_with_log_json_stderr_holds_json_lines_only_when_it_is_no_terminal(
    cli: Cli,
) -> None:
    """A log shipper reading stderr of `--log-json` got the progress bars' last frame
    ("migrating ━━━ 1/? 0:00:00", a blank line after a load) among the JSON events."""
    cli.ok("init-tenant", "acme")

    runs = [
        cli.ok("--log-json", "-v", "load-fixtures", "acme"),
        cli.ok("--log-json", "-v", "migrate", "-t", "acme", "--to", "0002"),
        cli.ok("--log-json", "-v", "migrate", "-t", "acme"),
    ]

    assert "fixtures_loaded" in [e["event"] for e in events(runs[0].stderr)]
    for result in runs:
        lines = result.stderr.splitlines()
        assert all(line.startswith("{") for line in lines), lines
        assert all(isinstance(event, dict) for event in events(result.stderr))


def test_with_audit_logging_off_every_change_still_logs_with_its_tenant_and_run(
    tmp_path: Path,
) -> None:
    """README: with TENANCY_AUDIT_LOGGING=false "operations still log". A config change,
    a token and a migration logged nothing on success: with the audit log off they left
    no trace at all."""
    cli = Cli(f"sqlite:///{tmp_path / 'data'}", env={"TENANCY_AUDIT_LOGGING": "false"})
    cli.ok("init-tenant", "acme")
    cli.ok("migrate", "-t", "acme", "--to", "0002")

    changed = events(cli.ok("--log-json", "-v", "config", "acme", "-l", "users=4").stderr)
    token = events(cli.ok("--log-json", "-v", "token", "create", "--tenant", "acme").stderr)
    migrated = events(cli.ok("--log-json", "-v", "migrate", "-t", "acme").stderr)

    for logged, action in ((changed, "config.apply"), (token, "token.create")):
        [done] = [e for e in logged if e.get("action") == action]
        assert ("acme", "ok") == (done["tenant_id"], done["outcome"])
        assert done["run_id"]
    [moved] = [e for e in migrated if e["event"] == "tenant_migrated"]
    assert ("acme", "0003_daily_streams") == (moved["tenant_id"], moved["to"])
    assert moved["run_id"]


def only_json_lines(stderr: str) -> list[dict[str, object]]:
    """``stderr``'s lines, each required to be one JSON object."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    parsed = [json.loads(line) for line in lines]  # raises on a line that is not JSON
    assert all(isinstance(event, dict) for event in parsed), lines
    return parsed


def test_with_log_json_the_cli_own_lines_are_json_objects_too(cli: Cli, tmp_path: Path) -> None:
    """``error: ...``, ``note: ...``, usage errors and --debug's traceback stayed plain
    text among the JSON events of ``--log-json``: each is one JSON object now, at its
    level, an error with its exit code; the exit codes are unchanged."""
    audit_off = Cli(cli.database_url, env={"TENANCY_AUDIT_LOGGING": "false"})
    bad_setting = Cli(f"sqlite:///{tmp_path / 'data'}", env={"TENANCY_BATCH_SIZE": "-1"})
    runs = {
        "missing": cli("--log-json", "show", "ghost"),
        "traceback": cli("show", "ghost", "--log-json", "--debug"),
        "usage": cli("--log-json", "list", "--bogus"),
        "setting": bad_setting("--log-json", "list"),
        "note": audit_off("--log-json", "audit"),
    }

    parsed = {name: only_json_lines(result.stderr) for name, result in runs.items()}

    assert {"missing": 4, "traceback": 4, "usage": 2, "setting": 2, "note": 0} == {
        name: result.exit_code for name, result in runs.items()
    }
    [missing] = parsed["missing"]
    assert ("tenant 'ghost' does not exist", "error", 4) == (
        missing["event"],
        missing["level"],
        missing["exit_code"],
    )
    assert "timestamp" in missing
    assert "Traceback" in str(parsed["traceback"][0]["exception"])
    assert "No such option: --bogus" in str(parsed["usage"][0]["event"])
    assert "TENANCY_BATCH_SIZE" in str(parsed["setting"][0]["event"])
    assert "info" == parsed["note"][0]["level"]
    assert str(parsed["note"][0]["event"]).startswith("note: audit logging is off")


def test_without_log_json_the_cli_lines_stay_plain_text(cli: Cli) -> None:
    """The human lines are JSON only under ``--log-json`` (a run with it in the same
    process leaves the next run's lines plain)."""
    cli("--log-json", "show", "ghost")

    result = cli("show", "ghost")

    assert "error: tenant 'ghost' does not exist\n" == result.stderr
