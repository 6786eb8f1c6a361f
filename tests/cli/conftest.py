"""Fixtures of the CLI tests: the CLI on this test's backend or on a fresh SQLite
directory, a tenant prefix cleaned up afterwards, and structlog put back.

The runner itself and the error checks are in ``cli_runner.py``, which the hostile
corpus's CLI tests import too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.cli_runner import Cli, structlog_as_it_was


@pytest.fixture(autouse=True)
def restore_structlog() -> Iterator[None]:
    """structlog as it was before the test (configured or not): the CLI's configuration
    points at the runner's closed stderr and filters out info events."""
    with structlog_as_it_was():
        yield


@pytest.fixture
def cli(database_url: str) -> Cli:
    """The CLI on this test's backend."""
    return Cli(database_url)


@pytest.fixture
def sqlite_cli(tmp_path: Path) -> Cli:
    """The CLI on a fresh SQLite data directory, for commands no backend changes."""
    return Cli(f"sqlite:///{tmp_path / 'data'}")


@pytest.fixture
def tenant_prefix(cli: Cli) -> Iterator[str]:
    """A tenant id prefix unique to this test; its tenants are dropped afterwards."""
    prefix = f"cli_{uuid.uuid4().hex[:10]}_"
    yield prefix
    result = cli("cleanup", "--prefix", prefix, "--yes")
    assert result.exit_code == 0, result.output
    assert not {t for t in cli.tenant_ids() if t.startswith(prefix)}
