"""What a fresh interpreter imports on each way in: heavy dependencies wait until used.

Not a timing test (timings are the bench's, ``bench/startup.py``): each case runs in a
new interpreter and lists which of the heavy modules ended up in ``sys.modules``.
"""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tenancy_fixtures.loading.fast_plans import fast_plan
from tenancy_fixtures.loading.fixture_sets import FixtureFile
from tenancy_fixtures.loading.parse_workers import ParserPool, call_in_workers, parse_in_workers
from tenancy_fixtures.loading.rules import DEFAULT_MAX_TEXT_LENGTH
from tenancy_fixtures.spotify import register
from tenancy_fixtures.spotify.schema import spotify_metadata

#: Dependencies that cost tens of milliseconds each, or the library's own heavy parts.
HEAVY = (
    "aiosqlite",
    "asyncpg",
    "cryptography",
    "ijson",
    "prometheus_client",
    "pydantic",
    "pydantic_settings",
    "redis",
    "rich",
    "sqlalchemy",
    "sqlalchemy.dialects.postgresql",
    "sqlalchemy.ext.asyncio",
    "sqlalchemy.orm",
    "structlog",
    "tenacity",
    "typer",
    "yaml",
    "tenancy_fixtures.cli",
    "tenancy_fixtures.manager",
    "tenancy_fixtures.settings",
    "tenancy_fixtures.spotify",
    "tenancy_fixtures.store",
    "tenancy_fixtures.store.postgres.store",
    "tenancy_fixtures.store.sqlite.store",
    "tenancy_fixtures.tenancy.config_cache",
)


def loaded_after(code: str, *args: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def heavy_after(code: str, *args: str) -> list[str]:
    """The HEAVY modules a fresh interpreter holds after running ``code``."""
    loaded = loaded_after(code, *args)
    return [name for name in HEAVY if name in loaded]


def test_importing_the_package_imports_none_of_the_heavy_modules() -> None:
    """``import tenancy_fixtures`` loads only the package root (public names are lazy)."""
    assert [] == heavy_after("import tenancy_fixtures")


def test_importing_the_package_does_not_read_its_metadata() -> None:
    """``importlib.metadata`` (most of what the import cost) waits for ``__version__``."""
    added = loaded_after("import tenancy_fixtures") - loaded_after("pass")

    assert "importlib.metadata" not in added


def test_the_version_is_read_without_importing_the_library() -> None:
    """``tenancy_fixtures.__version__`` is answered from the package metadata alone."""
    assert [] == heavy_after("import tenancy_fixtures; assert tenancy_fixtures.__version__")


def test_a_manager_imports_what_a_sqlite_tenant_needs_and_waits_with_the_rest() -> None:
    """``FixtureManager()`` loads no logging renderer, metrics, Redis, retrying, crypto,
    YAML, PostgreSQL driver nor async engine until an operation needs one."""
    needed = {
        "pydantic",
        "pydantic_settings",
        "sqlalchemy",
        # The control plane's JSON columns are JSONB on PostgreSQL (a with_variant).
        "sqlalchemy.dialects.postgresql",
        "tenancy_fixtures.manager",
        "tenancy_fixtures.settings",
        "tenancy_fixtures.spotify",  # the default schema
        "tenancy_fixtures.store",
        "tenancy_fixtures.store.sqlite.store",
        "tenancy_fixtures.tenancy.config_cache",  # in-process; Redis's client waits
    }
    code = "from tenancy_fixtures import FixtureManager\nFixtureManager()"

    loaded = heavy_after(code)

    assert [] == [name for name in loaded if name not in needed]


def test_a_manager_waits_with_the_compliance_use_cases_until_one_runs() -> None:
    """Export, erasure and retention are imported by the methods that run them: every
    CLI command makes a manager (``list`` took them in, ~0.08 s of its start)."""
    code = "from tenancy_fixtures import FixtureManager\nFixtureManager()"

    loaded = loaded_after(code)

    assert [] == sorted(name for name in loaded if name.startswith("tenancy_fixtures.compliance"))


def test_the_cli_imports_no_library_internals_before_a_command_runs() -> None:
    """Importing the CLI (all ``--help`` needs) loads Typer and Rich, not the library."""
    allowed = {"rich", "typer", "tenancy_fixtures.cli"}

    loaded = heavy_after("import tenancy_fixtures.cli.app")

    assert [] == [name for name in loaded if name not in allowed]


def _events_file(directory: Path, played_at: str) -> FixtureFile:
    """A JSON Lines file of two listening events, the second played at ``played_at``."""
    event = {
        "user_id": "u_ava",
        "played_at": "2026-01-01T12:00:00+00:00",
        "track_id": "4uLU6hMCjMI75M1A2tKUQC",
        "ms_played": 1000,
        "context_uri": "spotify:track:4uLU6hMCjMI75M1A2tKUQC",
        "platform": "ios",
        "shuffle": False,
    }
    lines = [json.dumps(event), json.dumps({**event, "played_at": played_at})]
    path = directory / "events.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return FixtureFile("listening_events", path, "events.jsonl", "jsonl", False)


def _modules_of_a_worker_that_parsed(file: FixtureFile) -> tuple[int, set[str]]:
    """Rows a fresh parse worker gave back for ``file`` (as COPY text), and the modules
    it held afterwards."""
    register()
    table = spotify_metadata().tables["tenant.listening_events"]
    pool = ParserPool()
    workers = pool.borrow(1)
    try:
        blocks = list(
            parse_in_workers(
                workers,
                [file],
                table,
                max_text_length=DEFAULT_MAX_TEXT_LENGTH,
                encode=True,
                batch_size=1000,
                now=datetime.now(UTC),
                local_now=None,
            )
        )
        listed = "sorted(__import__('sys').modules)"
        modules = next(call_in_workers(workers, [(eval, (listed,))]))
    finally:
        pool.give_back(workers)
        pool.close()
    assert all(block.payload for block in blocks)
    return sum(block.row_count for block in blocks), set(modules)


def test_a_parse_worker_on_the_compiled_path_imports_no_sqlalchemy(tmp_path: Path) -> None:
    """A worker whose blocks all take the compiled path parses, checks, checksums and
    encodes them from the plan it was sent, without SQLAlchemy (~25 MiB a worker), the
    manager, CLI, store, settings, logging, metrics, Redis or retrying."""
    rows, modules = _modules_of_a_worker_that_parsed(
        _events_file(tmp_path, "2026-01-01T12:05:00+00:00")
    )

    assert 2 == rows
    assert [] == [name for name in HEAVY if name in modules]


def test_a_parse_worker_rebuilds_the_table_for_a_block_the_compiled_path_declines(
    tmp_path: Path,
) -> None:
    """A timestamp written in another zone takes the exact path, which needs the table
    (and so SQLAlchemy): the worker rebuilds it then, and the rows still come back."""
    rows, modules = _modules_of_a_worker_that_parsed(
        _events_file(tmp_path, "2026-01-01T14:05:00+02:00")
    )

    assert 2 == rows
    assert "sqlalchemy" in modules
    assert [] == [name for name in ("tenancy_fixtures.store", "structlog") if name in modules]


def test_the_plans_of_the_builtin_tables_reach_a_worker_without_sqlalchemy(
    tmp_path: Path,
) -> None:
    """Every built-in table the compiled path can take travels as a plan whose value
    formats (Spotify ids and URIs, ISRCs, release dates, e-mail, country) come from
    modules free of SQLAlchemy: a worker unpickles and compiles them all without it."""
    register()
    plans = [fast_plan(table) for table in spotify_metadata().sorted_tables]
    compiled = [plan for plan in plans if plan is not None]
    formats = {expression for p in compiled for c in p.columns for expression, _ in c.conditions}
    path = tmp_path / "plans.pickle"
    path.write_bytes(pickle.dumps(compiled))
    code = (
        "import pickle, sys\n"
        "from tenancy_fixtures.loading.fast_rows import FastRows\n"
        "with open(sys.argv[1], 'rb') as f: [FastRows(plan) for plan in pickle.load(f)]"
    )

    loaded = heavy_after(code, str(path))

    assert len(compiled) >= 10
    assert any("FORMAT_RELEASE_DATE" in f for f in formats)
    assert any("FORMAT_EMAIL" in f for f in formats)
    # The domain's package (release dates are checked by a function of its own), light.
    assert [] == [name for name in loaded if name != "tenancy_fixtures.spotify"]


@pytest.mark.parametrize("module", ["yaml", "ijson"])
def test_parsers_are_imported_by_the_first_file_that_needs_them(module: str) -> None:
    """The readers module alone loads neither PyYAML nor ijson."""
    assert module not in heavy_after("import tenancy_fixtures.loading.readers")


def test_the_load_path_imports_the_archive_readers_only_for_an_archive() -> None:
    """Every loading process paid tarfile's import (0.4 MiB of RSS, goal c of issue 15
    has 0.5 of margin) once a PATH could name an archive: only one named so needs it."""
    loaded = loaded_after("import tenancy_fixtures.loading.load")

    assert "tarfile" not in loaded
    assert "tenancy_fixtures.loading.archives" not in loaded


def _cli_run(database_url: str, *args: str) -> str:
    """A fresh interpreter's code running the CLI with ``args`` on ``database_url``."""
    argv = ["tenancy-fixtures", "--database-url", database_url, *args]
    return (
        "import sys\n"
        "from tenancy_fixtures.cli.app import main\n"
        f"sys.argv = {argv!r}\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as done:\n"
        "    assert not done.code, done.code\n"
    )


def test_a_command_that_logs_nothing_imports_no_structlog(tmp_path: Path) -> None:
    """structlog loads Rich's traceback renderer, pygments and attrs: ~3 MiB of every
    loader's peak RSS (goal c of issue 15) that a command logging nothing need not
    hold; the CLI's configuration waits for the first event."""
    url = f"sqlite:///{tmp_path / 'data'}"

    loaded = loaded_after(_cli_run(url, "init-tenant", "acme"))

    assert [] == sorted(n for n in loaded if n == "structlog" or n.startswith("rich.traceback"))


def test_the_first_event_logged_configures_structlog_for_the_cli(tmp_path: Path) -> None:
    """With ``-v`` the CLI's configuration is in place for the first event: tenant_created
    is one JSON line on stderr under ``--log-json``, nothing on stdout but the output."""
    url = f"sqlite:///{tmp_path / 'data'}"
    probe = _cli_run(url, "--log-json", "-v", "init-tenant", "acme")

    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)

    assert 0 == result.returncode, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines()]
    created = [e for e in events if e["event"] == "tenant_created"]
    assert [("info", "acme")] == [(e["level"], e["tenant_id"]) for e in created]
    assert "tenant_created" not in result.stdout
