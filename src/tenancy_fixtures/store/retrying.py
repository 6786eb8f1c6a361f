"""Retrying transient database failures with backoff; anything else fails at once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenancy_fixtures.errors import StorageError

__all__ = ["with_retries"]

T = TypeVar("T")

_ATTEMPTS = 4


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, StorageError) and exc.transient


async def with_retries(operation: Callable[[], Awaitable[T]]) -> T:
    """Run ``operation`` (one whole transaction) again after a transient StorageError.

    The store marks its errors transient or not; the last error is raised as it is.
    """
    # Imported on first write: a process that only reads never needs it.
    from tenacity import (
        AsyncRetrying,
        retry_if_exception,
        stop_after_attempt,
        wait_exponential_jitter,
    )

    retrying = AsyncRetrying(
        retry=retry_if_exception(_transient),
        stop=stop_after_attempt(_ATTEMPTS),
        wait=wait_exponential_jitter(multiplier=0.05, max=2.0, jitter=0.05),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await operation()
    raise AssertionError("unreachable: tenacity either returns or raises")
