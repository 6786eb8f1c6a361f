"""Retrying transient database failures with backoff; anything else fails at once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from tenancy_fixtures.errors import StorageError
from tenancy_fixtures.store.base import TenantStore

__all__ = ["with_retries"]

T = TypeVar("T")

_ATTEMPTS = 4


async def with_retries(
    store: TenantStore, operation: Callable[[], Awaitable[T]], *, tenant_id: str | None = None
) -> T:
    """Run ``operation`` (one whole transaction), again on a transient failure.

    A database error that is left after the retries becomes :class:`StorageError`.
    """
    retrying = AsyncRetrying(
        retry=retry_if_exception(store.is_transient),
        stop=stop_after_attempt(_ATTEMPTS),
        wait=wait_exponential_jitter(multiplier=0.05, max=2.0, jitter=0.05),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                return await operation()
    except DBAPIError as exc:
        raise StorageError(
            f"database error: {exc.orig or exc}".splitlines()[0], tenant_id=tenant_id
        ) from exc
    raise AssertionError("unreachable: tenacity either returns or raises")
