"""``load-fixtures --lenient`` on source files, on both backends: a document its format
refuses is set aside and the rest loads; strict, the same directory exits 5."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

from pathlib import Path

from tests.cli.cli_runner import Cli, assert_one_line_error
from tests.fixture_files import jsonl_records
from tests.integration.test_lenient_sources import history_set


def test_load_fixtures_lenient_sets_aside_refused_entries_and_strict_exits_5(
    cli: Cli, tenant_prefix: str, tmp_path: Path
) -> None:
    """Strict exits 5 naming the source file, writing nothing; ``--lenient`` loads the
    rest and writes the three refused entries to the reject file."""
    tenant = f"{tenant_prefix}history"
    source = history_set(tmp_path / "history")
    rejects = tmp_path / "rejects"
    cli.ok("init-tenant", tenant)

    strict = cli("load-fixtures", tenant, str(source), "--reject-dir", str(rejects))
    assert 5 == strict.exit_code, strict.output
    assert "plays.json" in strict.stderr
    assert not rejects.exists()

    cli.ok("load-fixtures", tenant, str(source), "--lenient", "--reject-dir", str(rejects))

    (written,) = rejects.iterdir()
    assert 3 == len(jsonl_records(written))


def test_a_reject_dir_that_is_a_file_is_invalid_input(
    cli: Cli, tenant_prefix: str, tmp_path: Path, demo_set: Path
) -> None:
    """``--reject-dir FILE --lenient`` was exit 7, a storage failure saying "(File
    exists)"; TENANCY_REJECT_DIR naming a file is exit 2: so is the option now, before
    anything is read or written."""
    a_file = tmp_path / "rejects.txt"
    a_file.write_text("not a directory\n", encoding="utf-8")

    tenant = f"{tenant_prefix}a"
    cli.ok("init-tenant", tenant)

    result = cli("load-fixtures", tenant, str(demo_set), "--lenient", "--reject-dir", str(a_file))

    line = assert_one_line_error(result, 2, "error:")
    assert "is a file: give a directory" in line
    assert "not a directory\n" == a_file.read_text(encoding="utf-8")
