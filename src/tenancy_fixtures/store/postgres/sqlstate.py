"""Reading PostgreSQL's error codes through SQLAlchemy's and asyncpg's exception wrappers."""

from __future__ import annotations

import asyncpg

__all__ = ["pg_error", "sqlstate"]


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of ``exc``, of the driver error it wraps, or of that one's cause."""
    for candidate in (exc, getattr(exc, "orig", None), getattr(exc, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    cause = getattr(getattr(exc, "orig", None), "__cause__", None)
    code = getattr(cause, "sqlstate", None)
    return code if isinstance(code, str) else None


def pg_error(exc: BaseException) -> asyncpg.PostgresError | None:
    """The asyncpg error behind ``exc`` (SQLAlchemy wraps it up to twice), if any."""
    seen: BaseException | None = exc
    for _ in range(4):
        if isinstance(seen, asyncpg.PostgresError):
            return seen
        if seen is None:
            return None
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None
