"""What every command shares: the global options, the consoles, and running library work.

Expected failures (every :class:`TenancyFixturesError`) print one line to stderr and
exit with the error's code; there is no traceback unless ``--debug`` is given (which
prints it before that line, and keeps the code).
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from tenancy_fixtures.errors import TenancyFixturesError

if TYPE_CHECKING:
    from tenancy_fixtures.manager import FixtureManager
    from tenancy_fixtures.settings import Settings

__all__ = [
    "UNTIMED",
    "CliState",
    "StderrConsole",
    "console",
    "err_console",
    "fail",
    "key_values",
    "print_json",
    "run",
    "say_unvalidated",
    "state",
]

T = TypeVar("T")

#: What a command's output says instead of its time with performance monitoring off.
UNTIMED = "not timed: TENANCY_PERFORMANCE_MONITORING=false"

# Piped output gets room for the summary tables instead of Rich's 80-column default.
_PIPE_WIDTH = 140
#: The level of a human line, by how it starts; other lines are ``info``.
_LEVELS = (
    ("error: ", "error"),
    ("warning: ", "warning"),
    ("note: ", "info"),
    ("unexpected error: ", "error"),
    ("interrupted: ", "error"),
)


class StderrConsole(Console):
    """stderr's console: the CLI's human lines (``error: ...``, ``note: ...``,
    warnings), or with ``--log-json`` each of them one JSON object, shaped as the log
    events (``event``, ``level``, ``timestamp``), so that every line on stderr is one."""

    json_lines = False

    def print(self, *objects: Any, level: str | None = None, **options: Any) -> None:
        """Print as Rich does, or with ``json_lines`` each line as one JSON object at
        ``level`` (by default the line's ``error:``/``warning:``/``note:`` prefix's)."""
        if not self.json_lines:
            super().print(*objects, **options)
            return
        for line in _plain(objects, markup=options.get("markup")).splitlines():
            if line.strip():
                self.json_line(line, level=level)

    def json_line(self, message: str, *, level: str | None = None, **fields: Any) -> None:
        """``message`` as one JSON line on stderr, its ``error: `` prefix (or the like)
        taken off into ``level``."""
        found = level or "info"
        for prefix, prefixed in _LEVELS:
            if message.startswith(prefix):
                found = level or prefixed
                if prefix.startswith(found):
                    message = message.removeprefix(prefix)
                break
        event = {"event": message, "level": found, "timestamp": _now(), **fields}
        self.file.write(json.dumps(event, default=str) + "\n")
        self.file.flush()


def _plain(objects: tuple[Any, ...], *, markup: bool | None) -> str:
    """What ``objects`` print as, without style, markup or line wrapping."""
    buffer = io.StringIO()
    Console(
        file=buffer, width=10_000, no_color=True, highlight=False, markup=markup is not False
    ).print(*objects, soft_wrap=True)
    return buffer.getvalue()


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


console = Console(width=None if sys.stdout.isatty() else _PIPE_WIDTH)
err_console = StderrConsole(stderr=True, width=None if sys.stderr.isatty() else _PIPE_WIDTH)


class CliState:
    """What the global options set, handed to every command."""

    def __init__(self, settings: Settings, *, debug: bool, json_logs: bool = False) -> None:
        self.settings = settings
        self.debug = debug
        self.json_logs = json_logs


def fail(exc: TenancyFixturesError) -> NoReturn:
    """Print ``exc`` as one line and exit with its code."""
    if err_console.json_lines:
        err_console.json_line(f"error: {exc}", exit_code=exc.exit_code)
    else:
        err_console.print(
            f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False, soft_wrap=True
        )
    raise typer.Exit(exc.exit_code)


def _print_traceback(exc: BaseException) -> None:
    """``--debug``: ``exc``'s traceback on stderr (with ``--log-json``, one JSON line)."""
    if err_console.json_lines:
        err_console.json_line(
            f"{type(exc).__name__}: {exc}",
            level="error",
            exception="".join(traceback.format_exception(exc)),
        )
    else:
        traceback.print_exception(exc, file=sys.stderr)


def key_values(
    values: list[str], option: str, error: Callable[[str], TenancyFixturesError]
) -> dict[str, str]:
    """``KEY=VALUE`` arguments of a repeatable option as a dict; a malformed one fails
    the command with ``error(message)``."""
    parsed: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(error(f"--{option} expects KEY=VALUE, got {item!r}"))
        parsed[key.strip()] = value
    return parsed


def state(ctx: typer.Context) -> CliState:
    """The global options of this invocation."""
    root = ctx.find_root()
    obj = root.obj
    assert isinstance(obj, CliState), "global options were not parsed"
    return obj


def run(ctx: typer.Context, work: Callable[[FixtureManager], Awaitable[T]]) -> T:
    """Run ``work`` with a manager; map library errors to one line and an exit code."""
    from tenancy_fixtures.manager import FixtureManager

    current = state(ctx)

    async def with_manager() -> T:
        async with FixtureManager(current.settings) as manager:
            return await work(manager)

    try:
        return asyncio.run(with_manager())
    except TenancyFixturesError as exc:
        if current.debug:  # the traceback, then the error's line and exit code as always
            _print_traceback(exc)
        fail(exc)
    except KeyboardInterrupt:
        err_console.print("interrupted: the step in progress was rolled back")
        raise typer.Exit(130) from None
    except Exception as exc:
        if current.debug and not err_console.json_lines:
            raise
        if current.debug:
            _print_traceback(exc)
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        err_console.print(
            f"unexpected error: {type(exc).__name__}: {escape(first_line)}"
            " (run with --debug for the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None


def say_unvalidated(loaded: str) -> None:
    """Tell stderr that ``loaded`` (a tenant, tenants) went in without the validator."""
    err_console.print(
        f"{loaded}: loaded without validation (TENANCY_DATA_VALIDATION=false): only "
        "the database's constraints checked the records",
        markup=False,
        level="warning",
    )


def print_json(document: Any) -> None:
    """Print ``document`` as JSON on stdout, for machines: times in ISO 8601."""
    typer.echo(json.dumps(document, indent=2, sort_keys=True, default=_json_value))


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)
