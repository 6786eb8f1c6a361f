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
from pathlib import Path

import pytest

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


def test_the_cli_imports_no_library_internals_before_a_command_runs() -> None:
    """Importing the CLI (all ``--help`` needs) loads Typer and Rich, not the library."""
    allowed = {"rich", "typer", "tenancy_fixtures.cli"}

    loaded = heavy_after("import tenancy_fixtures.cli.app")

    assert [] == [name for name in loaded if name not in allowed]


def test_a_parse_worker_imports_only_what_parsing_needs(tmp_path: Path) -> None:
    """A worker's command line and the table it is sent load no manager, CLI, store,
    settings, logging, metrics, Redis, retrying nor the async engine."""
    table = tmp_path / "table.pickle"
    table.write_bytes(pickle.dumps(spotify_metadata().tables["tenant.listening_events"]))
    code = (
        "from tenancy_fixtures.loading.parse_workers import serve\n"
        "import pickle, sys\n"
        "with open(sys.argv[1], 'rb') as f: pickle.load(f)"
    )

    # SQLAlchemy builds the table; its metadata's JSONB variants need the dialect's types.
    allowed = {"sqlalchemy", "sqlalchemy.dialects.postgresql"}

    loaded = heavy_after(code, str(table))

    assert [] == [name for name in loaded if name not in allowed]


@pytest.mark.parametrize("module", ["yaml", "ijson"])
def test_parsers_are_imported_by_the_first_file_that_needs_them(module: str) -> None:
    """The readers module alone loads neither PyYAML nor ijson."""
    assert module not in heavy_after("import tenancy_fixtures.loading.readers")
