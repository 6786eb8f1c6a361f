"""CLI conventions a new user expects: --version, global options anywhere, URLs as
written elsewhere, flags shown as flags, and errors that say what to do next."""

from __future__ import annotations

import json
import re
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tenancy_fixtures import ConfigFixture, FixtureManager, Settings, TenantFixture
from tenancy_fixtures.cli.app import app
from tenancy_fixtures.errors import TenantNotFoundError
from tests.cli.cli_runner import HERMETIC_ENV, Cli, assert_one_line_error

COMMAND_HELP = [[], ["load-fixtures"], ["init-tenant"], ["validate-data"], ["migrate"]]


def test_version_prints_the_installed_version() -> None:
    from tenancy_fixtures import __version__

    result = CliRunner().invoke(app, ["--version"])

    assert 0 == result.exit_code
    assert f"tenancy-fixtures {__version__}\n" == result.stdout


def test_python_dash_m_runs_the_command_where_its_script_is_not_on_the_path() -> None:
    """``python -m tenancy_fixtures`` is the command too (it was "No module named
    tenancy_fixtures.__main__"): a virtualenv not activated, a container's bare Python."""
    from tenancy_fixtures import __version__

    result = subprocess.run(
        [sys.executable, "-m", "tenancy_fixtures", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert 0 == result.returncode, result.stderr
    assert f"tenancy-fixtures {__version__}\n" == result.stdout


def test_global_options_are_accepted_after_the_command(sqlite_cli: Cli) -> None:
    """`list --database-url URL --json` reads the URL given after the command."""
    sqlite_cli.ok("init-tenant", "acme")
    runner = CliRunner()

    result = runner.invoke(
        app,
        ["list", "--database-url", sqlite_cli.database_url, "--json", "-v"],
        env=dict(HERMETIC_ENV),
    )

    assert 0 == result.exit_code, result.output
    assert '"tenant_id": "acme"' in result.stdout


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://app:pw@db:5432/tenants", "postgresql+asyncpg://app:pw@db:5432/tenants"),
        (
            "postgresql://db/tenants?sslmode=require",
            "postgresql+asyncpg://db/tenants?sslmode=require",
        ),
        ("postgresql+asyncpg://db/tenants", "postgresql+asyncpg://db/tenants"),
    ],
)
def test_postgres_urls_are_normalised_to_the_asyncpg_driver(given: str, used: str) -> None:
    assert used == Settings(database_url=given).database_url


def test_another_postgresql_driver_is_refused_saying_what_to_write(sqlite_cli: Cli) -> None:
    result = sqlite_cli("--database-url", "postgresql+psycopg2://db/tenants", "list")

    line = assert_one_line_error(result, 2, "error: invalid settings")
    assert "postgresql+asyncpg://" in line


@pytest.mark.parametrize("command", COMMAND_HELP, ids=lambda c: " ".join(c) or "root")
def test_boolean_flags_are_shown_without_a_value_type(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "120"})

    assert 0 == result.exit_code
    assert "<bool>" not in result.stdout
    assert "--help" in result.stdout


def test_options_without_a_command_print_the_help_and_say_what_is_missing() -> None:
    result = CliRunner().invoke(app, ["--log-json"], env=dict(HERMETIC_ENV))

    assert 2 == result.exit_code
    assert "init-tenant" in result.stdout
    assert "no command given" in result.stderr


def test_a_sqlite_url_whose_parent_directory_is_missing_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent_dir"
    cli = Cli(f"sqlite:///{missing / 'sub'}")

    result = cli("list")

    line = assert_one_line_error(result, 2, "error: the SQLite data directory")
    assert f"Create {missing} first" in line
    assert not missing.exists()


def test_a_sqlite_url_naming_a_file_exits_2_and_leaves_the_file_alone(tmp_path: Path) -> None:
    """sqlite:///app.db as SQLAlchemy users write it, where app.db is a file: the data
    directory cannot be there (it was a storage failure, exit 7, "Not a directory")."""
    plain = tmp_path / "app.db"
    plain.write_bytes(b"mine")

    result = Cli(f"sqlite:///{plain}")("init-tenant", "acme")

    line = assert_one_line_error(result, 2, "error: the SQLite data directory")
    assert "is a file" in line
    assert "sqlite:///DATA_DIR" in line
    assert b"mine" == plain.read_bytes()


def test_an_in_memory_sqlite_url_exits_2_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sqlite:///:memory: made a directory named ':memory:' in the working directory."""
    monkeypatch.chdir(tmp_path)

    result = Cli("sqlite:///:memory:")("list")

    line = assert_one_line_error(result, 2, "error:")
    assert "TENANCY_DATABASE_URL" in line
    assert ":memory:" in line
    assert [] == list(tmp_path.iterdir())


@pytest.mark.parametrize("cluster", ["-vy", "-yv"])
def test_the_global_verbose_flag_combines_with_a_command_flag_after_the_command(
    cli: Cli, tenant_prefix: str, cluster: str
) -> None:
    """``cleanup -vy`` (for ``-v -y``) was "No such option: -v": the global options moved
    before the command only when written alone."""
    cli.ok("init-tenant", f"{tenant_prefix}a")

    result = cli.ok("cleanup", cluster, "--prefix", tenant_prefix)

    assert "operation_done" in result.stderr  # -v: each step logged
    assert f"{tenant_prefix}a" not in cli.tenant_ids()  # -y: no question asked


def test_a_cluster_whose_option_takes_a_value_keeps_the_rest_as_the_value(
    sqlite_cli: Cli,
) -> None:
    """``-tv`` is ``-t v``, as Click reads it: the ``v`` is the tenant, not ``--verbose``."""
    result = sqlite_cli("migrate", "status", "-tv")

    assert 4 == result.exit_code, result.output
    assert "tenant 'v' does not exist" in result.stderr


@pytest.mark.parametrize("value", ["-v", "-vy"])
def test_an_option_value_that_looks_like_the_verbose_flag_stays_the_value(
    sqlite_cli: Cli, value: str
) -> None:
    """``list --prefix -v`` moved ``-v`` before the command as ``--verbose``, leaving
    ``--prefix`` without its value (exit 2); the value of an option stays its value."""
    sqlite_cli.ok("init-tenant", "acme")

    result = sqlite_cli.ok("list", "--prefix", value, "--json")

    assert [] == json.loads(result.stdout)


def test_debug_shows_the_traceback_and_keeps_the_exit_code(cli: Cli, tenant_prefix: str) -> None:
    """``--debug`` adds the traceback; a script still reads 3 for a tenant that exists and
    4 for one that does not (every expected failure was exit 1 under --debug)."""
    tenant = f"{tenant_prefix}a"
    cli.ok("init-tenant", tenant)

    exists = cli("--debug", "init-tenant", tenant)
    missing = cli("show", f"{tenant_prefix}ghost", "--debug")

    assert (3, 4) == (exists.exit_code, missing.exit_code), exists.output + missing.output
    assert "Traceback" in exists.stderr
    assert "TenantAlreadyExistsError" in exists.stderr
    assert f"error: tenant '{tenant}' already exists" in exists.stderr
    assert "TenantNotFoundError" in missing.stderr


def test_audit_of_a_tenant_that_never_existed_exits_4(sqlite_cli: Cli) -> None:
    assert_one_line_error(sqlite_cli("audit", "ghost"), 4, "error: tenant 'ghost' does not exist")


def test_audit_of_a_dropped_tenant_still_shows_its_trail(sqlite_cli: Cli) -> None:
    sqlite_cli.ok("init-tenant", "gone")
    sqlite_cli.ok("cleanup", "gone", "--yes")

    actions = {entry["action"] for entry in sqlite_cli.json("audit", "gone")}

    assert "tenant.create" in actions


def test_a_source_path_that_does_not_exist_is_invalid_input(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    sqlite_cli.ok("init-tenant", "acme")
    missing = tmp_path / "nope"

    for args in (
        ["load-fixtures", "acme", str(missing)],
        ["validate-data", "--source", str(missing)],
    ):
        line = assert_one_line_error(sqlite_cli(*args), 2, f"error: {missing} does not exist")
        assert "generate DIR" in line


def test_a_source_path_that_is_a_device_is_invalid_input_saying_what_it_is(
    cli: Cli, tenant_prefix: str
) -> None:
    """``load-fixtures T /dev/null`` was exit 5, "source path does not exist", for a path
    that exists: it is no file nor directory, said as such, exit 2 like a missing one."""
    tenant = f"{tenant_prefix}a"
    cli.ok("init-tenant", tenant)

    for args in (
        ["load-fixtures", tenant, "/dev/null"],
        ["validate-data", "--source", "/dev/null"],
    ):
        line = assert_one_line_error(cli(*args), 2, "error: /dev/null is neither")
        assert "does not exist" not in line


def test_the_loader_names_a_device_as_no_file_nor_directory() -> None:
    """The library's refusal of such a path said "does not exist" too."""
    from tenancy_fixtures.errors import FixtureSetError
    from tenancy_fixtures.loading.sources import find_source_files

    with pytest.raises(FixtureSetError, match="neither a file nor a directory"):
        find_source_files(Path("/dev/null"))


def test_warm_up_on_sqlite_says_what_it_prepared(sqlite_cli: Cli) -> None:
    result = sqlite_cli.ok("warm-up")

    assert "0 spare schema" not in result.stdout
    assert "template file" in result.stdout


def test_a_refused_connection_names_the_url_without_its_password_and_what_to_do(
    sqlite_cli: Cli,
) -> None:
    result = sqlite_cli("--database-url", "postgresql://app:s3cret@127.0.0.1:1/tenants", "list")

    line = assert_one_line_error(result, 7, "error: postgresql failed: cannot reach the server")
    assert "postgresql+asyncpg://app:***@127.0.0.1:1/tenants" in line
    assert "s3cret" not in result.output
    assert "--database-url" in line


@pytest.fixture(params=["resets", "answers-http"])
def not_postgres_port(request: pytest.FixtureRequest) -> Iterator[int]:
    """A local TCP server that is not PostgreSQL: one resets every connection, the other
    answers the start-up as an HTTP server would."""

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.recv(64)  # the start-up (or SSL) request
            if request.param == "resets":
                self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            else:
                self.request.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler) as server:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield server.server_address[1]
        server.shutdown()


def test_a_server_that_is_not_postgresql_is_named_with_what_to_check(
    sqlite_cli: Cli, not_postgres_port: int
) -> None:
    """A Redis or HTTP port given for PostgreSQL printed only "[Errno 104] Connection reset
    by peer" or asyncpg's "rejected SSL upgrade", naming no URL."""
    url = f"postgresql://app@127.0.0.1:{not_postgres_port}/tenants"

    result = sqlite_cli("--database-url", url, "list")

    line = assert_one_line_error(result, 7, "error: postgresql failed: the server at")
    assert f"postgresql+asyncpg://app@127.0.0.1:{not_postgres_port}/tenants" in line
    assert "did not answer as PostgreSQL" in line
    assert "--database-url" in line


def test_a_password_in_the_url_query_is_hidden_too(sqlite_cli: Cli) -> None:
    """``sslpassword`` (the client key's passphrase, a README parameter) and ``password``
    were printed as given in the unreachable server's error line."""
    url = "postgresql://app@127.0.0.1:1/tenants?sslmode=require&sslpassword=k3yPass&password=s3cret"

    result = sqlite_cli("--database-url", url, "list")

    line = assert_one_line_error(result, 7, "error: postgresql failed: cannot reach the server")
    assert "k3yPass" not in result.output
    assert "s3cret" not in result.output
    assert "sslpassword=***" in line
    assert "sslmode=require" in line


def test_a_database_url_option_without_its_value_after_the_command_says_so() -> None:
    """It took the command for the URL and answered "Missing command."."""
    result = CliRunner().invoke(app, ["list", "--database-url"])

    assert 2 == result.exit_code
    assert "Invalid value for '--database-url': give it a URL" in result.output
    assert "Missing command" not in result.output


def test_an_unknown_limit_lists_the_valid_ones(sqlite_cli: Cli) -> None:
    line = assert_one_line_error(
        sqlite_cli("init-tenant", "acme", "-l", "foo=1"), 2, "error: tenant 'acme'"
    )

    assert re.search(r"unknown limit; the limits are api_calls, storage, users", line)


def test_a_negative_limit_is_refused_as_negative_and_a_signed_one_is_a_number(
    sqlite_cli: Cli,
) -> None:
    """``-1`` stayed text: "Input should be a valid integer (value '-1')"."""
    line = assert_one_line_error(
        sqlite_cli("init-tenant", "acme", "-l", "users=-1"), 2, "error: tenant 'acme'"
    )
    assert "limits.users: Input should be greater than or equal to 0 (value -1)" in line

    sqlite_cli.ok("init-tenant", "acme", "-l", "users=+5")
    assert 5 == sqlite_cli.json("show", "acme")["config"]["limits"]["users"]


def test_an_unknown_feature_lists_the_valid_ones(sqlite_cli: Cli) -> None:
    line = assert_one_line_error(
        sqlite_cli("init-tenant", "acme", "-f", "nope"), 2, "error: tenant 'acme'"
    )

    assert "the flags are advanced_analytics" in line


async def test_the_manager_refuses_to_apply_a_config_to_an_unknown_tenant(
    manager: FixtureManager,
) -> None:
    """A mistyped id is an error, not a new tenant of tier free; create=True creates it."""
    with pytest.raises(TenantNotFoundError):
        await manager.apply_tenant_config(TenantFixture(tenant_id="typo_001", tier="premium"))
    assert [] == await manager.list_tenants()

    await manager.apply_tenant_config(TenantFixture(tenant_id="new_001"), create=True)

    assert ["new_001"] == [t.tenant_id for t in await manager.list_tenants()]


async def test_a_config_fixture_applied_alone_still_creates_its_tenant(
    manager: FixtureManager,
) -> None:
    """The DESIGN's example, verbatim on a fresh store; create=False refuses instead."""
    tenant_fixture = TenantFixture(
        tenant_id="premium_001",
        features=["ai_collaboration", "advanced_analytics"],
        limits={"api_calls": 10000, "storage": "100GB"},
    )
    config_fixture = ConfigFixture(manager.settings)
    try:
        await config_fixture.apply_tenant_config(tenant_fixture)
        with pytest.raises(TenantNotFoundError):
            await config_fixture.apply_tenant_config(TenantFixture(tenant_id="other"), create=False)
    finally:
        await config_fixture.aclose()

    assert "premium_001" == (await manager.get_tenant("premium_001")).tenant_id


def test_a_history_export_without_its_listener_names_the_option_to_give(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    export = tmp_path / "StreamingHistory0.json"
    export.write_text(
        '[{"endTime": "2025-01-01 10:00", "artistName": "A", "trackName": "T", "msPlayed": 1000}]',
        encoding="utf-8",
    )
    sqlite_cli.ok("init-tenant", "acme")

    line = assert_one_line_error(sqlite_cli("load-fixtures", "acme", str(export)), 5, "error:")

    assert "-o user_id=<id>" in line
    assert "user_id=u_ava" not in line
    sqlite_cli.ok("load-fixtures", "acme", str(export), "-o", "user_id=u_ava")


def _commands(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = [(" ".join(path) or "root", command)]
    for name, sub in getattr(command, "commands", {}).items():
        found += _commands(sub, (*path, name))
    return found


def test_each_command_is_listed_with_a_one_line_summary() -> None:
    """A command's list entry is its help's first paragraph, line breaks kept: eight
    commands (`cleanup`, `export`, `erase`, `forecast`...) showed a ragged paragraph in
    `tenancy-fixtures -h`, cut wherever the docstring's lines ended."""
    import typer

    ragged = [
        name
        for name, command in _commands(typer.main.get_command(app))
        if "\n" in (getattr(command, "help", None) or "").strip().split("\n\n")[0]
    ]

    assert [] == ragged
    listing = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"}).stdout
    [cleanup] = [line for line in listing.splitlines() if " cleanup " in line]
    assert "purge their events past retention." in cleanup
