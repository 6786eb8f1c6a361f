"""Retrying transient database failures with backoff; anything else fails at once.

Each retry is logged once, at warning level (an operator sees it without ``--verbose``:
a retry that succeeded still means the database dropped a connection or a transaction):
``storage_retry`` with the attempt that failed, the reason and the wait before the next.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from tenancy_fixtures.errors import StorageError
from tenancy_fixtures.logs import get_logger

if TYPE_CHECKING:
    from tenacity import RetryCallState

__all__ = ["with_retries"]

T = TypeVar("T")

_ATTEMPTS = 4

log = get_logger("tenancy_fixtures.store.retrying")


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, StorageError) and exc.transient


def _first_cause(exc: BaseException) -> BaseException:
    """The failure that started it: a dropped connection surfaces as the rollback that
    failed after it, with the server's reason further down the chain."""
    chain = [exc]
    while len(chain) < 10:
        nxt = chain[-1].__cause__ or chain[-1].__context__
        if nxt is None or nxt in chain:
            break
        chain.append(nxt)
    # The driver's or server's words rather than the socket's ("Connection reset by peer").
    described = [e for e in chain if type(e).__module__ != "builtins"] or chain
    return described[-1]


def _log_retry(state: RetryCallState) -> None:
    failure = state.outcome.exception() if state.outcome is not None else None
    reason = "unknown"
    if failure is not None:
        cause = _first_cause(failure)
        reason = str(cause).strip() or type(cause).__name__
    log.warning(
        "storage_retry",
        attempt=state.attempt_number,
        of=_ATTEMPTS,
        reason=reason,
        error=str(failure) if failure is not None else None,
        tenant_id=getattr(failure, "tenant_id", None),
        retry_in_seconds=round(state.upcoming_sleep, 3),
    )


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
        before_sleep=_log_retry,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await operation()
    raise AssertionError("unreachable: tenacity either returns or raises")
