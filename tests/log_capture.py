"""structlog's ``capture_logs`` that leaves structlog as it found it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import structlog
from structlog.testing import capture_logs
from structlog.typing import EventDict

__all__ = ["captured_logs"]


@contextmanager
def captured_logs() -> Iterator[list[EventDict]]:
    """The library's log events while the block runs. ``capture_logs`` alone leaves
    structlog *configured* with its defaults, so the library would log every later
    test's events through structlog's console renderer (a logged exception then costs
    seconds of traceback rendering); this undoes that when structlog was not configured."""
    configured = structlog.is_configured()
    try:
        with capture_logs() as logs:
            yield logs
    finally:
        if not configured:
            structlog.reset_defaults()
