"""``load-fixtures --lenient`` on source files, on both backends: a document its format
refuses is set aside and the rest loads; strict, the same directory exits 5."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

from pathlib import Path

from tests.cli.cli_runner import Cli
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
