"""``erase --verify``: prove that nothing of an erased subject is left in a tenant.

The subject's values are recognised by the fingerprints their erasure receipts keep
(see :mod:`tenancy_fixtures.compliance.erasure`); without a receipt, by their id alone,
and the check is not ``ok`` however little it finds: no erasure of the id is on record
(a mistyped id finds nothing too). Receipts keyed by the tenant's data key are read
with the master key only: without ``TENANCY_SECRET_KEY`` and with such receipts, the
check is refused (:class:`SettingsError`) rather than say none is of the id.
Places looked at:

* tables: rows a declared subject reference still connects to the subject, and any
  personal, id or reference column holding one of the values (a column encrypted
  whole by the values its tokens decrypt to: without ``TENANCY_SECRET_KEY`` they are
  unread, which ``checked`` says);
* reject files of the tenant (``<reject_dir>/<tenant>-<plane>-*.jsonl``, named for this
  database's control plane, and those its loads recorded writing);
* the tenant's audit details (erasure receipts and tombstones aside: digests and
  counts only; a failed erasure's record is read like any other);
* the tenant's config, stored and cached (Redis, when the cache is there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Table, func, select

from tenancy_fixtures.compliance.erasure import (
    RECEIPT,
    data_keyed_receipts,
    known_fingerprints,
    line_holds,
    tenant_reject_files,
)
from tenancy_fixtures.compliance.subjects import Fingerprints, reach, typed_subject
from tenancy_fixtures.errors import ConfigError, SettingsError, TenantNotFoundError
from tenancy_fixtures.ids import validate_tenant_id
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.store.audit_chain import TOMBSTONE
from tenancy_fixtures.store.base import TenantSession, TenantStore
from tenancy_fixtures.store.column_info import (
    encrypted_columns,
    personal_columns,
    subject_columns,
)
from tenancy_fixtures.store.control_plane import RejectNames
from tenancy_fixtures.tenancy import data_keys
from tenancy_fixtures.tenancy.config_cache import ConfigCache

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["ErasureCheck", "verify_erasure"]

_PAGE = 1000


@dataclass
class ErasureCheck:
    """What :func:`verify_erasure` found: each remnant, said in words without values."""

    tenant_id: str
    receipts: int
    remnants: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def on_record(self) -> bool:
        """Whether a receipt records an erasure of the subject."""
        return self.receipts > 0

    @property
    def ok(self) -> bool:
        """An erasure of the subject is on record and nothing of them is left."""
        return self.on_record and not self.remnants

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "ok": self.ok,
            "on_record": self.on_record,
            "receipts": self.receipts,
            "remnants": list(self.remnants),
            "checked": list(self.checked),
        }


@dataclass
class _Marks:
    """What the check recognises the subject's values by, and the tenant's cipher to
    read encrypted columns with (none without a master key)."""

    fingerprints: Fingerprints
    receipts: int
    cipher: data_keys.TenantCipher | None


async def _marks(store: TenantStore, tenant_id: str, subject: Any) -> _Marks:
    async with store.control() as conn:
        if await control_plane.get_tenant(conn, tenant_id) is None:
            raise TenantNotFoundError(tenant_id)
        key = store.settings.secret_key
        cipher = None if key is None else await data_keys.tenant_cipher(conn, tenant_id, key)
        data_key = None if cipher is None else cipher.data_key
        marks, receipts = await known_fingerprints(conn, tenant_id, subject, data_key)
        if not receipts and key is None:
            await _refuse_unread(conn, tenant_id)
        return _Marks(marks, receipts, cipher)


async def _refuse_unread(conn: AsyncConnection, tenant_id: str) -> None:
    """A :class:`SettingsError` when receipts keyed by the tenant's data key may be of
    the subject, and no master key is set to read them: "no erasure of this id is on
    record" would be a guess."""
    unread = await data_keyed_receipts(conn, tenant_id)
    if unread:
        raise SettingsError(
            f"{unread} erasure receipt(s) of the tenant keep fingerprints keyed by its data "
            "key, which TENANCY_SECRET_KEY unwraps, and it is not set: set it to tell "
            "whether one of them is of this id (nothing was checked)",
            tenant_id=tenant_id,
        )


def _checked_columns(table: Table) -> list[Column[Any]]:
    """The columns of ``table`` that hold subject data: personal, id and reference."""
    return [
        *personal_columns(table),
        *subject_columns(table, "id"),
        *subject_columns(table, "reference"),
    ]


def _encrypted_whole(table: Table, columns: Sequence[Column[Any]]) -> set[int]:
    """The positions in ``columns`` of ``table``'s columns encrypted whole."""
    kinds = encrypted_columns(table)
    order = list(table.columns)
    return {i for i, c in enumerate(columns) if kinds.get(order.index(c)) == "value"}


async def _tables(session: TenantSession, subject: Any, marks: _Marks, check: ErasureCheck) -> None:
    conditions = reach(session.metadata, subject)
    unread = False
    for table in session.metadata.sorted_tables:
        if table.name in conditions:
            count = select(func.count()).select_from(table).where(conditions[table.name])
            rows = int((await session.connection.execute(count)).scalar_one())
            if rows:
                check.remnants.append(f"table {table.name}: {rows} row(s) still reach the subject")
        await _columns(session, table, marks, check)
        unread |= bool(_encrypted_whole(table, _checked_columns(table)))
    if unread and marks.cipher is None:
        check.checked.append(
            "tables (the values of encrypted columns unread: TENANCY_SECRET_KEY is not set)"
        )
    else:
        check.checked.append("tables")


def _readable(cipher: data_keys.TenantCipher | None, value: Any) -> Any:
    """The value a token of a column encrypted whole holds; the token itself without a
    cipher, or when it does not decrypt (no key opens it: nothing is left to read)."""
    if cipher is None or not isinstance(value, str):
        return value
    try:
        return cipher.decrypt(value)
    except ConfigError:
        return value


async def _columns(
    session: TenantSession, table: Table, marks: _Marks, check: ErasureCheck
) -> None:
    columns = _checked_columns(table)
    if not columns:
        return
    encrypted = _encrypted_whole(table, columns)
    found = marks.fingerprints
    result = await session.connection.stream(select(*columns).execution_options(yield_per=_PAGE))
    hits = dict.fromkeys((c.name for c in columns), 0)
    async for partition in result.partitions():
        for row in partition:
            for i, (column, value) in enumerate(zip(columns, row, strict=True)):
                shown = _readable(marks.cipher, value) if i in encrypted else value
                if found.holds(shown) or found.found_in(shown):
                    hits[column.name] += 1
    for name, count in hits.items():
        if count:
            check.remnants.append(
                f"table {table.name}, column {name}: {count} value(s) of the subject"
            )


def _reject_files(
    session: TenantSession,
    subject: Any,
    directory: Path,
    names: RejectNames,
    marks: Fingerprints,
    check: ErasureCheck,
) -> None:
    for path in tenant_reject_files(directory, names):
        hits = 0
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                hits += line_holds(line, marks, session.metadata, subject)
        if hits:
            check.remnants.append(f"reject file {path}: {hits} record(s) of the subject")
    recorded = len(names.recorded)
    elsewhere = f" and the {recorded} its loads recorded" if recorded else ""
    check.checked.append(f"reject files in {directory}{elsewhere}")


def _proof(action: str, outcome: str) -> bool:
    """Whether a record is an erasure's proof, digests and counts only: a receipt (a
    succeeded erasure: a failed one's message may quote what it read) or a tombstone."""
    return action == TOMBSTONE or (action == RECEIPT and outcome == "ok")


async def _audit(
    store: TenantStore, tenant_id: str, marks: Fingerprints, check: ErasureCheck
) -> None:
    a = control_plane.audit_table
    last = 0
    hits: list[int] = []
    async with store.control(readonly=True) as conn:
        while True:
            page = (
                await conn.execute(
                    select(a.c.audit_id, a.c.action, a.c.outcome, a.c.detail)
                    .where(a.c.tenant_id == tenant_id, a.c.audit_id > last)
                    .order_by(a.c.audit_id)
                    .limit(_PAGE)
                )
            ).all()
            for row in page:
                if not _proof(row.action, row.outcome) and marks.found_in(dict(row.detail)):
                    hits.append(int(row.audit_id))
            if len(page) < _PAGE:
                break
            last = page[-1].audit_id
    if hits:
        shown = ", ".join(map(str, hits[:10])) + (" ..." if len(hits) > 10 else "")
        check.remnants.append(f"audit details: {len(hits)} record(s) of the subject (ids {shown})")
    check.checked.append("audit details")


async def _config(
    store: TenantStore,
    tenant_id: str,
    marks: Fingerprints,
    cache: ConfigCache | None,
    check: ErasureCheck,
) -> None:
    async with store.control(readonly=True) as conn:
        stored = await control_plane.load_config(conn, tenant_id)
        plane = await control_plane.plane_id(conn)
    if stored is not None and marks.found_in(stored):
        check.remnants.append("the tenant's stored config holds a value of the subject")
    check.checked.append("config")
    if cache is None or plane is None:
        return
    cached = await cache.get(plane, tenant_id)
    if cached is not None and marks.found_in(cached.value):
        check.remnants.append("the tenant's cached config holds a value of the subject")
    check.checked.append("config cache")


async def verify_erasure(
    store: TenantStore,
    tenant_id: str,
    subject: str,
    *,
    cache: ConfigCache | None = None,
    reject_dir: Path | None = None,
) -> ErasureCheck:
    """Look for anything left of ``subject`` in ``tenant_id`` (see the module
    docstring); the check lists each remnant found."""
    validate_tenant_id(tenant_id)
    await store.initialize()
    subject = typed_subject(store.metadata, subject)
    known = await _marks(store, tenant_id, subject)
    marks = known.fingerprints
    check = ErasureCheck(tenant_id, known.receipts)
    async with store.session(tenant_id, readonly=True) as session:
        await _tables(session, subject, known, check)
        names = await control_plane.reject_names(session.connection, tenant_id)
        directory = Path(reject_dir or store.settings.reject_dir)
        _reject_files(session, subject, directory, names, marks, check)
    await _audit(store, tenant_id, marks, check)
    await _config(store, tenant_id, marks, cache, check)
    return check
