"""Ctrl-C while a revision's own code runs.

``asyncio.run`` answers the first SIGINT by cancelling its main task, which takes effect
at the task's next ``await``: a revision busy in Python code (a data migration's loop,
a ``time.sleep``) reaches none, so the run went on and only a second Ctrl-C stopped it.
While revision code runs, a SIGINT raises :class:`KeyboardInterrupt` in it instead, as
in any Python program, and the tenant's transaction rolls back on its way out. Anywhere
else (a revision waiting on the database, say) the handler that was there acts as it
did: asyncio's cancels the run at the statement it waits on.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import CodeType, FrameType
from typing import Any

__all__ = ["interruptible"]

_Handler = Callable[[int, FrameType | None], Any]

#: Revision code running at once (tenants migrated concurrently), and the handler that
#: was there before the first of them.
_running: list[CodeType] = []
_previous: list[_Handler] = []


def _in_revision(frame: FrameType | None) -> bool:
    """Whether ``frame`` (where the signal landed) is revision code, or code it called."""
    while frame is not None:
        if frame.f_code in _running:
            return True
        frame = frame.f_back
    return False


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    if _in_revision(frame):
        raise KeyboardInterrupt
    if _previous:
        _previous[0](signum, frame)


@contextmanager
def interruptible(code: CodeType) -> Iterator[None]:
    """While the block runs, a SIGINT landing in ``code`` (the function running the
    revisions, as its frames call them) or below raises :class:`KeyboardInterrupt`
    there. Only in the main thread, where signals land, and only over a handler Python
    installed (one that ignores SIGINT, or the OS default, is left alone)."""
    current = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(current):
        yield
        return
    if not _running and current is not _on_sigint:
        _previous[:] = [current]
        signal.signal(signal.SIGINT, _on_sigint)
    _running.append(code)
    try:
        yield
    finally:
        _running.remove(code)
        if not _running and _previous and signal.getsignal(signal.SIGINT) is _on_sigint:
            signal.signal(signal.SIGINT, _previous.pop())
