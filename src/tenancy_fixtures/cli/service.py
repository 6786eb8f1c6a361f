"""The HTTP service: ``serve``.

FastAPI and uvicorn are imported when the command runs (``--help`` never loads them);
they come with the ``service`` extra.
"""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tenancy_fixtures.cli.context import err_console, run, state

if TYPE_CHECKING:
    from tenancy_fixtures.manager import FixtureManager

__all__ = ["register"]

#: uvicorn's log levels (it answers any other with a KeyError traceback).
_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def _log_level(value: str) -> str:
    """One of uvicorn's levels (any case), lowercased; anything else is a usage error."""
    if value.lower() not in _LOG_LEVELS:
        raise typer.BadParameter(
            f"{value!r} is not a log level: give one of {', '.join(_LOG_LEVELS)}"
        )
    return value.lower()


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    log_level: Annotated[
        str,
        typer.Option(callback=_log_level, help=f"uvicorn's log level: {', '.join(_LOG_LEVELS)}."),
    ] = "info",
) -> None:
    """Serve the HTTP API (OpenAPI at /docs) over the same tenants as these commands.

    Requests need a bearer token from `tenancy-fixtures token create`.

    Example: tenancy-fixtures serve --host 0.0.0.0 --port 8080
    """
    try:
        import uvicorn

        from tenancy_fixtures.service import create_app
    except ImportError as exc:
        err_console.print(
            f"error: the service needs the 'service' extra ({exc.name} is missing): "
            "pip install 'tenancy-fixtures[service]'"
        )
        raise typer.Exit(2) from None
    # The database first, as every command reaches it: a server that does not answer is
    # one line and exit 7, not a traceback of the app's startup and uvicorn's exit 3.
    run(ctx, _reachable)
    app = create_app(state(ctx).settings)
    listening = _listen(host, port)
    log_config = _json_logging(log_level) if state(ctx).json_logs else uvicorn.config.LOGGING_CONFIG
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, log_config=log_config))
    bound = listening.getsockname()
    # Through uvicorn's logger (its level, its format: JSON lines with --log-json).
    logging.getLogger("uvicorn.error").info(
        "serving on http://%s (CTRL+C to quit)", _address(host, bound[1])
    )
    server.run(sockets=[listening])
    if not server.started:
        err_console.print("error: the service did not start (its log above says why)")
        raise typer.Exit(1)


def _json_logging(level: str) -> dict[str, Any]:
    """uvicorn's loggers as JSON lines on stderr, shaped as the CLI's own events
    (``event``, ``level``, ``timestamp``), for ``--log-json``."""
    import structlog

    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.JSONRenderer(),
                ],
                "foreign_pre_chain": [
                    structlog.stdlib.add_logger_name,
                    structlog.stdlib.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                ],
            }
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            name: {"handlers": ["stderr"], "level": level.upper(), "propagate": False}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (an IPv6 address when ``host`` has a colon, as
    uvicorn reads it); one line and exit 1 when it cannot be (the port taken, an address
    of no interface here), instead of uvicorn's exit 3, which says "tenant exists" here."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as exc:
        listening.close()
        reason = exc.strerror or str(exc)
        err_console.print(
            f"error: cannot listen on {_address(host, port)} ({reason}): give another "
            "--port, or a --host of this machine",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
    listening.set_inheritable(True)
    return listening


async def _reachable(manager: FixtureManager) -> None:
    """Nothing more: opening ``manager`` has initialized its store."""
    del manager


def register(app: typer.Typer) -> None:
    """Add ``serve`` to ``app``."""
    app.command("serve")(serve)
