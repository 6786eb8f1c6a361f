"""The ``tenancy-fixtures`` command: global options and the command groups.

Commands only parse, call the library and print; one module per command group. They
import the library when they run, not when the CLI starts, so ``--help`` costs Typer
and Rich only.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Annotated, Any

import typer

from tenancy_fixtures.cli import audit, demo, fixtures, migrations, tenants
from tenancy_fixtures.cli.context import CliState, fail
from tenancy_fixtures.errors import TenancyFixturesError

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


def _exception_summary(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Put ``Type: first line`` of a logged exception in place of its traceback."""
    exc_info = event.pop("exc_info", None)
    if isinstance(exc_info, BaseException):
        error: BaseException | None = exc_info
    elif isinstance(exc_info, tuple):
        error = exc_info[1]
    else:
        error = sys.exc_info()[1] if exc_info else None
    if error is not None:
        lines = str(error).strip().splitlines()
        event.setdefault("error", f"{type(error).__name__}: {lines[0] if lines else ''}")
    return event


def _configure_logging(*, verbose: bool, json_logs: bool, debug: bool) -> None:
    """Where the library's log events go when it runs under the CLI: stderr.

    The CLI is the application, so it, not the library, configures structlog. Logged
    exceptions show their traceback only with ``--debug``, and never local variables
    (they hold record values).
    """
    import structlog

    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if not debug:
        processors.append(_exception_summary)
    elif json_logs:
        transformer = structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        processors.append(structlog.processors.ExceptionRenderer(transformer))
    if json_logs:
        processors.append(structlog.processors.JSONRenderer())
    else:
        terminal = sys.stderr.isatty()
        processors.append(
            structlog.dev.ConsoleRenderer(
                colors=terminal,
                exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False)
                if terminal
                else structlog.dev.plain_traceback,
            )
        )
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.INFO if verbose else logging.WARNING
        ),
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
    from tenancy_fixtures.settings import load_settings

    _configure_logging(verbose=verbose, json_logs=json_logs, debug=debug)
    overrides: dict[str, object] = {}
    if database_url:
        overrides["database_url"] = database_url
    try:
        settings = load_settings(**overrides)
    except TenancyFixturesError as exc:
        fail(exc)
    ctx.obj = CliState(settings, debug=debug)


tenants.register(app)
audit.register(app)
fixtures.register(app)
migrations.register(app)
demo.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
