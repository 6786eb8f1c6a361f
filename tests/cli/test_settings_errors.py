"""Bad settings exit 2 in one line; TLS a server refuses exits 7; a Redis without TLS
behind rediss:// costs one warning line, not a failure.

The runner and error checks come from ``cli_runner.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.cli.cli_runner import Cli, assert_one_line_error

NOWHERE = "postgresql+asyncpg://127.0.0.1:1/nowhere"


def test_a_redis_url_that_is_not_a_url_exits_2_naming_the_setting(tmp_path: Path) -> None:
    """TENANCY_REDIS_URL=notaurl: ``list`` exits 2 with one error line naming it."""
    cli = Cli(f"sqlite:///{tmp_path / 'data'}", env={"TENANCY_REDIS_URL": "notaurl"})

    line = assert_one_line_error(cli("list"), 2, "error:")

    assert "TENANCY_REDIS_URL" in line


@pytest.mark.parametrize(
    "query",
    [
        "sslmode=bogus",
        "sslmode=verify-full&sslrootcert=/nonexistent/root.crt",
        "sslmode=require&sslcrl=/tmp/crl.pem",
        "sslmode=prefer&sslcert=/tmp/client.crt",
    ],
)
def test_tls_parameters_that_cannot_be_honoured_exit_2_naming_the_setting(query: str) -> None:
    """A libpq TLS parameter asyncpg cannot be given exits 2 in one line, before any
    connection is tried (the server named does not exist)."""
    line = assert_one_line_error(Cli(f"{NOWHERE}?{query}")("list"), 2, "error:")

    assert "TENANCY_DATABASE_URL" in line
    assert "TypeError" not in line


@pytest.mark.postgres
def test_sslmode_require_against_a_server_without_tls_exits_7_in_one_line(
    postgres_url: str,
) -> None:
    """The test server has TLS off: sslmode=require is a storage error, not a TypeError."""
    url = make_url(postgres_url).update_query_dict({"sslmode": "require"})

    line = assert_one_line_error(
        Cli(url.render_as_string(hide_password=False))("list"), 7, "error:"
    )

    assert "SSL" in line


@pytest.mark.postgres
@pytest.mark.parametrize("mode", ["disable", "prefer"])
def test_sslmodes_a_server_without_tls_accepts_work(postgres_url: str, mode: str) -> None:
    """sslmode=disable and sslmode=prefer connect to a server with TLS off."""
    url = make_url(postgres_url).update_query_dict({"sslmode": mode})

    Cli(url.render_as_string(hide_password=False)).ok("list")


@pytest.mark.redis
def test_a_rediss_url_to_a_redis_without_tls_warns_once_and_succeeds(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    """init-tenant with rediss:// to a plain Redis exits 0 in less than the 5 s the TLS
    handshake waited before (it gives up after the Redis timeout now); stderr holds
    exactly one line, the warning that the cache falls back to the database. (The bound
    was 2 s, which a busy machine's process start alone nearly takes: 2.3-2.8 s seen.)"""
    cli = Cli(
        f"sqlite:///{tmp_path / 'data'}",
        env={
            "TENANCY_REDIS_URL": redis_url.replace("redis://", "rediss://", 1),
            "TENANCY_REDIS_PREFIX": redis_prefix,
        },
    )

    started = time.perf_counter()
    result = cli.ok("init-tenant", "tls_mismatch")
    elapsed = time.perf_counter() - started

    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert 1 == len(lines), lines
    assert "config_cache_redis_unavailable" in lines[0]
    assert "fallback=database" in lines[0]
    assert elapsed < 4.5, elapsed


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("tests.user_schema:NAMING", id="a-dict"),
        pytest.param("tests.user_schema:DATA", id="a-path"),
        pytest.param("tests.user_schema:metadata.tables", id="not-an-attribute"),
    ],
)
def test_tenancy_metadata_naming_something_else_than_a_metadata_exits_2(
    tmp_path: Path, target: str
) -> None:
    """Neither a MetaData nor a function returning one (a Table, an int...): one line
    naming the setting, exit 2 (an untyped TypeError, exit 1, before)."""
    cli = Cli(f"sqlite:///{tmp_path / 'data'}", env={"TENANCY_METADATA": target})

    line = assert_one_line_error(cli("list"), 2, "error:")

    assert "TENANCY_METADATA" in line


@pytest.mark.parametrize(
    "actor", ["", "   ", "x" * 201, "a\nb"], ids=["empty", "blank", "201-chars", "newline"]
)
def test_an_actor_the_audit_log_cannot_keep_exits_2_naming_the_setting(
    cli: Cli, tenant_prefix: str, actor: str
) -> None:
    """Before anything is written, on both backends (a 201-character actor was a storage
    error on PostgreSQL, exit 7, and an empty one was recorded as nobody on both)."""
    refused = Cli(cli.database_url, env={"TENANCY_ACTOR": actor})

    line = assert_one_line_error(refused("init-tenant", f"{tenant_prefix}a"), 2, "error:")

    assert "TENANCY_ACTOR" in line
    assert f"{tenant_prefix}a" not in cli.tenant_ids()


def test_an_actor_as_long_as_the_audit_column_is_recorded_as_given(
    cli: Cli, tenant_prefix: str
) -> None:
    """200 characters, the audit log's column, around spaces that are stripped."""
    actor = "y" * 200
    Cli(cli.database_url, env={"TENANCY_ACTOR": f" {actor} "}).ok(
        "init-tenant", f"{tenant_prefix}a"
    )

    records = cli.json("audit", f"{tenant_prefix}a")

    assert [actor] == [r["actor"] for r in records if r["action"] == "tenant.create"]


@pytest.mark.parametrize("value", ["inf", "1e30"])
def test_a_cache_ttl_redis_cannot_take_exits_2_naming_the_setting(
    sqlite_cli: Cli, value: str
) -> None:
    """It was an OverflowError (exit 1) for inf, and a Redis write failing on every
    config read for 1e30 (the breaker open, the cache never used)."""
    env = {"TENANCY_CACHE_TTL_SECONDS": value, "TENANCY_REDIS_URL": "redis://127.0.0.1:6379/0"}

    line = assert_one_line_error(Cli(sqlite_cli.database_url, env=env)("list"), 2, "error:")

    assert "TENANCY_CACHE_TTL_SECONDS" in line


def test_a_migrations_setting_without_a_history_exits_2_naming_it(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    """Even ``list`` exited 9 ("a migration failed"): it is a setting to correct. (An
    empty TENANCY_MIGRATIONS is unset: the built-in history, see test_settings.py.)"""
    cli = Cli(sqlite_cli.database_url, env={"TENANCY_MIGRATIONS": str(tmp_path / "missing")})

    line = assert_one_line_error(cli("list"), 2, "error:")

    assert "TENANCY_MIGRATIONS" in line
    assert "versions/" in line


@pytest.mark.parametrize(
    ("variable", "value"),
    [("TENANCY_DISTRIBUTED", "citus"), ("TENANCY_TENANT_ROLES", "true")],
)
def test_postgresql_only_demands_with_a_sqlite_url_exit_2_naming_the_setting(
    tmp_path: Path, variable: str, value: str
) -> None:
    """Citus schemas or per-tenant roles asked for on SQLite, which has neither: refused
    before anything is made, as the TLS settings are and as PostgreSQL without Citus
    refuses TENANCY_DISTRIBUTED=citus (a tenant without them, exit 0, before)."""
    data = tmp_path / "data"
    cli = Cli(f"sqlite:///{data}", env={variable: value})

    line = assert_one_line_error(cli("init-tenant", "alone"), 2, "error:")

    assert variable in line
    assert "postgresql://" in line
    assert not data.exists()


@pytest.mark.postgres
def test_an_empty_catalog_budget_means_never_warn(postgres_url: str) -> None:
    """README: TENANCY_CATALOG_BUDGET "unset: never". The default (500000) applies when
    the variable is absent, so unset is the empty value: no warning, not exit 2."""
    never = Cli(postgres_url, env={"TENANCY_CATALOG_BUDGET": ""})
    low = Cli(postgres_url, env={"TENANCY_CATALOG_BUDGET": "1"})

    listed = never.ok("list")

    assert "catalog" not in listed.stderr
    assert "catalog_over_budget" in low.ok("list").stderr


def test_a_database_url_parameter_asyncpg_has_not_exits_2_naming_it() -> None:
    """``?conect_timeout=5`` (misspelt): "unexpected error: TypeError: connect() got an
    unexpected keyword argument" and exit 1, before; now refused before connecting."""
    line = assert_one_line_error(Cli(f"{NOWHERE}?conect_timeout=5")("list"), 2, "error:")

    assert "TENANCY_DATABASE_URL" in line
    assert "conect_timeout" in line
    assert "TypeError" not in line


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("command_timeout=abc", "command_timeout='abc'"),
        ("timeout=soon", "timeout='soon'"),
        ("statement_cache_size=-1", "statement_cache_size='-1'"),
        ("prepared_statement_cache_size=x", "prepared_statement_cache_size='x'"),
        ("direct_tls=maybe", "direct_tls='maybe'"),
        ("target_session_attrs=bogus", "target_session_attrs='bogus'"),
        ("server_settings=x", "server_settings='x'"),
    ],
)
def test_a_bad_database_url_parameter_value_exits_2_naming_it_without_the_password(
    query: str, named: str
) -> None:
    """``?command_timeout=abc``: "unexpected error: ValueError" and exit 1, before (a
    TypeError for ``timeout``); now a settings error naming parameter and value, before
    connecting, with the URL's password nowhere."""
    url = f"postgresql+asyncpg://someone:s3cretpw@127.0.0.1:1/nowhere?{query}"

    result = Cli(url)("list")
    line = assert_one_line_error(result, 2, "error:")

    assert "TENANCY_DATABASE_URL" in line
    assert named in line
    assert "s3cretpw" not in result.output


@pytest.mark.postgres
def test_numeric_database_url_parameters_are_given_to_asyncpg_as_numbers(
    postgres_url: str,
) -> None:
    """``?timeout=10&statement_cache_size=50`` were handed to asyncpg as text: every
    command failed with "unexpected error: TypeError"; now they connect."""
    url = make_url(postgres_url).update_query_dict(
        {"timeout": "10", "command_timeout": "30", "statement_cache_size": "50"}
    )

    Cli(url.render_as_string(hide_password=False)).ok("list", "--prefix", "fixcli_none_")


def test_a_template_dir_that_is_a_file_exits_2_saying_it_is_not_a_directory(
    tmp_path: Path,
) -> None:
    """TENANCY_TEMPLATE_DIR naming a file said "template directory does not exist",
    sending the user to look for a path that is there."""
    a_file = tmp_path / "templates.json"
    a_file.write_text("{}", encoding="utf-8")
    cli = Cli(f"sqlite:///{tmp_path / 'data'}", env={"TENANCY_TEMPLATE_DIR": str(a_file)})

    line = assert_one_line_error(cli("list"), 2, "error:")

    assert "not a directory" in line
    assert "does not exist" not in line


@pytest.mark.postgres
def test_a_statement_past_command_timeout_says_it_timed_out(postgres_url: str) -> None:
    """``?command_timeout=...`` too short for the server: "postgresql failed:
    TimeoutError", which names neither the server nor the setting; now one line saying
    what timed out and which URL parameters bound it, exit 7 as before."""
    url = make_url(postgres_url).update_query_dict({"command_timeout": "0.000001"})

    result = Cli(url.render_as_string(hide_password=False))("list")

    # A timeout is transient: a retry's storage_retry warning may come before the error.
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert 7 == result.exit_code, result.output
    assert "timed out" in line
    assert "command_timeout" in line
