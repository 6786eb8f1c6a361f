"""An event loop on a thread of its own, for the plugin's fixtures.

The fixtures are plain functions, so they work in sync tests and in async tests on any
event loop (pytest-asyncio with any loop scope, anyio, none at all). The manager they
drive keeps pooled connections, which belong to the loop that opened them: all of its
work therefore runs on this one loop, for the whole session of a worker.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["LoopThread"]

T = TypeVar("T")


class LoopThread:
    """A running event loop on a daemon thread; :meth:`call` runs a coroutine there."""

    def __init__(self, name: str = "tenancy-fixtures") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def call(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work()`` on the loop and wait for its result (its exception is raised)."""
        return asyncio.run_coroutine_threadsafe(_await(work), self._loop).result()

    async def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """:meth:`call` from inside another event loop, without blocking that loop."""
        future = asyncio.run_coroutine_threadsafe(_await(work), self._loop)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Stop the loop and wait for its thread."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


async def _await(work: Callable[[], Awaitable[T]]) -> T:
    return await work()
