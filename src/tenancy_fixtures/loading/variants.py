"""The type PostgreSQL makes of a column declared with a variant per backend."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["postgresql_type"]


def postgresql_type(kind: Any) -> Any:
    """``kind``'s variant for PostgreSQL (``Float().with_variant(REAL(), "postgresql")``),
    else ``kind`` itself: the loader keeps values as PostgreSQL stores them (rounded to
    a ``REAL``, a ``NUMERIC(p, s)``, a ``TIMESTAMP(p)``) on both backends."""
    variants: Mapping[str, Any] = getattr(kind, "_variant_mapping", None) or {}
    return variants.get("postgresql", kind)
