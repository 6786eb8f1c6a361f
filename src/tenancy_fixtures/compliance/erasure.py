"""Erasure: one person's personal data deleted or pseudonymised across a tenant, proven.

Which rows are a person's the schema declares (:mod:`tenancy_fixtures.compliance.subjects`).
Everything happens in ONE tenant transaction (the control plane's records with it):
a failure anywhere leaves the tenant as it was. On SQLite what it deletes or rewrites
is overwritten in the tenant's file (``secure_delete``), not left in its free space.

``delete``
    The subject's row goes, and with it every row that cannot outlive it: rows whose
    non-nullable reference names the subject, and, following every foreign key (declared
    for subjects or not, as the database requires), rows that depend on a deleted row.
    A nullable foreign key to a deleted row is set to NULL instead: the shared row
    stays, no longer pointing at it. A row that is the subject's by a nullable reference
    (``added_by``, a comment's nullable author), or through such a row, stays too, with
    that reference and its personal columns (the comment's body) set to NULL; when one
    of those cannot be NULL, the row is deleted instead (and the rows depending on it
    as above). The receipt counts the rows changed per table (``updated``) and, per
    column set to NULL, the values cleared (``cleared``).
``pseudonymise``
    The subject's id, wherever it is held, and the personal columns of the rows that
    reach them become HMACs under a random key that is never stored: the rows and their
    links stay (counts, joins), nobody can tell whose they were, not even the operator.

Derived tables are recomputed by their registered derivation for the parts the changed
source rows touched (the days of a person's listening events), so aggregates agree
with what is left. What changed is recorded in the control plane's table-write history
as retention records it (the removed rows' checksum, negated, then the new rows'), so
``validate-data`` still agrees with the tables.

The subject's audit details (a refused record quoted in an error message), reject-file
lines and cached config are found by the subject's values (their own row's, and those
of their records a lenient load refused) and scrubbed: audit details
are reduced to the minimal trail under an ``audit.erase`` tombstone, reject lines are
removed. A receipt (``data.erase``) goes into the audit chain: counts per table, a
digest of what was removed, and keyed fingerprints of the subject's values (see
:class:`~tenancy_fixtures.compliance.subjects.Fingerprints`) so that
:func:`verify_erasure` can prove later that none of them is left anywhere; receipts
and ``audit.erase`` tombstones are never scrubbed (they are the proof). An id that no
row reaches, no reject record is of (their id in its id or reference column) and no
earlier erasure is on record is a
:class:`~tenancy_fixtures.errors.SubjectNotFoundError`, with no receipt, before
anything is scrubbed: a word of an audit detail or reject line equal to it is no
evidence that it is a person's id.

With ``TENANCY_AUDIT_LOGGING=false`` an erasure is refused (:class:`ConfigError`, exit 2)
before anything is read or changed: its receipt is the proof ``verify_erasure`` needs.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import (
    Column,
    MetaData,
    Table,
    UniqueConstraint,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    null,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.util import ClauseAdapter

from tenancy_fixtures.compliance.pseudonyms import Pseudonymiser
from tenancy_fixtures.compliance.subjects import (
    Fingerprints,
    belongs_to,
    identifying_columns,
    personal_values,
    reach,
    subject_column,
    subject_id_columns,
    typed_subject,
)
from tenancy_fixtures.errors import (
    ConfigError,
    SettingsError,
    StorageError,
    SubjectNotFoundError,
    TenantNotFoundError,
)
from tenancy_fixtures.ids import validate_tenant_id
from tenancy_fixtures.loading.checksums import ContentChecksum
from tenancy_fixtures.loading.derived import DERIVATIONS
from tenancy_fixtures.loading.records import column_value
from tenancy_fixtures.loading.table_checksums import table_checksum, table_checksum_over
from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.store import control_plane, migration_ledger
from tenancy_fixtures.store.base import TenantSession, TenantStore
from tenancy_fixtures.store.column_info import (
    encrypted_columns,
    personal_columns,
    subject_columns,
)
from tenancy_fixtures.store.control_plane import RejectNames
from tenancy_fixtures.tenancy import data_keys
from tenancy_fixtures.tenancy.audit import audited
from tenancy_fixtures.tenancy.config_cache import ConfigCache
from tenancy_fixtures.tenancy.tenants import recorded_files, reject_files

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = [
    "ERASURE_FIXTURE",
    "RECEIPT",
    "ErasureMode",
    "ErasureReport",
    "data_keyed_receipts",
    "erase_subject",
    "known_fingerprints",
    "line_holds",
    "scrub_reject_files",
    "subject_records",
    "tenant_reject_files",
]

log = get_logger("tenancy_fixtures.compliance.erasure")

ErasureMode = Literal["delete", "pseudonymise"]
#: The name erasures are recorded under in the control plane's table-write history.
ERASURE_FIXTURE = "erasure"
#: The audit action of an erasure: its receipt.
RECEIPT = "data.erase"
#: Where a receipt says whether its fingerprint key came from a data key or the salt.
_KEY_KIND = "key"
_MASK = (1 << 64) - 1


@dataclass
class ErasureReport:
    """What an erasure did to one tenant: rows per table and what was scrubbed."""

    tenant_id: str
    mode: str
    run_id: str = ""
    deleted: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    refreshed: dict[str, int] = field(default_factory=dict)
    #: Per table, per column set to NULL, how many values it held.
    cleared: dict[str, dict[str, int]] = field(default_factory=dict)
    audit_records: int = 0
    reject_lines: int = 0
    cache_keys: int = 0
    digest: str = ""

    @property
    def total(self) -> int:
        return sum(self.deleted.values()) + sum(self.updated.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "mode": self.mode,
            "run_id": self.run_id,
            "deleted": dict(self.deleted),
            "updated": dict(self.updated),
            "refreshed": dict(self.refreshed),
            "cleared": {t: dict(c) for t, c in self.cleared.items()},
            "audit_records": self.audit_records,
            "reject_lines": self.reject_lines,
            "cache_keys": self.cache_keys,
            "digest": self.digest,
        }


@dataclass
class _Changes:
    """The rows an erasure removed and wrote, per table, for the write history."""

    #: Per table with a recorded history, the columns its checksums cover.
    covered: dict[str, tuple[str, ...] | None] = field(default_factory=dict)
    removed: dict[str, ContentChecksum] = field(default_factory=dict)
    written: dict[str, ContentChecksum] = field(default_factory=dict)
    #: Per source table of a derivation: the parts its changed rows touch.
    parts: dict[str, set[Any]] = field(default_factory=dict)

    def remove(self, table: Table, rows: Sequence[Sequence[Any]]) -> None:
        self.removed.setdefault(table.name, self._content(table)).add(rows)
        for derivation in DERIVATIONS:
            if derivation.source == table.name and derivation.column is not None:
                at = [c.name for c in table.columns].index(derivation.column)
                seen = self.parts.setdefault(table.name, set())
                seen.update(derivation.part(row[at]) for row in rows)

    def write(self, table: Table, rows: Sequence[Sequence[Any]]) -> None:
        self.written.setdefault(table.name, self._content(table)).add(rows)

    def _content(self, table: Table) -> ContentChecksum:
        return table_checksum_over(table, self.covered.get(table.name))


def _fk_terms(
    table: Table, parents: Mapping[str, ColumnElement[bool]], *, nullable: bool
) -> Iterator[tuple[list[Column[Any]], ColumnElement[bool]]]:
    """Foreign keys of ``table`` to rows selected in ``parents``: (columns, condition),
    for the nullable keys or the others."""
    for constraint in table.foreign_key_constraints:
        parent = constraint.referred_table
        if parent.name not in parents or parent is table:
            continue
        columns = list(constraint.columns)
        if any(c.nullable for c in columns) != nullable:
            continue
        referred = [e.column for e in constraint.elements]
        chosen = select(*referred).where(parents[parent.name])
        if len(columns) == 1:
            yield columns, columns[0].in_(chosen)
        else:
            yield columns, tuple_(*columns).in_(chosen)


@dataclass
class _Plan:
    """What a delete-mode erasure does, per table: the rows it deletes, and the nullable
    columns it sets to NULL (each group with the rows it clears them in)."""

    doomed: dict[str, ColumnElement[bool]] = field(default_factory=dict)
    cleared: dict[str, list[tuple[list[Column[Any]], ColumnElement[bool]]]] = field(
        default_factory=dict
    )
    #: The subject's rows that stay, shared, their personal columns cleared: those whose
    #: nullable reference names the subject, and those belonging through them.
    stripped: dict[str, ColumnElement[bool]] = field(default_factory=dict)
    #: Per table, its nullable keys to its own rows, cleared where they point at a doomed
    #: row of it before those rows are deleted.
    unlinked: dict[str, list[tuple[list[Column[Any]], ColumnElement[bool]]]] = field(
        default_factory=dict
    )


def _deletion_plan(tables: Sequence[Table], subject: Any, id_column: Column[Any]) -> _Plan:
    """Per table, the rows to delete, and the nullable columns to clear (with which rows).

    A row whose nullable key points at a deleted row loses the pointer, unless that key
    is declared ``"through"``: such a row is the parent's owner's, and goes with it. A row
    that is the subject's by a nullable reference (or through such a row) loses the
    reference and its personal columns, or goes when one of those cannot be NULL; in the
    subject table, another person's row loses only the reference."""
    plan = _Plan()
    for table in tables:  # parents first: a child's condition names its parents'
        terms: list[ColumnElement[bool]] = []
        clears: list[tuple[list[Column[Any]], ColumnElement[bool]]] = []
        owned = _through_terms(table, plan.stripped)
        home = id_column.table is table
        if home:
            terms.append(id_column == subject)
        for column in subject_columns(table, "reference"):
            if column.nullable:
                clears.append(([column], column == subject))
                if not home:  # another person's row naming them (their inviter) is theirs
                    owned.append(column == subject)
            else:
                terms.append(column == subject)
        terms += [term for _, term in _fk_terms(table, plan.doomed, nullable=False)]
        through = set(subject_columns(table, "through"))
        for columns, term in _fk_terms(table, plan.doomed, nullable=True):
            if through.intersection(columns):
                terms.append(term)
            else:
                clears.append((columns, term))
        if owned:
            _strip(plan, table, or_(*owned), terms, clears)
        if terms:
            plan.doomed[table.name] = or_(*terms)
            plan.unlinked[table.name] = _self_terms(table, plan.doomed[table.name], through)
        if clears:
            plan.cleared[table.name] = clears
    return plan


def _self_terms(
    table: Table, doomed: ColumnElement[bool], through: set[Column[Any]]
) -> list[tuple[list[Column[Any]], ColumnElement[bool]]]:
    """The nullable keys of ``table`` to its own rows (a manager's id) with the rows
    pointing at a ``doomed`` one: they lose the pointer before that row goes."""
    found: list[tuple[list[Column[Any]], ColumnElement[bool]]] = []
    for constraint in table.foreign_key_constraints:
        columns = list(constraint.columns)
        if constraint.referred_table is not table or through.intersection(columns):
            continue
        if any(c.nullable for c in columns):
            parent = table.alias()
            referred = [parent.c[e.column.key] for e in constraint.elements]
            chosen = select(*referred).where(ClauseAdapter(parent).traverse(doomed))
            pointer = columns[0] if len(columns) == 1 else tuple_(*columns)
            found.append((columns, pointer.in_(chosen)))
    return found


def _through_terms(
    table: Table, stripped: Mapping[str, ColumnElement[bool]]
) -> list[ColumnElement[bool]]:
    """Conditions selecting the rows of ``table`` whose ``"through"`` key names a
    stripped row: they are the subject's as their parent was."""
    terms: list[ColumnElement[bool]] = []
    for column in subject_columns(table, "through"):
        for key in column.foreign_keys:
            parent = key.column.table
            if parent.name in stripped and parent is not table:
                terms.append(column.in_(select(key.column).where(stripped[parent.name])))
    return terms


def _strip(
    plan: _Plan,
    table: Table,
    owned: ColumnElement[bool],
    terms: list[ColumnElement[bool]],
    clears: list[tuple[list[Column[Any]], ColumnElement[bool]]],
) -> None:
    """The subject's rows ``owned`` stay without their personal columns, or, when one of
    those cannot be NULL, go (and what depends on them with them)."""
    personal = personal_columns(table)
    if any(not c.nullable for c in personal):
        terms.append(owned)
        return
    plan.stripped[table.name] = owned
    if personal:
        clears.append((personal, owned))


async def _delete_rows(
    session: TenantSession,
    tables: Sequence[Table],
    subject: Any,
    changes: _Changes,
    report: ErasureReport,
) -> None:
    """Delete mode: children first, so no foreign key ever points at a deleted row (and a
    child's condition reads its parents as they were)."""
    conn = session.connection
    plan = _deletion_plan(tables, subject, subject_column(session.metadata))
    for table in reversed(tables):
        if plan.unlinked.get(table.name):
            await _clear(session, table, plan.unlinked[table.name], changes, report)
        if table.name in plan.doomed:
            doomed = plan.doomed[table.name]
            rows = [tuple(r) for r in (await conn.execute(select(table).where(doomed)))]
            if rows:
                result = await conn.execute(delete(table).where(doomed))
                _check_count(result.rowcount, len(rows), table, session.tenant_id)
                changes.remove(table, rows)
                report.deleted[table.name] = len(rows)
        if table.name in plan.cleared:
            await _clear(session, table, plan.cleared[table.name], changes, report)


async def _clear(
    session: TenantSession,
    table: Table,
    clears: Sequence[tuple[list[Column[Any]], ColumnElement[bool]]],
    changes: _Changes,
    report: ErasureReport,
) -> None:
    """Set each group's columns to NULL in the rows meeting its condition, in one
    statement: every condition is read from the row as it was (a personal column goes
    with the reference that made the row the subject's), and a row counts once."""
    conn = session.connection
    flags = [case((condition, 1), else_=0) for _, condition in clears]
    where = or_(*(condition for _, condition in clears))
    found = [tuple(r) for r in (await conn.execute(select(table, *flags).where(where)))]
    if not found:
        return
    targets = dict.fromkeys(c for columns, _ in clears for c in columns)
    values = {
        c.name: case((or_(*(w for cs, w in clears if c in cs)), null()), else_=c) for c in targets
    }
    result = await conn.execute(update(table).where(where).values(values))
    _check_count(result.rowcount, len(found), table, session.tenant_id)
    order = list(table.columns)
    width = len(order)
    rows = [row[:width] for row in found]
    written = []
    for row in found:
        met = [columns for (columns, _), flag in zip(clears, row[width:], strict=True) if flag]
        positions = {order.index(c) for columns in met for c in columns}
        for position in positions:
            if row[position] is not None:
                counts = report.cleared.setdefault(table.name, {})
                name = order[position].name
                counts[name] = counts.get(name, 0) + 1
        written.append(_with(row[:width], dict.fromkeys(positions)))
    changes.remove(table, rows)
    changes.write(table, written)
    report.updated[table.name] = report.updated.get(table.name, 0) + len(found)


def _with(row: Sequence[Any], values: Mapping[int, Any]) -> tuple[Any, ...]:
    out = list(row)
    for position, value in values.items():
        out[position] = value
    return tuple(out)


def _check_count(counted: int, expected: int, table: Table, tenant_id: str) -> None:
    if counted != expected:
        raise StorageError(
            f"erasure: {table.name!r} changed while the subject's rows were erased",
            tenant_id=tenant_id,
        )


@dataclass
class _Reached:
    """One table's rows a pseudonymisation rewrites, read before any row is written."""

    table: Table
    rows: list[tuple[Any, ...]]
    id_columns: list[Column[Any]]
    personal: list[Column[Any]]
    #: The rows as rewritten, once they are.
    written: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass
class _Rewriter:
    """The values a pseudonymisation writes: pseudonyms as their column stores them, a
    token of the tenant's data key in a column encrypted whole."""

    pseudonyms: Pseudonymiser
    cipher: data_keys.TenantCipher | None

    def row(self, table: Table, row: Sequence[Any], positions: Sequence[int]) -> tuple[Any, ...]:
        """``row`` with the values at ``positions`` pseudonymised."""
        new = list(self.pseudonyms.row(table, row, positions))
        kinds = encrypted_columns(table)
        for position in positions:
            if kinds.get(position) == "value" and new[position] is not None:
                if self.cipher is None:  # refused before (see _refuse_unencryptable)
                    raise SettingsError(f"table {table.name!r}: TENANCY_SECRET_KEY is not set")
                new[position] = self.cipher.value("value", new[position])
        return tuple(new)


def _refuse_unencryptable(
    metadata: MetaData, mode: ErasureMode, cipher: data_keys.TenantCipher | None, tenant_id: str
) -> None:
    """A :class:`SettingsError` before anything is changed when a pseudonymisation
    would write a personal column encrypted whole without the master key: its pseudonym
    must be a token of the tenant's data key, as the loader stores the column's values."""
    if mode != "pseudonymise" or cipher is not None:
        return
    for table in metadata.sorted_tables:
        kinds = encrypted_columns(table)
        columns = list(table.columns)
        for column in personal_columns(table):
            if kinds.get(columns.index(column)) != "value":
                continue
            raise SettingsError(
                f"pseudonymising writes the encrypted personal column {table.name}."
                f"{column.name}, whose values are tokens of the tenant's data key: "
                "TENANCY_SECRET_KEY must be set (nothing was erased)",
                tenant_id=tenant_id,
            )


def _refuse_repeated_keys(metadata: MetaData, mode: ErasureMode, tenant_id: str) -> None:
    """A :class:`ConfigError` before anything is changed when a pseudonymisation would
    repeat a unique value: the person's row is written again under their pseudonym
    before the old one goes, so a unique key of the subject table holding neither the
    id nor a personal column (rewritten both) would be held twice (and would tell whose
    the row was)."""
    if mode != "pseudonymise":
        return
    id_column = subject_column(metadata)
    home = id_column.table
    assert isinstance(home, Table)
    rewritten = {id_column, *personal_columns(home)}
    for columns in _unique_keys(home):
        if rewritten.isdisjoint(columns):
            names = ", ".join(f"{home.name}.{c.name}" for c in columns)
            raise ConfigError(
                "pseudonymising writes the person's row again under their pseudonym, and "
                f"the unique key ({names}) holds neither the subject id nor a personal "
                "column: the copy would repeat it. Declare such a column personal "
                '(info={"personal": True}), or erase in delete mode (nothing was erased)',
                tenant_id=tenant_id,
                key="personal",
            )


def _unique_keys(table: Table) -> list[list[Column[Any]]]:
    """The column lists of ``table``'s primary key, unique constraints and indexes."""
    keys = [list(table.primary_key.columns)]
    keys += [list(c.columns) for c in table.constraints if isinstance(c, UniqueConstraint)]
    keys += [list(i.columns) for i in table.indexes if i.unique]
    keys += [[c] for c in table.columns if c.unique]
    return [k for k in keys if k]


async def _pseudonymise_rows(
    session: TenantSession,
    tables: Sequence[Table],
    subject: Any,
    changes: _Changes,
    report: ErasureReport,
    cipher: data_keys.TenantCipher | None,
) -> None:
    """Pseudonymise mode: a new subject row under the pseudonym, every reference moved
    to it and personal values replaced, then the old row deleted. Every table's rows are
    read first: a row reached through a parent no longer matches once the parent's
    reference holds the pseudonym."""
    conn = session.connection
    id_column = subject_column(session.metadata)
    pseudonyms = Pseudonymiser(secrets.token_bytes(32))  # never stored: irreversible
    rewriter = _Rewriter(pseudonyms, cipher)
    home = id_column.table
    assert isinstance(home, Table)
    old = [tuple(r) for r in (await conn.execute(select(home).where(id_column == subject)))]
    if not old:
        return
    new_id = await _free_pseudonym(session, id_column, subject, pseudonyms)
    reached = reach(session.metadata, subject)
    found = [await _reached_rows(session, t, subject, reached) for t in tables if t is not home]
    personal = [list(home.columns).index(c) for c in personal_columns(home)]
    referrers = [c for c in subject_id_columns(home, id_column) if c is not id_column]
    moved = [list(home.columns).index(c) for c in [id_column, *referrers]]
    fresh = [
        _with(rewriter.row(home, row, personal), {i: new_id for i in moved if row[i] == subject})
        for row in old
    ]
    names = [c.name for c in home.columns]
    await conn.execute(insert(home), [dict(zip(names, r, strict=True)) for r in fresh])
    if referrers:  # other rows of the subject table holding the id (a manager's)
        found.append(await _home_referrers(session, home, referrers, id_column, subject))
    for rows in found:
        if rows.rows:
            await _move_rows(session, rows, subject, new_id, rewriter, changes, report)
    await conn.execute(delete(home).where(id_column == subject))
    changes.remove(home, old)
    changes.write(home, fresh)
    report.updated[home.name] = report.updated.get(home.name, 0) + len(old)
    await _check_rewritten(session, new_id, found, home)


async def _home_referrers(
    session: TenantSession,
    home: Table,
    referrers: Sequence[Column[Any]],
    id_column: Column[Any],
    subject: Any,
) -> _Reached:
    """The other rows of the subject table whose ``referrers`` hold the subject's id:
    moved to the pseudonym before the subject's row goes."""
    holding = or_(*(c == subject for c in referrers))
    query = select(home).where(holding, id_column != subject)
    rows = [tuple(r) for r in await session.connection.execute(query)]
    return _Reached(home, rows, list(referrers), [])


async def _free_pseudonym(
    session: TenantSession, id_column: Column[Any], subject: Any, pseudonyms: Pseudonymiser
) -> Any:
    """The subject's pseudonym, walked on past another person's id (a narrow integer id
    may be taken)."""
    new_id = pseudonyms.value(id_column, subject)
    for _ in range(64):
        query = select(id_column).where(id_column == new_id).limit(1)
        if (await session.connection.execute(query)).first() is None:
            break
        new_id = pseudonyms.value(id_column, new_id)
    return new_id


async def _reached_rows(
    session: TenantSession,
    table: Table,
    subject: Any,
    reached: Mapping[str, ColumnElement[bool]],
) -> _Reached:
    """The rows of ``table`` a pseudonymisation rewrites: those holding the subject's id,
    and those reaching the subject when the table has personal columns."""
    id_columns = subject_id_columns(table, subject_column(session.metadata))
    personal = personal_columns(table) if table.name in reached else []
    terms = [c == subject for c in id_columns]
    if personal:
        terms.append(reached[table.name])
    if not terms:
        return _Reached(table, [], id_columns, personal)
    result = await session.connection.execute(select(table).where(or_(*terms)))
    return _Reached(table, [tuple(r) for r in result], id_columns, personal)


async def _move_rows(
    session: TenantSession,
    found: _Reached,
    subject: Any,
    new_id: Any,
    rewriter: _Rewriter,
    changes: _Changes,
    report: ErasureReport,
) -> None:
    """One table of a pseudonymisation: personal values of the rows read replaced (row
    by row, by primary key), then the subject's id replaced where it is held."""
    table, rows = found.table, found.rows
    columns = list(table.columns)
    positions = [columns.index(c) for c in found.personal]
    replaced = [rewriter.row(table, row, positions) for row in rows]
    if positions:
        await _update_by_key(session, table, rows, replaced, positions)
    for column in found.id_columns:
        await session.connection.execute(
            update(table).where(column == subject).values({column.name: new_id})
        )
    moved = [columns.index(c) for c in found.id_columns]
    new_rows = [
        _with(new, {i: new_id for i in moved if row[i] == subject})
        for row, new in zip(rows, replaced, strict=True)
    ]
    found.written = new_rows
    changes.remove(table, rows)
    changes.write(table, new_rows)
    report.updated[table.name] = len(rows)


async def _check_rewritten(
    session: TenantSession, new_id: Any, found: Sequence[_Reached], home: Table
) -> None:
    """A :class:`StorageError` (the transaction rolls back) when a row with personal
    columns reaches the pseudonym but was not rewritten: its values would stay in clear,
    tied to the subject's rows, where nothing could find them afterwards."""
    reached = reach(session.metadata, new_id)
    rewritten = {r.table.name: r.written for r in found}
    for table in session.metadata.sorted_tables:
        if table is home or table.name not in reached or not personal_columns(table):
            continue
        missed = await _missed(session, table, reached[table.name], rewritten.get(table.name))
        if missed:
            raise StorageError(
                f"erasure: {missed} row(s) of {table.name!r} reach the subject's pseudonym "
                "but their personal columns were not rewritten; nothing was erased",
                tenant_id=session.tenant_id,
            )


async def _missed(
    session: TenantSession,
    table: Table,
    condition: ColumnElement[bool],
    written: Sequence[tuple[Any, ...]] | None,
) -> int:
    """How many rows of ``table`` meeting ``condition`` are not among ``written`` (by
    primary key; a table without one has no row rewritten)."""
    keys = list(table.primary_key.columns)
    if not keys:
        query = select(func.count()).select_from(table).where(condition)
        return int((await session.connection.execute(query)).scalar_one())
    now = {tuple(r) for r in await session.connection.execute(select(*keys).where(condition))}
    positions = [list(table.columns).index(k) for k in keys]
    done = {tuple(row[p] for p in positions) for row in written or ()}
    return len(now - done)


async def _update_by_key(
    session: TenantSession,
    table: Table,
    rows: Sequence[tuple[Any, ...]],
    replaced: Sequence[tuple[Any, ...]],
    positions: Sequence[int],
) -> None:
    """Write the values at ``positions`` of ``replaced`` over ``rows`` (by primary key)."""
    keys = list(table.primary_key.columns)
    if not keys:
        raise ConfigError(
            f"table {table.name!r} holds personal columns but has no primary key to "
            "pseudonymise a row by",
            key="personal",
        )
    columns = list(table.columns)
    statement = (
        update(table)
        .where(and_(*(k == bindparam(f"k_{i}") for i, k in enumerate(keys))))
        .values({columns[p].name: bindparam(f"v_{p}") for p in positions})
    )
    params = []
    for row, new in zip(rows, replaced, strict=True):
        entry = {f"k_{i}": row[columns.index(k)] for i, k in enumerate(keys)}
        entry.update({f"v_{p}": new[p] for p in positions})
        params.append(entry)
    result = await session.connection.execute(statement, params)
    if result.rowcount not in (-1, len(rows)):
        _check_count(result.rowcount, len(rows), table, session.tenant_id)


async def _refresh_derived(
    session: TenantSession, changes: _Changes, report: ErasureReport
) -> None:
    """Recompute the derived tables for the parts the changed source rows touched,
    noting each derived table's content before and after."""
    for derivation in DERIVATIONS:
        if derivation.source not in changes.removed:
            continue
        parts = changes.parts.get(derivation.source)
        targets = [session.metadata.tables[t] for t in _qualified(session, derivation.tables)]
        before = [await _content(session, t) for t in targets]
        refreshed = await derivation.refresh(session, parts)
        for table, content in zip(targets, before, strict=True):
            changes.removed[table.name] = content
            changes.written[table.name] = await _content(session, table)
        for name, rows in refreshed.items():
            report.refreshed[name] = report.refreshed.get(name, 0) + rows


def _qualified(session: TenantSession, names: Sequence[str]) -> list[str]:
    by_name = {t.name: key for key, t in session.metadata.tables.items()}
    return [by_name[n] for n in names if n in by_name]


async def _content(session: TenantSession, table: Table) -> ContentChecksum:
    content = table_checksum(table)
    result = await session.connection.stream(select(table).execution_options(yield_per=1000))
    async for partition in result.partitions():
        content.add([tuple(r) for r in partition])
    return content


async def _record_writes(session: TenantSession, changes: _Changes, run_id: str) -> str:
    """Record the erasure in the table-write history (tables with a recorded history
    only: a table no fixture wrote is not compared anyway); returns the digest."""
    conn = session.connection
    recorded = changes.covered.keys()
    entries: list[control_plane.TableChecksum] = []
    digest = hashlib.sha256()
    for name, removed in sorted(changes.removed.items()):
        digest.update(f"{name}:{removed.rows}:{removed.hexdigest()}\n".encode())
        if name not in recorded:
            continue
        entries.append(
            control_plane.TableChecksum(
                name,
                "purge",
                removed.rows,
                f"{-removed.total & _MASK:016x}",
                0,
                columns=removed.columns,
            )
        )
        written = changes.written.get(name)
        if written is not None and written.rows:
            entries.append(
                control_plane.TableChecksum(
                    name,
                    "insert",
                    written.rows,
                    written.hexdigest(),
                    written.rows,
                    columns=written.columns,
                )
            )
    await control_plane.record_table_checksums(
        conn, session.tenant_id, fixture=ERASURE_FIXTURE, run_id=run_id, checksums=entries
    )
    return digest.hexdigest()


async def known_fingerprints(
    conn: AsyncConnection, tenant_id: str, subject: Any, data_key: bytes | None
) -> tuple[Fingerprints, int]:
    """The fingerprints earlier erasure receipts kept of ``subject`` (under the salt of
    the first, which later erasures of the subject reuse), and how many receipts erased
    something; fresh ones holding the subject's id when there is none."""
    a = control_plane.audit_table
    found = await conn.execute(
        select(a.c.detail)
        .where(a.c.tenant_id == tenant_id, a.c.action == RECEIPT, a.c.outcome == "ok")
        .order_by(a.c.audit_id)
    )
    marks: Fingerprints | None = None
    receipts = 0
    for row in found:
        detail = dict(row.detail)
        theirs = _receipt_marks(detail, subject, data_key, marks)
        if theirs is not None:
            receipts += _erased_any(detail)
            marks = theirs
            marks.digests.update(str(d) for d in detail.get("fingerprints", ()))
    marks = marks or Fingerprints.new(data_key)
    marks.add([subject])
    return marks, receipts


async def data_keyed_receipts(conn: AsyncConnection, tenant_id: str) -> int:
    """How many of the tenant's erasure receipts keep fingerprints keyed by its data key:
    without the master key, nothing can tell whose they are."""
    a = control_plane.audit_table
    found = await conn.execute(
        select(a.c.detail).where(
            a.c.tenant_id == tenant_id, a.c.action == RECEIPT, a.c.outcome == "ok"
        )
    )
    named = [dict(row.detail).get("subject") for row in found]
    return sum(isinstance(n, dict) and n.get(_KEY_KIND) == "data" for n in named)


def _receipt_marks(
    detail: Mapping[str, Any], subject: Any, data_key: bytes | None, marks: Fingerprints | None
) -> Fingerprints | None:
    """The fingerprints of the receipt ``detail`` if it names ``subject`` (under the
    salt of ``marks`` when the subject already has some). The receipt says whether its
    key came from a data key or from the salt alone; one from before it said so is
    tried both ways, so a master key set after an erasure still finds it."""
    named = detail.get("subject")
    if not isinstance(named, dict) or not isinstance(named.get("salt"), str):
        return None
    if marks is not None:
        same = named["salt"] == marks.salt and marks.of(subject) == named.get("fingerprint")
        return marks if same else None
    kind = named.get(_KEY_KIND)
    keys: list[bytes | None] = [data_key] if data_key is not None and kind != "salt" else []
    keys += [None] if kind != "data" else []
    for key in keys:
        try:
            theirs = Fingerprints.new(key, salt=named["salt"])
        except ValueError:  # not a hex salt: not a receipt this code wrote
            return None
        if theirs.of(subject) == named.get("fingerprint"):
            return theirs
    return None


def _erased_any(detail: Mapping[str, Any]) -> bool:
    """Whether a receipt records something erased: an id that matched nothing once got
    a receipt of nothing, which proves no erasure."""
    counts = [*dict(detail.get("deleted") or {}).values()]
    counts += [*dict(detail.get("updated") or {}).values()]
    counts += [detail.get("audit_records"), detail.get("reject_lines")]
    return any(isinstance(n, int) and n > 0 for n in counts)


async def _fingerprints(
    session: TenantSession, subject: Any, data_key: bytes | None
) -> tuple[Fingerprints, int]:
    """The subject's id and their own row's personal values, fingerprinted (with what
    earlier receipts of the subject kept), and how many receipts erased something."""
    marks, receipts = await known_fingerprints(
        session.connection, session.tenant_id, subject, data_key
    )
    id_column = subject_column(session.metadata)
    home = id_column.table
    assert isinstance(home, Table)
    for row in await session.connection.execute(select(home).where(id_column == subject)):
        marks.add(personal_values(home, tuple(row), id_column))
    return marks, receipts


async def _refused_values(
    session: TenantSession, subject: Any, records: Sequence[Mapping[str, Any]]
) -> list[Any]:
    """The identifying values of the subject's refused records of their own table (the
    e-mail a lenient load set aside), so that where the refusal quoted them is scrubbed
    too; a value another person's row holds (an e-mail refused as taken) is theirs and
    left out."""
    id_column = subject_column(session.metadata)
    home = id_column.table
    assert isinstance(home, Table)
    values: list[Any] = []
    for document in records:
        if document.get("table") != home.name:
            continue
        for column in identifying_columns(home, id_column):
            value = document["record"].get(column.name)
            if value is None or await _held_by_another(session, column, value, subject):
                continue
            values.append(value)
    return values


async def _held_by_another(
    session: TenantSession, column: Column[Any], value: Any, subject: Any
) -> bool:
    """Whether a row of another subject holds ``value`` in ``column``."""
    try:
        typed = column_value(column, value)
    except (ValueError, TypeError):
        return False  # no row can hold it
    id_column = subject_column(session.metadata)
    query = select(id_column).where(column == typed, id_column != subject).limit(1)
    return (await session.connection.execute(query)).first() is not None


def _refuse_unknown(
    report: ErasureReport, records: int, receipts: int, session: TenantSession
) -> None:
    """A :class:`SubjectNotFoundError` when nothing is the subject's (no row reaches
    them, no reject line is a record of theirs) and no earlier erasure of them is on
    record: the id is likely wrong, and a receipt would claim an erasure that never
    happened. Raised before anything is scrubbed: an audit detail or reject line that
    merely holds the same word is no evidence that the id is a person's."""
    if report.total or records or receipts:
        return
    column = subject_column(session.metadata)
    raise SubjectNotFoundError(
        f"no row of {column.table.name}.{column.name} holds that subject id, nothing "
        "refers to it, no reject line is a record of it, and no erasure of it is on "
        "record: check the id (compared exactly, letter case included); nothing was "
        "erased",
        tenant_id=session.tenant_id,
        column=f"{column.table.name}.{column.name}",
    )


def tenant_reject_files(directory: Path, names: RejectNames) -> list[Path]:
    """The tenant's reject files in ``directory`` (the reject directory) that ``names``
    owns, and those its loads recorded writing."""
    own = reject_files(directory, names, partial=False)
    return sorted({*own, *recorded_files(names.recorded)})


def subject_records(
    paths: Sequence[Path], metadata: MetaData, subject: Any
) -> list[dict[str, Any]]:
    """The lines of the reject files ``paths`` that are the subject's records (see
    :func:`~tenancy_fixtures.compliance.subjects.belongs_to`)."""
    found: list[dict[str, Any]] = []
    for path in paths:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                document = _document(line)
                if isinstance(document, dict) and _owned(document, metadata, subject):
                    found.append(document)
    return found


def scrub_reject_files(
    paths: Sequence[Path], marks: Fingerprints, metadata: MetaData, subject: Any
) -> int:
    """Remove the lines of the reject files ``paths`` that hold a fingerprinted value or
    are a record of the subject; returns how many went. Each file is rewritten whole
    and renamed into place."""
    removed = 0
    for path in paths:
        kept: list[str] = []
        dropped = 0
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line_holds(line, marks, metadata, subject):
                    dropped += 1
                else:
                    kept.append(line)
        if not dropped:
            continue
        removed += dropped
        if not kept:
            path.unlink()
            continue
        partial = path.with_name(path.name + ".scrub")
        partial.write_text("".join(kept), encoding="utf-8")
        os.replace(partial, path)
    return removed


def line_holds(line: str, marks: Fingerprints, metadata: MetaData, subject: Any) -> bool:
    """Whether a reject file's ``line`` is the subject's: a record of theirs (their id
    in an id or reference column, whatever its shape), or a fingerprinted value among
    its strings (the message quoting a refused e-mail). The line's own numbers
    (``"line": 3``) and keys are not read as ids."""
    document = _document(line)
    if isinstance(document, dict) and _owned(document, metadata, subject):
        return True
    return marks.found_in(document)


def _document(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return line


def _owned(document: Mapping[str, Any], metadata: MetaData, subject: Any) -> bool:
    """A record of the subject's, by what it holds or by what its format's options gave
    its row (``"implied"``: the listener of a history export)."""
    table = document.get("table")
    return belongs_to(metadata, subject, table, document.get("record")) or belongs_to(
        metadata, subject, table, document.get("implied")
    )


async def _keys(
    store: TenantStore, tenant_id: str
) -> tuple[bytes | None, data_keys.TenantCipher | None]:
    """The tenant's data key and cipher; none without a master key."""
    async with store.control() as conn:
        if await control_plane.get_tenant(conn, tenant_id) is None:
            raise TenantNotFoundError(tenant_id)
        key = store.settings.secret_key
        if key is None:
            return None, None
        cipher = await data_keys.tenant_cipher(conn, tenant_id, key)
        return cipher.data_key, cipher


async def _forget_cached(
    store: TenantStore, tenant_id: str, cache: ConfigCache | None, marks: Fingerprints
) -> int:
    if cache is None:
        return 0
    async with store.control(readonly=True) as conn:
        plane = await control_plane.plane_id(conn)
    cached = None if plane is None else await cache.get(plane, tenant_id)
    if plane is None or cached is None or not marks.found_in(cached.value):
        return 0
    return int(await cache.forget(plane, tenant_id))


def _refuse_without_audit(store: TenantStore, tenant_id: str) -> None:
    """An erasure needs the audit log: its receipt (``data.erase``) is the only proof
    that it happened, and what ``verify_erasure`` recognises the subject's values by."""
    if not store.settings.audit_logging:
        raise ConfigError(
            "an erasure needs the audit log for its receipt, and TENANCY_AUDIT_LOGGING is "
            "false: set it to true to erase a subject (nothing was changed)",
            tenant_id=tenant_id,
            key="TENANCY_AUDIT_LOGGING",
        )


# shape: one erasure's steps in order, in one transaction
async def erase_subject(
    store: TenantStore,
    tenant_id: str,
    subject: str,
    *,
    actor: str,
    mode: ErasureMode = "delete",
    cache: ConfigCache | None = None,
    reject_dir: Path | None = None,
) -> ErasureReport:
    """Erase ``subject``'s personal data from ``tenant_id`` (see the module docstring);
    returns what was erased. The receipt in the audit chain names the subject by a
    keyed fingerprint only."""
    validate_tenant_id(tenant_id)
    if mode not in ("delete", "pseudonymise"):
        raise ConfigError(f"unknown erasure mode {mode!r}: delete or pseudonymise", key="mode")
    _refuse_without_audit(store, tenant_id)
    await store.initialize()
    subject = typed_subject(store.metadata, subject)
    data_key, cipher = await _keys(store, tenant_id)
    _refuse_unencryptable(store.metadata, mode, cipher, tenant_id)
    _refuse_repeated_keys(store.metadata, mode, tenant_id)
    report = ErasureReport(tenant_id, mode)
    async with audited(store, actor=actor, action="data.erase", tenant_id=tenant_id) as audit:
        report.run_id = audit.run_id
        async with store.session(tenant_id) as session:
            tables = session.metadata.sorted_tables
            marks, receipts = await _fingerprints(session, subject, data_key)
            # Before reading what was recorded: a load committing after the read would
            # leave the erasure's checksums describing another history.
            if not await control_plane.lock_tenant(session.connection, tenant_id):
                raise TenantNotFoundError(tenant_id)
            # Its tables are rewritten as the schema declares them: behind the head, they
            # differ (a load refuses such a tenant too).
            await migration_ledger.refuse_outdated(session.connection, tenant_id, store.history)
            writes = await control_plane.table_checksums(session.connection, tenant_id)
            changes = _Changes(control_plane.covered_columns(writes))
            if mode == "delete":
                await _delete_rows(session, tables, subject, changes, report)
            else:
                await _pseudonymise_rows(session, tables, subject, changes, report, cipher)
            await _refresh_derived(session, changes, report)
            report.digest = await _record_writes(session, changes, audit.run_id)
            names = await control_plane.reject_names(session.connection, tenant_id)
            paths = tenant_reject_files(Path(reject_dir or store.settings.reject_dir), names)
            records = subject_records(paths, session.metadata, subject)
            _refuse_unknown(report, len(records), receipts, session)
            marks.add(await _refused_values(session, subject, records))
            report.audit_records = await control_plane.erase_audit_detail(
                session.connection,
                tenant_id,
                actor=actor,
                run_id=audit.run_id,
                only=marks.found_in,
                keep=(RECEIPT,),
            )
            report.reject_lines = scrub_reject_files(paths, marks, session.metadata, subject)
            await audit.record(session.connection, detail=_receipt(report, marks, subject))
    report.cache_keys = await _forget_cached(store, tenant_id, cache, marks)
    log.info("subject_erased", tenant_id=tenant_id, run_id=report.run_id, rows=report.total)
    return report


def _receipt(report: ErasureReport, marks: Fingerprints, subject: Any) -> dict[str, Any]:
    """The erasure receipt: what went, never the values (fingerprints under a salt)."""
    receipt = {k: v for k, v in report.as_dict().items() if k not in ("tenant_id", "run_id")}
    receipt.pop("cache_keys")
    receipt["subject"] = {
        "salt": marks.salt,
        "fingerprint": marks.of(subject),
        _KEY_KIND: "data" if marks.keyed else "salt",
    }
    receipt["fingerprints"] = sorted(marks.digests)
    return receipt
