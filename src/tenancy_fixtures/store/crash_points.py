"""Test-only crash points: a test can make this process die with SIGKILL at a named step.

Creating and dropping a SQLite tenant call :func:`crash_point` at each step. Nothing
happens unless a test sets one of these environment variables (they are not settings
and no user should set them):

``TENANCY_TEST_CRASH_AT=<step>[#<n>]``
    the process kills itself (``SIGKILL``, like ``kill -9``: no clean-up runs) the
    ``n``-th time (default: the first) it reaches ``step``;
``TENANCY_TEST_CRASH_TRACE=<file>``
    every step reached is appended to ``file`` as ``<step>#<n>``, so that a test can
    list the points there are and then crash at each one.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

__all__ = ["CRASH_AT", "CRASH_TRACE", "armed", "crash_point"]

CRASH_AT = "TENANCY_TEST_CRASH_AT"
CRASH_TRACE = "TENANCY_TEST_CRASH_TRACE"

_reached: Counter[str] = Counter()


def armed() -> bool:
    """Whether a test asked for crash points in this process."""
    return CRASH_AT in os.environ or CRASH_TRACE in os.environ


def crash_point(step: str) -> None:
    """Die here if the test asked for this step (see the module docstring)."""
    if not armed():
        return
    _reached[step] += 1
    point = f"{step}#{_reached[step]}"
    trace = os.environ.get(CRASH_TRACE)
    if trace:
        with open(trace, "a", encoding="utf-8") as file:
            file.write(point + "\n")
    wanted = os.environ.get(CRASH_AT, "")
    if wanted and (point == wanted or (wanted == step and _reached[step] == 1)):
        os.kill(os.getpid(), signal.SIGKILL)
