"""The HTTP service: ``serve``.

FastAPI and uvicorn are imported when the command runs (``--help`` never loads them);
they come with the ``service`` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

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
    uvicorn.run(app, host=host, port=port, log_level=log_level)


async def _reachable(manager: FixtureManager) -> None:
    """Nothing more: opening ``manager`` has initialized its store."""
    del manager


def register(app: typer.Typer) -> None:
    """Add ``serve`` to ``app``."""
    app.command("serve")(serve)
