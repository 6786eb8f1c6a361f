"""Export a tenant's data, or one person's, as a portable fixture set (GDPR access and
portability).

The archive is a fixture set: one ``<table>.jsonl`` a table holding rows, and a
``fixtures.json`` manifest listing them with their row counts and content checksums
(the loader's, :class:`~tenancy_fixtures.loading.checksums.ContentChecksum`), so
``load-fixtures NEW --source OUT`` loads it and ``validate-data NEW`` compares the
reload with what was exported. ``OUT`` ending in ``.tar.gz`` gets the directory packed.

Rows are read a batch at a time from one read-only transaction and written as they
come: memory does not grow with a table. The export is written under a name of its
own, ``.<out>.<random>.partial`` (never a file of the user's), and takes its name only
when complete; the next export to ``out`` removes what a killed one left.

* Derived tables (the daily aggregates) are exported as rows in a whole-tenant export:
  the plain loader takes them as given, so a reload holds the same aggregates. A
  subject's export leaves them out: they are counts over everyone, no one's data.
* Encrypted columns: a credential reference's token is re-encrypted with the master key
  (the form the loader takes, which stores it under the new tenant's own data key);
  a column encrypted whole is exported decrypted (the archive is then as sensitive as
  the data: protect it so). Both need ``TENANCY_SECRET_KEY``: without it, an export of
  rows holding tokens of a tenant's data key is refused (:class:`SettingsError`) before
  anything is written, as those tokens would open with the source tenant's key alone.
* ``subject``: only the rows that reach that person through the schema's declared
  subject references (see :mod:`tenancy_fixtures.compliance.subjects`). Rows of other
  tables they refer to (the catalogue) are not included. An id no row reaches is a
  :class:`SubjectNotFoundError`: nothing is written.
* ``pseudonymise``: personal columns, subject ids and references become keyed HMACs
  (:mod:`tenancy_fixtures.compliance.pseudonyms`). The key is derived from the tenant's
  data key and a random salt kept in the manifest: stable within one export (joins
  hold), different in every export (two exports cannot be linked), reproducible by the
  operator holding the tenant's key (it is pseudonymisation, not anonymisation), and
  destroyed with the tenant. Without a master key there is no data key: the key is
  then random and forgotten after the export.

Exports need the tenant's ``data_export`` feature (:class:`FeatureDisabledError`
otherwise) and are audited (``data.export``) with counts and the manifest's digest;
a subject is named in the audit record by a keyed fingerprint only.
"""

from __future__ import annotations

import enum
import errno
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import IO, Any

import orjson
from sqlalchemy import DateTime, Float, Table, select
from sqlalchemy.sql.elements import ColumnElement

from tenancy_fixtures.compliance.pseudonyms import Pseudonymiser, pseudonymised_columns
from tenancy_fixtures.compliance.subjects import (
    Fingerprints,
    derive_key,
    reach,
    subject_column,
    typed_subject,
)
from tenancy_fixtures.errors import (
    DestinationExistsError,
    FeatureDisabledError,
    RecordError,
    SettingsError,
    StorageError,
    SubjectNotFoundError,
    TenantNotFoundError,
)
from tenancy_fixtures.file_locks import held, is_free
from tenancy_fixtures.ids import validate_tenant_id
from tenancy_fixtures.loading.derived import derived_tables
from tenancy_fixtures.loading.table_checksums import enum_members, enum_stored_text, table_checksum
from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.secret_keys import fernet_for
from tenancy_fixtures.store import control_plane, migration_ledger
from tenancy_fixtures.store.base import TenantSession, TenantStore
from tenancy_fixtures.store.column_info import EncryptedKind, encrypted_columns
from tenancy_fixtures.tenancy import data_keys
from tenancy_fixtures.tenancy.audit import audited

__all__ = ["EXPORT_FEATURE", "ExportReport", "export_tenant"]

log = get_logger("tenancy_fixtures.compliance.export")

EXPORT_FEATURE = "data_export"
_FETCH_ROWS = 1000
#: Naive timestamps stay naive: those of zoned columns are made aware first.
_JSON_OPTIONS = orjson.OPT_APPEND_NEWLINE


@dataclass
class ExportReport:
    """What an export wrote: rows and content checksum per table, where, how."""

    tenant_id: str
    path: Path
    subject: bool
    pseudonymised: bool
    rows: dict[str, int] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)
    manifest_sha256: str = ""

    @property
    def total(self) -> int:
        return sum(self.rows.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "path": str(self.path),
            "subject": self.subject,
            "pseudonymised": self.pseudonymised,
            "rows": dict(self.rows),
            "checksums": dict(self.checksums),
            "manifest_sha256": self.manifest_sha256,
        }


def _default(value: Any) -> Any:
    return str(value)


def _exact_default(value: Any) -> Any:
    """What :func:`_default` and orjson's own encoders make of a value :mod:`json` does
    not know (a timestamp in ISO form, as orjson writes it)."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def _line(record: dict[str, Any]) -> bytes:
    """One JSON Lines record. A JSON document holding an integer beyond 64 bits, which
    orjson refuses, is written by :mod:`json`, which keeps it whole (as the loader reads
    it)."""
    try:
        return orjson.dumps(record, default=_default, option=_JSON_OPTIONS)
    except orjson.JSONEncodeError:
        text = json.dumps(record, default=_exact_default, ensure_ascii=False, allow_nan=False)
        return text.encode() + b"\n"


def _aware(value: Any) -> Any:
    return (
        value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value
    )


def _zoned_positions(table: Table) -> list[int]:
    """The columns holding timestamps with a time zone, which SQLite reads back naive
    (in UTC): they are written with their offset. A column without one keeps none (its
    loader refuses an offset)."""
    return [
        i for i, c in enumerate(table.columns) if isinstance(c.type, DateTime) and c.type.timezone
    ]


class _Secrets:
    """What the export needs of the tenant's keys: the data key (if any) and how to
    write encrypted values."""

    def __init__(self, cipher: data_keys.TenantCipher | None, master: Any, data_key: bytes | None):
        self.cipher = cipher
        self.master = master
        self.data_key = data_key

    def writer(self, table: Table) -> Callable[[list[Any]], None] | None:
        kinds = encrypted_columns(table)
        if not kinds or self.cipher is None:
            return None
        cipher, master = self.cipher, self.master

        def decrypt(values: list[Any]) -> None:
            for i, kind in kinds.items():
                value = values[i]
                if value is None:
                    continue
                if kind == "value":
                    values[i] = cipher.decrypt(value)
                elif isinstance(value, dict) and isinstance(value.get("encrypted"), str):
                    plain = cipher.decrypt(value["encrypted"])
                    token = master.encrypt(plain.encode()).decode("ascii")
                    values[i] = {**value, "encrypted": token}

        return decrypt


async def _check_feature(store: TenantStore, tenant_id: str) -> None:
    async with store.control(readonly=True) as conn:
        if await control_plane.get_tenant(conn, tenant_id) is None:
            raise TenantNotFoundError(tenant_id)
        # Its tables are read as the schema declares them: behind the head, they differ.
        await migration_ledger.refuse_outdated(conn, tenant_id, store.history)
        config = await control_plane.load_config(conn, tenant_id) or {}
    if EXPORT_FEATURE not in (config.get("features") or ()):
        raise FeatureDisabledError(tenant_id, EXPORT_FEATURE, "an export")


async def _secrets(store: TenantStore, tenant_id: str, subject: Any) -> _Secrets:
    key = store.settings.secret_key
    if key is None:
        await _refuse_tokens(store, tenant_id, subject)
        return _Secrets(None, None, None)
    async with store.control() as conn:
        cipher = await data_keys.tenant_cipher(conn, tenant_id, key)
        data_key = cipher.data_key
    return _Secrets(cipher, fernet_for(key), data_key)


async def _refuse_tokens(store: TenantStore, tenant_id: str, subject: Any) -> None:
    """Without the master key, a :class:`SettingsError` when a tenant with a data key
    has a value to export in an encrypted column: its token opens with that tenant's key
    alone, so a copy would hold values nothing else reads (and dropping the source
    destroys them)."""
    tables = [t for t in store.metadata.sorted_tables if encrypted_columns(t)]
    if not tables:
        return
    async with store.control(readonly=True) as conn:
        if not await data_keys.has_data_key(conn, tenant_id):
            return  # its tokens, if any, are the master key's: the form the loader takes
    conditions = reach(store.metadata, subject) if subject is not None else None
    async with store.session(tenant_id, readonly=True) as session:
        for table in tables:
            if conditions is not None and table.name not in conditions:
                continue
            where = None if conditions is None else conditions[table.name]
            column = await _first_token(session, table, where)
            if column is not None:
                raise SettingsError(
                    f"{table.name}.{column} holds values encrypted with the tenant's data "
                    "key, which an export decrypts (or re-encrypts with the master key): "
                    "TENANCY_SECRET_KEY must be set (nothing was exported)",
                    tenant_id=tenant_id,
                )


async def _first_token(
    session: TenantSession, table: Table, where: ColumnElement[bool] | None
) -> str | None:
    """The name of the first encrypted column of ``table`` found holding a token among
    the rows ``where`` selects (all without)."""
    kinds = encrypted_columns(table)
    columns = [c for i, c in enumerate(table.columns) if i in kinds]
    query = select(*columns) if where is None else select(*columns).where(where)
    result = await session.connection.stream(query.execution_options(yield_per=_FETCH_ROWS))
    async for partition in result.partitions():
        for row in partition:
            for column, kind, value in zip(columns, kinds.values(), row, strict=True):
                if _is_token(kind, value):
                    return str(column.name)
    return None


def _is_token(kind: EncryptedKind, value: Any) -> bool:
    if kind == "value":
        return value is not None
    return isinstance(value, dict) and isinstance(value.get("encrypted"), str)


def _unwritable(out: Path, error: OSError, tenant_id: str) -> StorageError:
    """What a file system refusing the export is to the caller."""
    reason = error.strerror or str(error)
    return StorageError(f"cannot write the export to {out}: {reason}", tenant_id=tenant_id)


def _unknown_subject(store: TenantStore, tenant_id: str) -> SubjectNotFoundError:
    """A subject's export that found no row of them: the id is likely wrong."""
    column = subject_column(store.metadata)
    name = f"{column.table.name}.{column.name}"
    return SubjectNotFoundError(
        f"no row reaches that subject id (a {name}): check the id (compared exactly, "
        "letter case included); nothing was exported",
        tenant_id=tenant_id,
        column=name,
    )


def _staging(out: Path) -> tuple[Path, Path | None]:
    """The directory to write into, and the archive to pack it into (if any)."""
    archive = out if out.name.endswith(".tar.gz") else None
    target = out.with_name(out.name[: -len(".tar.gz")]) if archive else out
    if out.is_symlink() or (
        out.exists() and (archive is not None or not out.is_dir() or any(out.iterdir()))
    ):
        raise _taken(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in _partials(target):
        _remove(stale)
    # mkdir, not mkdtemp: the export gets the umask's mode, as any file the user writes.
    staging = target.with_name(f".{target.name}.{secrets.token_hex(8)}.partial")
    staging.mkdir()
    return staging, archive


def _taken(out: Path) -> DestinationExistsError:
    """The destination is there (a symbolic link counts, even to an empty directory:
    renaming the export onto it would replace the link, not fill the directory)."""
    return DestinationExistsError(
        "the export's destination exists already: name another, or remove it", path=out
    )


def _partials(target: Path) -> list[Path]:
    """What an export to ``target`` killed before its end left beside it (the names this
    module gives, never a file of the user's), leaving out those of exports still
    writing (which hold a lock on them)."""
    pattern = re.compile(rf"\.{re.escape(target.name)}(\.tar\.gz)?\.[0-9a-f]{{16}}\.partial")
    return [p for p in target.parent.iterdir() if pattern.fullmatch(p.name) and is_free(p)]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# shape: one export's steps in order (gate, keys, tables, manifest, audit)
async def export_tenant(
    store: TenantStore,
    tenant_id: str,
    out: Path | str,
    *,
    actor: str,
    subject: str | None = None,
    pseudonymise: bool = False,
) -> ExportReport:
    """Export ``tenant_id``'s rows (or ``subject``'s) to ``out`` (see the module
    docstring); returns what was written."""
    validate_tenant_id(tenant_id)
    await store.initialize()
    if subject is not None:
        subject = typed_subject(store.metadata, subject)
    out = Path(out)
    async with audited(store, actor=actor, action="data.export", tenant_id=tenant_id) as audit:
        await _check_feature(store, tenant_id)
        keys = await _secrets(store, tenant_id, subject)
        salt = secrets.token_hex(16)
        pseudonyms = None
        if pseudonymise:
            pkey = (
                derive_key(keys.data_key, bytes.fromhex(salt), "pseudonym")
                if keys.data_key is not None
                else secrets.token_bytes(32)
            )
            pseudonyms = Pseudonymiser(pkey)
        report = ExportReport(tenant_id, out, subject is not None, pseudonymise)
        if store.holds(out):
            raise DestinationExistsError(
                "inside the store's data directory, where it would be taken for a "
                "tenant's storage: name a path outside it",
                tenant_id=tenant_id,
                path=out,
            )
        try:
            staging, archive = _staging(out)
            try:
                with held(staging):
                    await _write_tables(store, report, staging, subject, pseudonyms, keys)
                    if subject is not None and not report.rows:
                        raise _unknown_subject(store, tenant_id)
                    salted = salt if keys.data_key and pseudonymise else None
                    manifest = _manifest(report, salted)
                    (staging / "fixtures.json").write_bytes(manifest)
                    report.manifest_sha256 = hashlib.sha256(manifest).hexdigest()
                    _finish(staging, out, archive)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        except OSError as exc:
            raise _unwritable(out, exc, tenant_id) from exc
        detail: dict[str, Any] = {
            "rows": dict(report.rows),
            "pseudonymised": pseudonymise,
            "manifest_sha256": report.manifest_sha256,
        }
        if subject is not None:
            marks = Fingerprints.new(keys.data_key)
            detail["subject"] = {"salt": marks.salt, "fingerprint": marks.of(subject)}
        await audit.record(detail=detail)
    log.info("tenant_exported", tenant_id=tenant_id, run_id=audit.run_id, rows=report.total)
    return report


async def _write_tables(
    store: TenantStore,
    report: ExportReport,
    staging: Path,
    subject: Any,
    pseudonyms: Pseudonymiser | None,
    keys: _Secrets,
) -> None:
    tables = store.metadata.sorted_tables
    conditions = reach(store.metadata, subject) if subject is not None else None
    replaced = pseudonymised_columns(tables) if pseudonyms is not None else {}
    derived = derived_tables()
    async with store.session(report.tenant_id, snapshot=True) as session:
        for table in tables:
            query = select(table)
            if conditions is not None:
                if table.name not in conditions or table.name in derived:
                    continue
                query = query.where(conditions[table.name])
            content = table_checksum(table)
            path = staging / f"{table.name}.jsonl"
            result = await session.connection.stream(query.execution_options(yield_per=_FETCH_ROWS))
            with path.open("wb") as handle:
                async for partition in result.partitions():
                    _refuse_non_finite(table, partition, report.tenant_id)
                    rows = _rows(table, partition, pseudonyms, replaced.get(table.name), keys)
                    content.add(rows)
                    _write_rows(handle, table, rows)
            if content.rows:
                report.rows[table.name] = content.rows
                report.checksums[table.name] = content.hexdigest()
            else:
                path.unlink()


def _refuse_non_finite(table: Table, partition: Sequence[Any], tenant_id: str) -> None:
    """A :class:`RecordError` for a float column holding NaN or an infinity (which
    PostgreSQL stores): JSON has no such number (it would be written as null) and the
    loader refuses one, so the export could not be reloaded as it was."""
    floats = [(i, c) for i, c in enumerate(table.columns) if isinstance(c.type, Float)]
    for row in partition:
        for i, column in floats:
            value = row[i]
            if isinstance(value, float) and not math.isfinite(value):
                key = {c.name: row[table.columns.keys().index(c.key)] for c in table.primary_key}
                raise RecordError(
                    f"{value} is no JSON number (a fixture file cannot hold it, the loader "
                    f"refuses it) in the row {key or tuple(row)!r:.200}: correct it, then "
                    "export again (nothing was exported)",
                    tenant_id=tenant_id,
                    table=table.name,
                    column=str(column.name),
                    rule="finite",
                )


def _rows(
    table: Table,
    partition: Sequence[Any],
    pseudonyms: Pseudonymiser | None,
    positions: Sequence[int] | None,
    keys: _Secrets,
) -> list[tuple[Any, ...]]:
    decrypt = keys.writer(table)
    zoned = _zoned_positions(table)
    named = {
        i: enum_stored_text(c.type) for i, c in enumerate(table.columns) if enum_members(c.type)
    }
    rows: list[tuple[Any, ...]] = []
    for row in partition:
        values = list(row)
        for i in zoned:
            values[i] = _aware(values[i])
        for i, stored in named.items():  # a Python enum's member as its column stores it
            if isinstance(member := values[i], enum.Enum):
                values[i] = stored[member]
        if decrypt is not None:
            decrypt(values)
        if pseudonyms is not None and positions:
            values = list(pseudonyms.row(table, values, positions))
        rows.append(tuple(values))
    return rows


def _write_rows(handle: IO[bytes], table: Table, rows: Sequence[tuple[Any, ...]]) -> None:
    names = [str(c.name) for c in table.columns]  # orjson takes only plain str keys
    handle.write(b"".join(_line(dict(zip(names, row, strict=True))) for row in rows))


def _manifest(report: ExportReport, salt: str | None) -> bytes:
    document: dict[str, Any] = {
        "name": f"export-{report.tenant_id}",
        "files": [
            {
                "table": name,
                "path": f"{name}.jsonl",
                "rows": rows,
                "checksum": report.checksums[name],
            }
            for name, rows in report.rows.items()
        ],
        "export": {
            "tenant_id": report.tenant_id,
            "exported_at": control_plane.utcnow().isoformat(),
            "subject": report.subject,
            "pseudonymised": report.pseudonymised,
            # With a salt, the pseudonyms are the tenant data key's (reproducible by
            # whoever holds it); without, their key was random and is gone.
            "pseudonym_key": (
                None if not report.pseudonymised else ("tenant-data-key" if salt else "ephemeral")
            ),
            "pseudonym_salt": salt,
            "checksum": "content checksum of the rows (tenancy_fixtures ContentChecksum)",
        },
    }
    return json.dumps(document, indent=2, ensure_ascii=False).encode() + b"\n"


def _finish(staging: Path, out: Path, archive: Path | None) -> None:
    """Give the export its name: the directory, or a ``.tar.gz`` packed from it."""
    if archive is None:
        try:
            if out.exists() and not out.is_symlink():
                out.rmdir()  # checked empty (another export may have filled it since)
            staging.rename(out)
        except (FileExistsError, NotADirectoryError) as exc:
            raise _taken(out) from exc
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise _taken(out) from exc
            raise
        return
    partial = archive.with_name(f".{archive.name}.{secrets.token_hex(8)}.partial")
    try:
        # Locked while written, as the staging directory is (see file_locks).
        with (
            partial.open("xb") as raw,
            held(partial),
            tarfile.open(fileobj=raw, mode="w:gz") as tar,
        ):
            for child in sorted(staging.iterdir()):
                tar.add(child, arcname=child.name)
        try:
            os.link(partial, archive)  # never replaces what appeared there meanwhile
        except FileExistsError as exc:
            raise _taken(archive) from exc
    finally:
        partial.unlink(missing_ok=True)
    shutil.rmtree(staging)
