"""Citus's errors read as PostgreSQL's: shard names mapped back to the tenant's tables,
and Citus's refusals given the reason and the way round in tenant terms.

A row refused on a worker names the shard (``users_102008``) and its constraint
(``users_pkey_102008``); the user declared ``users`` and ``users_pkey``. Shard ids are
learned from the table names the message gives, so constraints and indexes a
migration added are mapped too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import MetaData

__all__ = ["explain", "forwarded_violation", "shard_names", "unshard"]

#: A row refused on a worker during ``COPY`` comes back as an internal error (XX000),
#: its SQLSTATE lost; these messages say it was a constraint (class 23).
_VIOLATION = re.compile(
    r'violates (?:unique|foreign key|check|not-null|exclusion) constraint "(?P<name>[^"]+)"'
    r"|null value in column"
)
_SUFFIXED = re.compile(r"\b([A-Za-z_][A-Za-z0-9_$]*?)_(\d+)\b")

#: Citus's refusals (a part of the message) and what they mean for a tenant schema.
_HINTS = (
    (
        "not colocated or not referencing a reference table",
        "each tenant schema is a Citus distributed schema: its foreign keys may refer to "
        "its own tables only, never to another tenant's or a regular schema's",
    ),
    (
        "foreign keys from distributed schemas can only point",
        "each tenant schema is a Citus distributed schema: its foreign keys may refer to "
        "its own tables only",
    ),
    (
        "cannot create foreign keys to tables in a distributed schema",
        "a tenant's tables (a Citus distributed schema) may not be referred to from another schema",
    ),
    (
        "cannot create distributed schema and table in a single statement",
        "create the schema first and its tables in separate statements "
        "(CREATE SCHEMA ... CREATE TABLE is refused on Citus)",
    ),
    (
        "tables in a distributed schema cannot inherit",
        "a tenant's tables on Citus may not use inheritance or be inherited",
    ),
    (
        "partitioning within a distributed schema is not",
        "a tenant's tables on Citus may not be partitioned",
    ),
)


def shard_names(metadata: MetaData) -> set[str]:
    """The names a shard suffix is appended to: tables, constraints and indexes."""
    names = set()
    for table in metadata.sorted_tables:
        names.add(table.name)
        names.update(str(c.name) for c in table.constraints if c.name)
        names.update(str(i.name) for i in table.indexes if i.name)
    return names


def unshard(message: str, names: Iterable[str]) -> str:
    """``message`` with every ``name_<shard id>`` written ``name``, for the shard ids
    that follow one of ``names`` (:func:`shard_names`) in it; the same ids are stripped
    from any other name (a constraint a migration added)."""
    known = set(names)
    shard_ids = {shard for base, shard in _SUFFIXED.findall(message) if base in known}
    if not shard_ids:
        return message

    def strip(match: re.Match[str]) -> str:
        return match[1] if match[2] in shard_ids else match[0]

    return _SUFFIXED.sub(strip, message)


def explain(message: str) -> str:
    """``message`` with what a Citus refusal means for a tenant schema, when it is one."""
    for part, hint in _HINTS:
        if part in message:
            return f"{message} ({hint})"
    return message


def forwarded_violation(state: str | None, message: str) -> tuple[bool, str | None]:
    """Whether an error a worker forwarded (``state`` XX000) is a refused row, and the
    constraint its message names (shard suffix and all)."""
    if state != "XX000":
        return False, None
    match = _VIOLATION.search(message)
    return (match is not None, match["name"] if match is not None else None)
