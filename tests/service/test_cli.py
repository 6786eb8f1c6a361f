"""The CLI's service commands: token create/list/revoke and serve."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.cli.cli_runner import Cli, with_manager
from tests.service.served import serve_command, served


@pytest.fixture
def cli(database_url: str) -> Cli:
    """The CLI on this test's backend."""
    return Cli(database_url)


def test_token_create_prints_the_token_once_and_list_never_shows_it(cli: Cli) -> None:
    """create prints the bearer string on stdout; list shows id, tenant and scope only;
    revoke makes it unusable; every step is audited."""
    cli.ok("init-tenant", "tok_tenant")
    try:
        created = cli.ok("token", "create", "--tenant", "tok_tenant", "--scope", "write", "--json")
        document = json.loads(created.stdout)
        bearer_string = document["token"]
        assert bearer_string.startswith("tfk_")
        listed = cli.ok("token", "list", "--json").stdout
        assert bearer_string.split(".")[1] not in listed
        assert document["token_id"] in listed
        plain = cli.ok("token", "create", "--scope", "read")
        assert plain.stdout.strip().startswith("tfk_")
        cli.ok("token", "revoke", document["token_id"])
        assert document["token_id"] not in cli.ok("token", "list", "--json").stdout
        again = cli("token", "revoke", document["token_id"])
        assert again.exit_code == 4
        found = with_manager(cli.database_url, lambda m: m.authenticate_token(bearer_string))
        assert found is None
        audit = cli.ok("audit", "tok_tenant", "--json").stdout
        assert "token.create" in audit
        assert "token.revoke" in audit
    finally:
        cli.ok("cleanup", "tok_tenant", "--yes")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("token", "create", "--scope", "root"), 2),
        (("token", "create", "--tenant", "ghost"), 4),
        (("token", "create", "--tenant", "Bad-Id"), 2),
        # It listed no token, exit 0, as for a tenant without one.
        (("token", "list", "--tenant", "ghost"), 4),
    ],
)
def test_token_commands_refuse_bad_scopes_and_unknown_tenants(
    cli: Cli, args: tuple[str, ...], code: int
) -> None:
    """An unknown scope, an unknown tenant or an invalid id: one line and its exit code."""
    result = cli(*args)
    assert result.exit_code == code, result.output
    assert not result.stdout.strip()


def test_cli_help_does_not_import_fastapi() -> None:
    """`tenancy-fixtures --help` and `serve --help` stay cheap: no FastAPI, no uvicorn."""
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from tenancy_fixtures.cli.app import app\n"
        "for args in (['--help'], ['serve', '--help'], ['token', '--help']):\n"
        "    assert CliRunner().invoke(app, args).exit_code == 0\n"
        "web = ('fastapi', 'uvicorn', 'starlette')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in web))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _said(server: subprocess.Popen[bytes]) -> str:
    """What a server that died wrote on stderr."""
    if server.stderr is None:
        return ""
    server.stderr.seek(0)
    return server.stderr.read().decode(errors="replace")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_serve_answers_over_a_real_socket(database_url: str) -> None:
    """`tenancy-fixtures serve` starts uvicorn on the port given; /healthz answers and a
    request without a token is 401."""
    # One client for the whole wait: making one costs ~35 ms of CPU (its TLS context).
    with served(database_url) as (server, base), httpx.Client(base_url=base) as http:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = http.get("/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, _said(server)
                assert time.monotonic() < deadline, "serve did not start within 30 s"
                time.sleep(0.2)
        assert health.json() == {"status": "ok"}
        assert http.get("/tenants", timeout=5).status_code == 401


def _serve(
    database_url: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`tenancy-fixtures --database-url URL serve ARGS` in a process of its own, which
    must end by itself (a failure to start) within a minute."""
    return subprocess.run(
        serve_command(database_url, *args),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_serve_on_a_port_in_use_exits_1_in_one_line_naming_the_address(
    database_url: str,
) -> None:
    """Another process listening on the port: one line naming the address and what to do,
    exit 1 (an other failure), not uvicorn's 3 (which says "tenant exists" here)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _serve(database_url, "--port", str(port))
    assert done.returncode == 1, done.stderr
    line = _one_line(done.stderr)
    assert line.startswith("error: cannot listen on 127.0.0.1:"), line
    assert str(port) in line
    assert "--port" in line


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_serve_with_a_database_it_cannot_reach_exits_7_in_one_line(database_url: str) -> None:
    """A PostgreSQL server that does not answer: the storage failure's one line, password
    hidden, and exit 7, as every other command; not a lifespan traceback and exit 3."""
    del database_url  # the server below never answers, whatever the backend
    done = _serve("postgresql+asyncpg://app:s3cret@127.0.0.1:1/test", "--port", "0")
    assert done.returncode == 7, done.stderr
    line = _one_line(done.stderr)
    assert line.startswith("error: postgresql failed: cannot reach the server"), line
    assert "s3cret" not in done.stderr


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_serve_refuses_an_unknown_log_level_as_a_usage_error(database_url: str) -> None:
    """`--log-level loud` is invalid input (exit 2, naming the levels), not a KeyError
    traceback from uvicorn with exit 1."""
    done = _serve(database_url, "--port", "0", "--log-level", "loud")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "loud" in done.stderr
    assert "warning" in done.stderr


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("variable", ["TENANCY_SERVICE_WORK_DIR", "TENANCY_SERVICE_LOAD_ROOT"])
def test_a_service_folder_setting_naming_a_file_exits_2_naming_it(
    database_url: str, tmp_path: Path, variable: str
) -> None:
    """A file where the uploads' work folder (or the load root) should be: the service
    started, and every upload answered 500 (FileExistsError in its log)."""
    plain = tmp_path / "plain"
    plain.write_text("not a folder")

    done = _serve(database_url, "--port", "0", env={variable: str(plain)})

    assert done.returncode == 2, done.stderr
    line = _one_line(done.stderr)
    assert line.startswith("error:"), line
    assert variable in line
    assert "directory" in line


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_serve_with_log_json_writes_json_lines_only(database_url: str) -> None:
    """`--log-json serve`: uvicorn's own lines (started, access log, shutdown) were
    plain text among the JSON events, which a log shipper cannot parse."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable,
        "-c",
        "from tenancy_fixtures.cli.app import main; main()",
        "--log-json",
        "--database-url",
        database_url,
        "serve",
        "--port",
        str(port),
    ]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert 200 == httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code
                break
            except httpx.TransportError:
                assert server.poll() is None, "serve died"
                assert time.monotonic() < deadline, "serve did not start within 30 s"
                time.sleep(0.2)
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    lines = [line for line in err.decode().splitlines() if line.strip()]
    events = [json.loads(line) for line in lines if line.startswith("{")]
    assert [] == [line for line in lines if not line.startswith("{")]
    assert any("GET /healthz" in str(e.get("event")) for e in events), events


@pytest.mark.parametrize("name", ["first\nsecond", "x" * 201], ids=["newline", "too-long"])
def test_a_token_name_with_a_newline_or_past_200_characters_is_refused(cli: Cli, name: str) -> None:
    """A newline in ``--name`` printed a second, forged-looking row in ``token list``;
    a name past the column's 200 characters was cut short there (and kept whole in the
    audit log). Both are exit 2 now, and no token is issued."""
    before = cli.ok("token", "list", "--json").stdout

    result = cli("token", "create", "--name", name)

    assert 2 == result.exit_code, result.output
    assert result.stderr.startswith("error: token name")
    assert not result.stdout.strip()
    assert before == cli.ok("token", "list", "--json").stdout
