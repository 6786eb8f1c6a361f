"""Column types whose storage differs per backend, for domains to declare tables with."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB

__all__ = ["JSONDocument", "UtcTimestamp"]

#: A JSON document column: ``JSONB`` on PostgreSQL (indexable, compared by value),
#: JSON text elsewhere.
JSONDocument = JSON().with_variant(JSONB(), "postgresql")


class UtcTimestamp(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that binds an aware value as UTC.

    SQLite's ``DateTime`` drops the offset when binding, so ``15:32+05:00`` would be
    stored and compared as ``15:32`` by wall clock; converting to UTC first makes
    every backend store and compare the instant. Naive values are taken as UTC, and
    bound as such: asyncpg reads a naive value as the process's local time, so west of
    UTC a ``since`` left out what it should find (SQLite compared it as UTC); reads are
    left to the wrapped type.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, datetime):
            return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return value
