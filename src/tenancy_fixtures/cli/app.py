"""The ``tenancy-fixtures`` command: global options and the command groups.

Commands only parse, call the library and print; one module per command group. They
import the library when they run, not when the CLI starts, so ``--help`` costs Typer
and Rich only.
"""

from __future__ import annotations

import logging
import re
import sys
import warnings
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from functools import partial
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from tenancy_fixtures.cli import (
    audit,
    compliance,
    demo,
    fixtures,
    migrations,
    monitoring,
    placement,
    service,
    tenant_config,
    tenants,
    tokens,
)
from tenancy_fixtures.cli.context import CliState, err_console, fail
from tenancy_fixtures.errors import TenancyFixturesError
from tenancy_fixtures.logs import configure_when_used, get_logger

__all__ = ["app", "main"]

#: Global options, accepted before or after the command (``list --database-url URL``).
_GLOBAL_FLAGS = frozenset({"-v", "--verbose", "--log-json", "--debug", "--version"})
_GLOBAL_WITH_VALUE = "--database-url"
_HELP = frozenset({"-h", "--help", "--version"})
#: Two or more short options written as one argument (``-vy``).
_CLUSTER = re.compile(r"-[A-Za-z]{2,}")


def _command_index(args: list[str]) -> int | None:
    """Where the command stands in ``args`` (after the global options), if anywhere."""
    i = 0
    while i < len(args):
        if args[i] == "--":
            return None
        if args[i] == _GLOBAL_WITH_VALUE:
            i += 2
        elif args[i].startswith("-"):
            i += 1
        else:
            return i
    return None


class _Options:
    """What the commands' options are, for reading a command line as Click will."""

    def __init__(self) -> None:
        #: Letters of the short options that take no value (``-y``).
        self.flag_letters: set[str] = set()
        #: Names of the options that take a value (``--prefix``, ``-t``).
        self.taking_values: set[str] = set()

    def add(self, group: TyperGroup, ctx: Any) -> _Options:
        """Add the options of every command of ``group`` (and of its groups)."""
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if isinstance(command, TyperGroup):
                self.add(command, ctx)
            for param in command.get_params(ctx) if command is not None else []:
                if getattr(param, "param_type_name", "") != "option":
                    continue
                if getattr(param, "is_flag", False) or getattr(param, "count", False):
                    self.flag_letters |= {o[1] for o in param.opts if _is_short(o)}
                else:
                    self.taking_values |= set(param.opts)
        return self


def _is_short(option: str) -> bool:
    return len(option) == 2 and option[0] == "-" and option[1] != "-"


def _without_verbose(arg: str, flags: set[str]) -> tuple[list[str], list[str]]:
    """A cluster of short flags after the command (``-vy``) split into the global ``-v``
    and the command's own (``-y``), as Click reads a cluster: left to right, an option
    taking a value taking the rest as its value (``-tv``: ``-t v``, left as it is)."""
    if not _CLUSTER.fullmatch(arg):
        return [], [arg]
    moved: list[str] = []
    kept = ""
    for at, letter in enumerate(arg[1:], start=1):
        if letter == "v":
            moved.append("-v")
        elif letter in flags:
            kept += letter
        else:
            kept += arg[at:]
            break
    return moved, [f"-{kept}"] if kept else []


def _globals_first(args: list[str], at: int, options: _Options | None = None) -> list[str]:
    """``args`` with the global options given after the command (at ``at``) moved
    before it, where Click looks for them, ``-v`` out of a cluster of the commands'
    short flags too (``-vy``); nothing after ``--`` moves, nor the value of an option
    taking one (``--name -v``)."""
    options = options or _Options()
    moved: list[str] = []
    rest: list[str] = []
    tail = iter(args[at:])
    for arg in tail:
        if arg == "--":
            rest += [arg, *tail]
        elif arg in options.taking_values:
            rest += [arg, *([value] if (value := next(tail, None)) is not None else [])]
        elif _CLUSTER.fullmatch(arg):
            verbose, kept = _without_verbose(arg, options.flag_letters)
            moved += verbose
            rest += kept
        elif arg in _GLOBAL_FLAGS or arg.startswith(_GLOBAL_WITH_VALUE + "="):
            moved.append(arg)
        elif arg == _GLOBAL_WITH_VALUE:
            value = next(tail, None)
            if value is None:
                # Moved before the command alone, it would take the command as its value.
                raise typer.BadParameter(
                    "give it a URL: sqlite:///DATA_DIR or postgresql+asyncpg://host:port/db",
                    param_hint=f"'{_GLOBAL_WITH_VALUE}'",
                )
            moved += [arg, value]
        else:
            rest.append(arg)
    return [*args[:at], *moved, *rest]


def _hide_flag_types(command: Any, ctx: Any) -> None:
    """Show boolean flags in --help without a value type (Typer prints ``<bool>``)."""
    for param in command.get_params(ctx):
        if getattr(param, "is_flag", False):
            param.metavar = ""
    if isinstance(command, TyperGroup):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None:
                _hide_flag_types(sub, ctx)


class _Cli(TyperGroup):
    """The root command: global options anywhere on the line, flags shown as flags, and
    options without a command answered with the help instead of an error alone."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _hide_flag_types(self, ctx)
        super().format_help(ctx, formatter)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        resolved = super().resolve_command(ctx, args)
        if resolved[1] is not None:
            _hide_flag_types(resolved[1], ctx)
        return resolved

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # Until the options are parsed, as written (a usage error among them, too).
        err_console.json_lines = "--log-json" in args
        at = _command_index(args)
        if at is not None:
            with _usage_errors_as_json():
                args = _globals_first(args, at, _Options().add(self, ctx))
        elif args and not _HELP & set(args):
            typer.echo(ctx.get_help())
            err_console.print(
                "[bold red]error:[/] no command given: choose one of the commands above, "
                "e.g. tenancy-fixtures list",
                highlight=False,
            )
            ctx.exit(2)
        with _usage_errors_as_json():
            rest = super().parse_args(ctx, args)
        err_console.json_lines = bool(ctx.params.get("json_logs"))
        return rest

    def invoke(self, ctx: Any) -> Any:
        with _usage_errors_as_json():
            return super().invoke(ctx)


@contextmanager
def _usage_errors_as_json() -> Iterator[None]:
    """With ``--log-json``, Click's usage errors (an unknown option or command, a
    missing argument) as one JSON line and their exit code, not Rich's box."""
    try:
        yield
    except typer.TyperException as exc:
        if not err_console.json_lines:
            raise
        err_console.json_line(
            f"error: {exc.format_message()}", exit_code=getattr(exc, "exit_code", 2)
        )
        raise typer.Exit(getattr(exc, "exit_code", 2)) from None


def _print_version(value: bool) -> None:
    if value:
        from tenancy_fixtures import __version__

        typer.echo(f"tenancy-fixtures {__version__}")
        raise typer.Exit()


app = typer.Typer(
    cls=_Cli,
    name="tenancy-fixtures",
    help=(
        "Give every tenant isolated storage, schema, config and data in one call, "
        "then keep operating them.\n\n"
        "Settings come from TENANCY_* environment variables (see the README); the "
        "default is an embedded SQLite store under ./.tenancy/. Global options may "
        "come before or after the command.\n\n"
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
    (they hold record values). Without ``--log-json`` structlog is configured (and
    imported, with Rich's traceback renderer: ~3 MiB of a load's peak memory) at the
    first event logged, not before: most commands log none at the default level.
    """
    level = logging.INFO if verbose else logging.WARNING
    configure = partial(_configure_structlog, level=level, json_logs=json_logs, debug=debug)
    if json_logs:
        # A log shipper reads stderr: every line is JSON from the start, other libraries'
        # `logging` records included, so the configuration cannot wait for an event.
        configure()
        warnings.showwarning = _warning_as_event
    else:
        configure_when_used(configure, level=level)


def _configure_structlog(*, level: int, json_logs: bool, debug: bool) -> None:
    """The CLI's structlog configuration (see :func:`_configure_logging`)."""
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
        _foreign_records_as_json(processors[1:], level)
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
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


#: The name of the root logger's handler that ``--log-json`` puts there (one at a time).
JSON_LOG_HANDLER = "tenancy_fixtures.cli.log_json"


def _foreign_records_as_json(steps: list[Any], level: int) -> None:
    """Records of libraries that log through :mod:`logging` (asyncio, a driver) as JSON
    events too, through ``steps`` (level, time, exception summary): Python's last-resort
    handler printed them as plain lines among the JSON."""
    import structlog

    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(JSON_LOG_HANDLER)
    handler.setLevel(level)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=structlog.processors.JSONRenderer(),
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *steps],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == JSON_LOG_HANDLER]:
        root.removeHandler(old)
    root.addHandler(handler)


def _warning_as_event(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """A Python warning (a library's ``SAWarning``, say) as one JSON log event, so that
    every line on stderr stays JSON under ``--log-json``."""
    del file, line
    get_logger("py.warnings").warning(
        "python_warning",
        category=category.__name__,
        message=str(message),
        filename=filename,
        lineno=lineno,
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
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    del version  # handled by its callback
    from tenancy_fixtures.settings import load_settings

    _configure_logging(verbose=verbose, json_logs=json_logs, debug=debug)
    err_console.json_lines = json_logs
    overrides: dict[str, object] = {}
    if database_url:
        overrides["database_url"] = database_url
    try:
        settings = load_settings(**overrides)
    except TenancyFixturesError as exc:
        fail(exc)
    ctx.obj = CliState(settings, debug=debug, json_logs=json_logs)


tenants.register(app)
tenant_config.register(app)
audit.register(app)
compliance.register(app)
fixtures.register(app)
migrations.register(app)
tokens.register(app)
service.register(app)
monitoring.register(app)
placement.register(app)
demo.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
