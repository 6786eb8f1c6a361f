"""Derived tables: tables a domain computes in the database from another table's rows.

A domain registers a :class:`Derivation` with :func:`register_derivation` (the
built-in domain's daily listening aggregates are one). After a loader that derives
(:class:`RefreshesDerivedTables`: source files, domain loaders that ask for it) wrote
rows of the derivation's source table, the derivation's ``refresh`` runs in the load's
transaction: for the parts of the derived tables those rows touch (the days of the
events written, say), or for all of them on a first load or a replacement. Loaders
that take rows as given (the plain table loader, whose fixture set may hold the
derived rows themselves) leave derived tables alone.
"""

from __future__ import annotations

from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Hashable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from tenancy_fixtures.fixtures.context import LoadContext
from tenancy_fixtures.loading.data_loader import DataLoader
from tenancy_fixtures.store.base import TenantSession

__all__ = [
    "DERIVATIONS",
    "Derivation",
    "Refresh",
    "RefreshesDerivedTables",
    "derived_tables",
    "register_derivation",
]

#: Recomputes derived tables for some parts (``None``: all of them) in the session's
#: transaction; returns the rows written per derived table.
Refresh = Callable[[TenantSession, set[Any] | None], Awaitable[Mapping[str, int]]]


def _whole(value: Hashable) -> Hashable:
    return value


@dataclass(frozen=True)
class Derivation:
    """Tables computed from the rows of ``source`` by ``refresh``.

    ``column`` names the source column that says which part of the derived tables a
    row touches, and ``part`` turns its value (as the store receives it: SQLite gets
    timestamps as text) into that part; without a column every load refreshes all.
    """

    source: str
    refresh: Refresh
    column: str | None = None
    part: Callable[[Any], Hashable] = _whole
    #: The tables ``refresh`` writes: counted apart from loaded rows everywhere.
    tables: tuple[str, ...] = ()


#: The registered derivations, in registration order (the order they refresh in).
DERIVATIONS: list[Derivation] = []


def derived_tables() -> frozenset[str]:
    """The tables the registered derivations write."""
    return frozenset(t for d in DERIVATIONS for t in d.tables)


def register_derivation(derivation: Derivation) -> Derivation:
    """Refresh ``derivation`` after deriving loaders write its source table (idempotent)."""
    if derivation not in DERIVATIONS:
        DERIVATIONS.append(derivation)
    return derivation


#: Per source table: (column position, part function, parts seen) for each derivation
#: whose touched parts are being noted.
_Noting = Mapping[str, Sequence[tuple[int, Callable[[Any], Hashable], set[Any]]]]


class RefreshesDerivedTables(DataLoader):
    """A DataLoader that, after writing a table others are derived from, refreshes the
    derived tables: for the parts the written rows touch, or whole on a first load or
    a replacement."""

    #: What the last ``apply`` refreshed: rows written per derived table.
    refreshed: dict[str, int]
    _noting: _Noting = MappingProxyType({})

    async def apply(self, session: TenantSession, context: LoadContext) -> Mapping[str, int]:
        """Write the rows, then refresh what derives from the tables written."""
        self.refreshed = {}
        noting: dict[str, list[tuple[int, Callable[[Any], Hashable], set[Any]]]] = {}
        plans: list[tuple[Derivation, set[Any] | None]] = []
        loaded = {f.table for f in self.files}
        for derivation in DERIVATIONS:
            if derivation.source not in loaded:
                continue
            table = self._table(session, derivation.source)
            mode = self.modes.get(derivation.source, "auto")
            empty = await session.is_empty(table)
            if mode == "skip" and not empty:
                continue
            parts: set[Any] | None = None
            # A first load (or a replacement) touches every part there is: refresh all.
            if mode != "replace" and not empty and derivation.column is not None:
                parts = set()
                position = [c.name for c in table.columns].index(derivation.column)
                noting.setdefault(derivation.source, []).append((position, derivation.part, parts))
            plans.append((derivation, parts))
        self._noting = noting
        try:
            counts = await super().apply(session, context)
        finally:
            self._noting = MappingProxyType({})
        for derivation, seen in plans:
            if seen is not None and not seen and counts.get(derivation.source):
                # Rows went in but no part was seen on their way: never leave stale parts.
                seen = None
            self.refreshed.update(await derivation.refresh(session, seen))
        return counts

    def _watches(self, table: str) -> bool:
        return bool(self._noting.get(table))

    def _reporting(
        self, table: str, batches: AsyncIterator[Sequence[tuple[Any, ...]]]
    ) -> AsyncGenerator[Sequence[tuple[Any, ...]], None]:
        for position, part, parts in self._noting.get(table, ()):
            batches = _noting_parts(batches, position, part, parts)
        return super()._reporting(table, batches)


async def _noting_parts(
    batches: AsyncIterator[Sequence[tuple[Any, ...]]],
    position: int,
    part: Callable[[Any], Hashable],
    parts: set[Any],
) -> AsyncGenerator[Sequence[tuple[Any, ...]], None]:
    async for batch in batches:
        parts.update({part(row[position]) for row in batch})
        yield batch
