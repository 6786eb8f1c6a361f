"""What the CLI tests import: running commands in-process, checking errors, and a manager
for work behind the CLI's back.

Helpers, not fixtures (those are in ``conftest.py`` beside it): the hostile corpus's and
the lenient loading's CLI tests import the runner too.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import warnings
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import structlog
import typer.main
import typer.testing
from typer.testing import CliRunner, Result

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.cli.app import app
from tenancy_fixtures.logs import configure_when_used

__all__ = [
    "HERMETIC_ENV",
    "Cli",
    "assert_one_line_error",
    "structlog_as_it_was",
    "with_manager",
]

T = TypeVar("T")

# typer builds the app's click command from its signatures again on every invoke (~25 ms,
# more than most commands here take); the app does not change within a run.
typer.testing._get_command = functools.cache(typer.main.get_command)  # type: ignore[attr-defined]

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
    library's logger goes to ``logging`` while it is not), or withdraw it while it still
    waits for a first event; and its ``--log-json`` hook on Python warnings and the root
    logger's handler."""
    saved, configured = structlog.get_config(), structlog.is_configured()
    showwarning = warnings.showwarning
    root = logging.getLogger()
    handlers = list(root.handlers)
    try:
        yield
    finally:
        warnings.showwarning = showwarning
        root.handlers[:] = handlers
        configure_when_used(None)
        structlog.configure(**saved)
        if not configured:
            structlog.reset_defaults()


def with_manager(database_url: str, work: Callable[[FixtureManager], Awaitable[T]]) -> T:
    """Run ``work`` on a manager of ``database_url``, behind the CLI's back."""

    async def go() -> T:
        settings = Settings(database_url=database_url, actor="pytest")
        async with FixtureManager(settings) as manager:
            return await work(manager)

    return asyncio.run(go())
