"""Parsing in a worker thread while the event loop writes: a bounded queue of batches.

Reading and typing records is CPU-bound Python; sending them is I/O and driver work.
Running the first in a thread lets the next batch be parsed while the previous one
is on its way to the database, and the bounded queue keeps memory to a few batches
however large the file.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Generic, TypeVar

__all__ = ["stream_in_thread"]

T = TypeVar("T")

#: Batches parsed ahead of the writer at most.
DEFAULT_DEPTH = 4


class _Done:
    pass


class _Failed(Generic[T]):
    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Stopped(Exception):
    """The consumer went away; the producer thread ends quietly."""


async def stream_in_thread(
    produce: Callable[[], Iterator[T]], *, depth: int = DEFAULT_DEPTH
) -> AsyncIterator[T]:
    """Yield what ``produce()`` yields, running it in a worker thread ``depth`` items ahead.

    An exception in the producer is raised here, in the consumer. If the consumer stops
    early (an error while writing), the producer is told to stop and is waited for.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[T | _Done | _Failed[T]] = asyncio.Queue(maxsize=depth)
    stopped = threading.Event()

    def put(item: T | _Done | _Failed[T]) -> None:
        future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
        while True:
            try:
                future.result(timeout=0.1)
                return
            except TimeoutError:
                if stopped.is_set() and future.cancel():
                    raise _Stopped from None

    def work() -> None:
        try:
            for item in produce():
                put(item)
            put(_Done())
        except _Stopped:
            return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            try:
                put(_Failed(exc))
            except _Stopped:
                return

    worker = loop.run_in_executor(None, work)
    try:
        while True:
            item = await queue.get()
            if isinstance(item, _Done):
                break
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stopped.set()
        await worker
