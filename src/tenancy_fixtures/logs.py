"""Logging for library code: quiet, and on stderr, until the application says otherwise.

Unconfigured, structlog prints every event to stdout and renders exceptions with their
local variables (record values included): right for an application being written,
wrong inside someone else's program. Library modules therefore take their logger from
:func:`get_logger` and never configure structlog. Their events go

- through structlog's configuration once the application has made one
  (``structlog.configure``, as the CLI does at its entry point), like those of any
  ``structlog.get_logger()`` logger;
- until then, to the standard library's :mod:`logging` under the module's name
  (``tenancy_fixtures.manager``, ...) as one line, ``event key=value ...``: nothing
  below WARNING unless the application configures :mod:`logging`, warnings and errors
  to stderr (:data:`logging.lastResort`), tracebacks without local variables.

structlog is not imported until then: with Rich, which it loads, it costs more than
importing the library does. An application may therefore hand its configuration over
to :func:`configure_when_used`, which runs it at the first event that would be logged
(the CLI does: a command logging nothing never holds structlog's few MiB).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["LibraryLogger", "configure_when_used", "get_logger"]

# The caller of debug()/info()/... as the record's origin: _log, the level method, it.
_CALLER = 3


#: The application's structlog configuration waiting for the first event at its level or
#: above (see :func:`configure_when_used`), and that level.
_waiting: tuple[Callable[[], None], int] | None = None
_waiting_lock = threading.Lock()


def configure_when_used(configure: Callable[[], None] | None, *, level: int = 0) -> None:
    """Have ``configure``, an application's ``structlog.configure``, run when the first
    event at ``level`` or above is logged, instead of now: importing structlog (and
    Rich's traceback renderer, which it loads) costs a few MiB of memory, which a run
    logging nothing need not hold. Until then events below ``level`` are dropped, as
    the configuration would drop them. ``None`` withdraws a configuration still waiting."""
    global _waiting
    with _waiting_lock:
        _waiting = None if configure is None else (configure, level)


def _configured_for(level: int) -> Any:
    """structlog when it is configured (first running a configuration waiting for an
    event at ``level``); ``False``: the event is one that configuration drops; ``None``:
    structlog is not configured, the event goes to :mod:`logging`."""
    global _waiting
    structlog = sys.modules.get("structlog")
    if structlog is not None and structlog.is_configured():
        return structlog
    with _waiting_lock:
        if _waiting is None:
            return None
        configure, least = _waiting
        if level < least:
            return False
        _waiting = None
        configure()
    structlog = sys.modules.get("structlog")
    return structlog if structlog is not None and structlog.is_configured() else None


def get_logger(name: str) -> LibraryLogger:
    """The logger of the library module ``name`` (``tenancy_fixtures.<module>``)."""
    return LibraryLogger(name)


def _line(event: str, values: Mapping[str, Any]) -> str:
    return " ".join([event, *(f"{key}={value!r}" for key, value in values.items())])


class LibraryLogger:
    """The part of structlog's bound-logger interface the library uses."""

    __slots__ = ("_context", "name")

    def __init__(self, name: str, context: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self._context = dict(context or {})

    def bind(self, **values: Any) -> LibraryLogger:
        """A logger that adds ``values`` to every event."""
        return LibraryLogger(self.name, {**self._context, **values})

    def debug(self, event: str, **values: Any) -> None:
        self._log(logging.DEBUG, "debug", event, values)

    def info(self, event: str, **values: Any) -> None:
        self._log(logging.INFO, "info", event, values)

    def warning(self, event: str, **values: Any) -> None:
        self._log(logging.WARNING, "warning", event, values)

    def error(self, event: str, **values: Any) -> None:
        self._log(logging.ERROR, "error", event, values)

    def exception(self, event: str, **values: Any) -> None:
        """An error with the exception being handled."""
        values.setdefault("exc_info", True)
        self._log(logging.ERROR, "error", event, values)

    def _log(self, level: int, method: str, event: str, values: dict[str, Any]) -> None:
        structlog = _configured_for(level)
        if structlog is False:
            return
        if structlog is not None:
            logger = structlog.get_logger(self.name)
            getattr(logger.bind(**self._context), method)(event, **values)
            return
        std = logging.getLogger(self.name)
        if std.isEnabledFor(level):
            exc_info = values.pop("exc_info", None)
            line = _line(event, {**self._context, **values})
            std.log(level, line, exc_info=exc_info, stacklevel=_CALLER)
