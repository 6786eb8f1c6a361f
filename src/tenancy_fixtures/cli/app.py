"""The ``tenancy-fixtures`` command: global options and the command groups.

Commands only parse, call the library and print; one module per command group.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Any

import structlog
import typer
from structlog.typing import EventDict

from tenancy_fixtures.cli import demo, fixtures, tenants
from tenancy_fixtures.cli.context import CliState, fail
from tenancy_fixtures.errors import TenancyFixturesError
from tenancy_fixtures.settings import load_settings

__all__ = ["app", "main"]

app = typer.Typer(
    name="tenancy-fixtures",
    help=(
        "Give every tenant isolated storage, schema, config and data in one call, "
        "then keep operating them.\n\n"
        "Settings come from TENANCY_* environment variables (see the README); the "
        "default is an embedded SQLite store under ./.tenancy/.\n\n"
        "Example: tenancy-fixtures init-tenant acme_music --tier premium --load"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _exception_in_one_field(_logger: Any, _name: str, event: EventDict) -> EventDict:
    """A logged exception as ``error="Type: first line"``: tracebacks (with locals and
    SQL parameters) are for ``--debug``."""
    exc_info = event.pop("exc_info", None)
    error = sys.exc_info()[1] if exc_info is True else exc_info
    if isinstance(error, tuple):
        error = error[1]
    if isinstance(error, BaseException):
        lines = str(error).strip().splitlines()
        event["error"] = f"{type(error).__name__}: {lines[0] if lines else ''}".strip()
    return event


def _configure_logging(verbose: bool, json_logs: bool, debug: bool) -> None:
    level = logging.INFO if verbose else logging.WARNING
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_logs
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *([] if debug else [_exception_in_one_field]),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


@app.callback()
def _global_options(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="TENANCY_DATABASE_URL",
            help="sqlite:///DATA_DIR or postgresql+asyncpg://host:port/db.",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each step.")] = False,
    json_logs: Annotated[bool, typer.Option("--log-json", help="Logs as JSON lines.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    _configure_logging(verbose, json_logs, debug)
    overrides: dict[str, object] = {}
    if database_url:
        overrides["database_url"] = database_url
    try:
        settings = load_settings(**overrides)
    except TenancyFixturesError as exc:
        fail(exc)
    ctx.obj = CliState(settings, debug=debug)


tenants.register(app)
fixtures.register(app)
demo.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
