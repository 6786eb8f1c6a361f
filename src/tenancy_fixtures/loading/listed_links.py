"""The links a source lists for each record it loads, and the tenant's links it no longer does.

Some sources list a record's links whole: a ``dumpdata`` record its many-to-many field
(``loaddata`` sets the field to that list), an MPD playlist its tracks. A reload of
one listing fewer leaves the record with those alone, as it overwrites the record's
other fields: once the load's rows are written, the rows of the link table that hold
the record's key and a link its list no longer names are deleted. Records of the
tenant the load does not name keep their links, as they keep their rows, and so do
records a lenient load refused. The deleted rows are recorded as a ``purge`` of the
table (their checksum negated), so the tenant's recorded table contents stay true.

A source may also give part of a record's list (a page of a playlist's tracks): the
links of such parts are :meth:`ListedLinks.keep`-t, so a load holding the whole list
and another part of it deletes neither part's links.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Iterable
from typing import Any

from sqlalchemy import delete, select, tuple_

from tenancy_fixtures.loading.table_checksums import table_checksum_over
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.store.base import TENANT_SCHEMA, TenantSession

__all__ = ["ListedLinks"]

#: Sources whose links are read, and stale links deleted, per statement.
_BATCH = 500
_MASK = (1 << 64) - 1

Typed = Callable[[Any], Any]


class ListedLinks:
    """The links (typed source, target) each loaded record lists, by through table."""

    def __init__(self) -> None:
        #: The typed targets each source's record lists, by through table.
        self._listed: dict[str, dict[Any, set[Any]]] = {}
        #: Where each (through table, source) listing came from: the record's document.
        self._origins: dict[tuple[str, Any], Hashable] = {}
        #: The targets parts of a list give, by through table and source: never pruned.
        self._kept: dict[str, dict[Any, set[Any]]] = {}
        #: What the last :meth:`prune` deleted, as ``purge`` writes of the load.
        self.purged: list[control_plane.TableChecksum] = []

    def list(
        self, table: str, source: Any, targets: Iterable[Any], origin: Hashable
    ) -> Callable[[], None]:
        """Note that the record of ``source`` (at ``origin``) lists exactly ``targets`` in
        ``table`` (typed as its columns hold them); returns what forgets it (the record
        set aside while staged)."""
        by_source = self._listed.setdefault(table, {})
        listed, listed_at = by_source.get(source), self._origins.get((table, source))
        by_source[source] = set(targets)
        self._origins[table, source] = origin

        def forget() -> None:
            if listed is None:
                by_source.pop(source, None)
                self._origins.pop((table, source), None)
            else:
                by_source[source], self._origins[table, source] = listed, listed_at

        return forget

    def keep(self, table: str, source: Any, targets: Iterable[Any]) -> None:
        """Note that the load writes ``targets`` of ``source`` in ``table`` from part of
        its list: :meth:`prune` leaves them, whichever record lists the source whole."""
        self._kept.setdefault(table, {}).setdefault(source, set()).update(targets)

    def forget(self, origins: Collection[Hashable]) -> None:
        """Forget the lists of the records at ``origins``, whose rows a lenient load
        refused: their links stay as the tenant holds them, like their rows."""
        for (table, source), origin in list(self._origins.items()):
            if origin in origins:
                self._listed[table].pop(source, None)
                del self._origins[table, source]

    async def prune(
        self, session: TenantSession, throughs: Iterable[tuple[str, str, str, Typed]]
    ) -> None:
        """Delete the rows of each through table (``name, source, target, typed``:
        ``typed`` types a stored pair as :meth:`list` was given it) whose source a
        record of the load lists and whose target its list does not name."""
        self.purged = []
        for name, source, target, typed in throughs:
            listed = self._listed.get(name)
            if listed:
                kept = self._kept.get(name, {})
                await self._prune_table(session, name, (source, target), typed, listed, kept)

    async def _prune_table(
        self,
        session: TenantSession,
        name: str,
        columns: tuple[str, str],
        typed: Typed,
        listed: dict[Any, set[Any]],
        kept: dict[Any, set[Any]],
    ) -> None:
        table = session.metadata.tables[f"{TENANT_SCHEMA}.{name}"]
        source, target = (table.c[c] for c in columns)
        at = (list(table.columns).index(source), list(table.columns).index(target))
        recorded = await control_plane.table_checksums(session.connection, session.tenant_id)
        covered = next((w.columns for w in reversed(recorded) if w.table == name), None)
        content = table_checksum_over(table, covered)
        ordered = sorted(listed, key=repr)
        for start in range(0, len(ordered), _BATCH):
            batch = ordered[start : start + _BATCH]
            found = await session.connection.execute(
                select(table).where(session.stored_in(source, batch))
            )
            stale = []
            for row in found:
                held = typed((row[at[0]], row[at[1]]))
                if held is None or (
                    held[1] not in listed.get(held[0], ()) and held[1] not in kept.get(held[0], ())
                ):
                    stale.append(tuple(row))
            if stale:
                pairs = [(row[at[0]], row[at[1]]) for row in stale]
                await session.connection.execute(
                    delete(table).where(tuple_(source, target).in_(pairs))
                )
                content.add(stale)
        if content.rows:
            negated = f"{-content.total & _MASK:016x}"
            self.purged.append(
                control_plane.TableChecksum(
                    name, "purge", content.rows, negated, 0, columns=content.columns
                )
            )
