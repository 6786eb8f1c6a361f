"""What the CLI test modules share: running commands in-process and checking errors.

A plain module beside the tests (pytest puts this folder on ``sys.path``) rather than a
``tests/cli/conftest.py``, which mypy would report as a second module named ``conftest``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner, Result

from tenancy_fixtures.cli.app import app

__all__ = [
    "HERMETIC_ENV",
    "Cli",
    "assert_one_line_error",
    "restore_structlog",
    "structlog_as_it_was",
]

#: Settings the developer's shell might carry that would make the tests less hermetic.
HERMETIC_ENV: Mapping[str, str | None] = {
    "TENANCY_ACTOR": "pytest-cli",
    "TENANCY_REDIS_URL": None,
    "TENANCY_TEMPLATE_DIR": None,
    "TENANCY_DATABASE_URL": None,
}


class Cli:
    """``tenancy-fixtures --database-url URL ...`` run in-process."""

    def __init__(self, database_url: str, env: Mapping[str, str | None] | None = None) -> None:
        self.database_url = database_url
        self.env = {**HERMETIC_ENV, **(env or {})}
        self._runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None) -> Result:
        """Run the command with the global ``--database-url`` first."""
        # Here and not only around the test: a module-scoped fixture runs commands too.
        with structlog_as_it_was():
            return self._runner.invoke(
                app, ["--database-url", self.database_url, *args], input=input, env=self.env
            )

    def ok(self, *args: str, input: str | None = None) -> Result:
        """Run the command and require exit code 0."""
        result = self(*args, input=input)
        assert result.exit_code == 0, (
            f"{args!r} exited {result.exit_code}: {result.output}\n{result.exception!r}"
        )
        return result

    def json(self, *args: str) -> Any:
        """Run the command with ``--json``, require exit code 0, parse stdout."""
        return json.loads(self.ok(*args, "--json").stdout)

    def tenant_ids(self) -> set[str]:
        """The ids ``list --json`` shows."""
        return {str(entry["tenant_id"]) for entry in self.json("list")}


def assert_one_line_error(result: Result, exit_code: int, starts_with: str) -> str:
    """Require ``exit_code``, no traceback, and exactly one stderr line starting so."""
    assert result.exit_code == exit_code, f"exit {result.exit_code}: {result.output}"
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(starts_with), lines[0]
    return lines[0]


@contextmanager
def structlog_as_it_was() -> Iterator[None]:
    """Undo the CLI's structlog configuration, which points at the runner's closed stderr
    and filters out info events, whether structlog was configured before or not (the
    library's logger goes to ``logging`` while it is not)."""
    saved, configured = structlog.get_config(), structlog.is_configured()
    try:
        yield
    finally:
        structlog.configure(**saved)
        if not configured:
            structlog.reset_defaults()


@pytest.fixture(autouse=True)
def restore_structlog() -> Iterator[None]:
    """structlog's configuration as it was before the test."""
    with structlog_as_it_was():
        yield
