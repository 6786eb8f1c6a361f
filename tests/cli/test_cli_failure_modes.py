"""How the CLI fails: one ``error:`` line and the right exit code, never a traceback.

Each test pins a behaviour fixed after review: unreachable or missing databases, a
Redis that is down, unwritable paths, markup in names, empty prefixes, stray tenant
files, non-ASCII limits and values no JSON column can hold. The runner and error
checks come from ``cli_runner.py``.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tenancy_fixtures.spotify.generator import MAX_SCALE
from tests.cli.cli_runner import Cli, assert_one_line_error

UNREACHABLE_POSTGRES = "postgresql+asyncpg://127.0.0.1:1/nowhere"
DOWN_REDIS = "redis://127.0.0.1:1/0"
MARKUP_NAME = "[/]evil"


# --- helpers -------------------------------------------------------------------------


def write_ai_models_yaml(directory: Path, parameters: str) -> Path:
    """A fixture set holding one ``ai_models.yaml`` record with ``parameters`` as given."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ai_models.yaml").write_text(
        "- model_id: m1\n"
        "  provider: internal\n"
        "  model_name: two-tower\n"
        "  version: '1.0'\n"
        "  task: recommendation\n"
        f"  parameters: {parameters}\n",
        encoding="utf-8",
    )
    return directory


# --- unreachable or missing databases ------------------------------------------------


def test_an_unreachable_postgresql_exits_7_in_one_line_without_a_traceback() -> None:
    """``list`` against a PostgreSQL nobody listens on exits 7 with one ``error:`` line."""
    assert_one_line_error(Cli(UNREACHABLE_POSTGRES)("list"), 7, "error:")


@pytest.mark.postgres
def test_a_postgresql_database_that_does_not_exist_exits_7_in_one_line(postgres_url: str) -> None:
    """``list`` against a database the server does not have exits 7 with one line."""
    missing = f"tf_no_such_db_{uuid.uuid4().hex[:10]}"
    url = make_url(postgres_url).set(database=missing).render_as_string(hide_password=False)
    line = assert_one_line_error(Cli(url)("list"), 7, "error:")
    assert missing in line


# --- Redis down ----------------------------------------------------------------------


def test_a_redis_that_is_down_never_fails_init_tenant_or_show(tmp_path: Path) -> None:
    """With ``TENANCY_REDIS_URL`` unreachable, ``init-tenant`` and ``show --json`` still work."""
    cli = Cli(f"sqlite:///{tmp_path / 'data'}", env={"TENANCY_REDIS_URL": DOWN_REDIS})
    cli.ok("init-tenant", "redis_down")
    shown = cli.json("show", "redis_down")
    assert shown["tenant_id"] == "redis_down"
    assert shown["config"]["tier"] == "free"
    assert "redis_down" in cli.tenant_ids()


# --- generate ------------------------------------------------------------------------


def test_generate_into_a_path_under_a_file_exits_7_in_one_line(sqlite_cli: Cli) -> None:
    """``generate /etc/passwd/x``: the file system refuses the destination, a storage
    failure (exit 7, as an export's), not "fixture data refused" (exit 5)."""
    result = sqlite_cli("generate", "/etc/passwd/x")
    line = assert_one_line_error(result, 7, "error:")
    assert "/etc/passwd/x" in line


def test_generate_onto_an_existing_file_is_a_usage_error_leaving_it(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    """A file where the set's directory should go is an argument to change (exit 2, as
    an export's existing destination), not "fixture data refused" (exit 5)."""
    mine = tmp_path / "notes.txt"
    mine.write_text("mine", encoding="utf-8")

    result = sqlite_cli("generate", str(mine))

    line = assert_one_line_error(result, 2, "error:")
    assert str(mine) in line
    assert "mine" == mine.read_text(encoding="utf-8")


def test_generate_at_a_scale_past_the_largest_is_a_usage_error_writing_nothing(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    """A scale whose ids could no longer be unique exits 2 naming --scale; no directory."""
    target = tmp_path / "huge"
    result = sqlite_cli("generate", str(target), "--scale", str(MAX_SCALE + 1))
    assert result.exit_code == 2, result.output
    assert "--scale" in result.output
    assert not target.exists()


# --- markup in names -----------------------------------------------------------------


def test_a_fixture_set_named_with_markup_loads_and_every_command_prints_it_literally(
    cli: Cli, tenant_prefix: str, demo_set: Path, tmp_path: Path
) -> None:
    """A set named ``[/]evil`` loads; ``list``, ``show`` and a second load exit 0 and print it."""
    source = tmp_path / "markup_set"
    source.mkdir()
    (source / "artists.json").write_bytes((demo_set / "artists.json").read_bytes())
    manifest = {"name": MARKUP_NAME, "files": [{"table": "artists", "path": "artists.json"}]}
    (source / "fixtures.json").write_text(json.dumps(manifest), encoding="utf-8")
    tenant = f"{tenant_prefix}markup"
    cli.ok("init-tenant", tenant)

    cli.ok("load-fixtures", tenant, str(source))
    listed = cli.ok("list")
    assert MARKUP_NAME in listed.stdout
    shown = cli.ok("show", tenant)
    assert MARKUP_NAME in shown.stdout
    again = cli.ok("load-fixtures", tenant, str(source))
    assert "nothing changed" in again.stdout
    assert MARKUP_NAME in again.stdout


# --- cleanup -------------------------------------------------------------------------


def test_cleanup_with_an_empty_prefix_exits_2_and_drops_nothing(
    cli: Cli, tenant_prefix: str
) -> None:
    """``cleanup --prefix "" --yes`` exits 2 in one line and every tenant is still there."""
    tenant = f"{tenant_prefix}survivor"
    cli.ok("init-tenant", tenant)
    before = cli.tenant_ids()

    assert_one_line_error(cli("cleanup", "--prefix", "", "--yes"), 2, "error:")
    assert cli.tenant_ids() == before
    assert tenant in before


def test_cleanup_removes_a_stray_sqlite_tenant_file_and_the_id_is_free_again(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    """A hand-made ``tenants/ghost.db`` goes with ``cleanup ghost --yes``; then init works."""
    tenants_dir = tmp_path / "data" / "tenants"
    tenants_dir.mkdir(parents=True)
    stray = tenants_dir / "ghost.db"
    stray.touch()

    sqlite_cli.ok("cleanup", "ghost", "--yes")
    assert not stray.exists()
    sqlite_cli.ok("init-tenant", "ghost")
    assert "ghost" in sqlite_cli.tenant_ids()


# --- limits --------------------------------------------------------------------------


def test_a_non_ascii_digit_limit_exits_2_naming_the_limit(cli: Cli, tenant_prefix: str) -> None:
    """``-l api_calls=²`` exits 2 with one ``error:`` line naming ``limits.api_calls``."""
    tenant = f"{tenant_prefix}superscript"
    line = assert_one_line_error(cli("init-tenant", tenant, "-l", "api_calls=²"), 2, "error:")
    assert "limits.api_calls" in line
    assert tenant not in cli.tenant_ids()


# --- values no JSON column can hold --------------------------------------------------


def test_a_yaml_date_in_a_json_column_exits_5_in_one_line_naming_file_and_column(
    cli: Cli, tenant_prefix: str, tmp_path: Path
) -> None:
    """``parameters: {released: 2024-01-01}`` in YAML exits 5 naming the file and column."""
    source = write_ai_models_yaml(tmp_path / "yaml_date_set", "{released: 2024-01-01}")
    tenant = f"{tenant_prefix}yaml_date"
    cli.ok("init-tenant", tenant)

    line = assert_one_line_error(cli("load-fixtures", tenant, str(source)), 5, "error:")
    assert "ai_models.yaml" in line
    assert "parameters" in line
    assert cli.json("show", tenant)["total_rows"] == 0
