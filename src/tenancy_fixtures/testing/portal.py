"""An event loop on a thread of its own, for the plugin's fixtures, and proxies of the
objects that live on it.

The fixtures are plain functions, so they work in sync tests and in async tests on any
event loop (pytest-asyncio with any loop scope, anyio, none at all). The manager they
drive keeps pooled connections, which belong to the loop that opened them: all of its
work therefore runs on this one loop, for the whole session of a worker. So does the
ORM session a test gets: :class:`LoopBound` hands such objects to the test.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

__all__ = ["LoopBound", "LoopThread"]

T = TypeVar("T")

#: How long an interrupted :meth:`LoopThread.call` waits for its work to end.
SETTLE_SECONDS = 30.0

#: Objects of this package live on the loop that made them: a connection, a session, a
#: transaction, a streamed result. What a proxied object returns from there is proxied.
_LOOP_BOUND_PACKAGE = "sqlalchemy.ext.asyncio"


class LoopThread:
    """A running event loop on a daemon thread; :meth:`call` runs a coroutine there."""

    def __init__(self, name: str = "tenancy-fixtures") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def call(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work()`` on the loop and wait for its result (its exception is raised).

        Interrupted while waiting (Ctrl-C, a test timeout), it still waits for ``work``
        to end before raising, so that what ``work`` made is there for the caller to
        remove, instead of appearing behind it; ``work`` still running after
        :data:`SETTLE_SECONDS` (hung) is cancelled, as is a second Ctrl-C.
        """
        future = asyncio.run_coroutine_threadsafe(_await(work), self._loop)
        try:
            return future.result()
        except BaseException:
            try:
                concurrent.futures.wait([future], timeout=SETTLE_SECONDS)
            finally:
                future.cancel()  # nothing if it ended
            raise

    async def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """:meth:`call` from inside another event loop, without blocking that loop.

        Cancelled (``asyncio.wait_for``, a task group), it cancels ``work`` and waits
        for it to end, as awaiting ``work`` on the caller's loop would: what comes next
        (a rollback at teardown) never overlaps a statement still being cancelled.
        """
        caller = asyncio.get_running_loop()
        outcome: asyncio.Future[T] = caller.create_future()
        started: concurrent.futures.Future[asyncio.Task[T]] = concurrent.futures.Future()

        def start() -> None:
            task = self._loop.create_task(_await(work))
            task.add_done_callback(lambda done: _settle_from(caller, outcome, done))
            started.set_result(task)

        self._loop.call_soon_threadsafe(start)
        try:
            return await asyncio.shield(outcome)
        except asyncio.CancelledError:
            # Queued after start(), so the task exists when this runs.
            self._loop.call_soon_threadsafe(lambda: started.result().cancel())
            with contextlib.suppress(Exception):  # a second cancellation stops waiting
                await outcome
            raise

    def close(self) -> None:
        """Stop the loop and wait for its thread."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


async def _await(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


def _settle_from(
    caller: asyncio.AbstractEventLoop, outcome: asyncio.Future[T], done: asyncio.Task[T]
) -> None:
    """Hand ``done``'s outcome (read here, on its own loop) to ``outcome`` on the
    ``caller``'s loop; a caller that has closed its loop meanwhile gets nothing."""
    cancelled = done.cancelled()
    error = None if cancelled else done.exception()
    result = None if cancelled or error is not None else done.result()

    def settle() -> None:
        if outcome.done():
            return
        if cancelled:
            outcome.cancel()
        elif error is not None:
            outcome.set_exception(error)
        else:
            outcome.set_result(result)  # type: ignore[arg-type]

    with contextlib.suppress(RuntimeError):  # the caller's loop is closed
        caller.call_soon_threadsafe(settle)


class LoopBound:
    """An object living on a :class:`LoopThread`, usable from any event loop.

    Its coroutine methods run on the loop thread and are awaited from the caller's
    loop; its other methods and attributes are its own, except that an object of
    SQLAlchemy's asyncio extension they return (``await session.connection()``,
    ``session.begin_nested()``) is proxied the same way, as :class:`AsyncBound`.
    """

    def __init__(self, target: Any, loop: LoopThread) -> None:
        self._target = target
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if inspect.iscoroutinefunction(value):

            @functools.wraps(value)
            async def on_the_loop(*args: Any, **kwargs: Any) -> Any:
                return self._bind(await self._loop.run(lambda: value(*args, **kwargs)))

            return on_the_loop
        if inspect.ismethod(value):

            @functools.wraps(value)
            def bound(*args: Any, **kwargs: Any) -> Any:
                return self._bind(value(*args, **kwargs))

            return bound
        return self._bind(value)

    def _bind(self, value: Any) -> Any:
        if type(value).__module__.startswith(_LOOP_BOUND_PACKAGE):
            return AsyncBound(value, self._loop)
        return value

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._target!r}>"


class AsyncBound(LoopBound):
    """A :class:`LoopBound` SQLAlchemy asyncio object: ``async with``, ``await`` and
    ``async for`` on it run on the loop thread too."""

    async def __aenter__(self) -> Any:
        return self._bind(await self._loop.run(self._target.__aenter__))

    async def __aexit__(self, *exc: object) -> Any:
        return await self._loop.run(lambda: self._target.__aexit__(*exc))

    def __await__(self) -> Generator[Any, None, Any]:
        return self._awaited().__await__()

    async def _awaited(self) -> Any:
        return self._bind(await self._loop.run(lambda: self._target))

    def __aiter__(self) -> AsyncBound:
        return self

    async def __anext__(self) -> Any:
        return self._bind(await self._loop.run(self._target.__anext__))
