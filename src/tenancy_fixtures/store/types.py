"""Column types whose storage differs per backend, for domains to declare tables with."""

from __future__ import annotations

from sqlalchemy import JSON
from sqlalchemy.dialects.postgresql import JSONB

__all__ = ["JSONDocument"]

#: A JSON document column: ``JSONB`` on PostgreSQL (indexable, compared by value),
#: JSON text elsewhere.
JSONDocument = JSON().with_variant(JSONB(), "postgresql")
