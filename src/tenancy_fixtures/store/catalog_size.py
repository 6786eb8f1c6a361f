"""How many relations one tenant adds to a shared catalogue (PostgreSQL's pg_class)."""

from __future__ import annotations

from sqlalchemy import JSON, LargeBinary, MetaData, String, Text

__all__ = ["relations_per_tenant"]

_TOASTABLE = (String, Text, JSON, LargeBinary)


def relations_per_tenant(metadata: MetaData) -> int:
    """Relations one tenant of ``metadata`` adds: each table, its primary key, unique
    constraints and indexes, and a TOAST table with its index where a column can be
    stored out of line."""
    count = 0
    for table in metadata.sorted_tables:
        count += 1 + len(table.indexes)
        count += sum(1 for c in table.constraints if c.__visit_name__ == "unique_constraint")
        count += 1 if table.primary_key.columns else 0
        if any(isinstance(c.type, _TOASTABLE) for c in table.columns):
            count += 2
    return count
