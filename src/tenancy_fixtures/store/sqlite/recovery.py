"""Settling what a crash left in a SQLite data directory: finish it or roll it back.

A tenant file only becomes visible while its creator holds the control plane's write
lock, just before the commit that registers it, and it keeps a second name (the
temporary copy it was made as) until after that commit; a drop renames the file to
``<id>.db.dropping`` under the same lock before the commit that unregisters it. So,
with the write lock held, what is on disk says how each interrupted operation ended:

* ``.<id>.db.<nonce>`` that is the same file as ``<id>.db``: a create that linked its
  file. Registered: it committed, only the second name is left to remove. Not
  registered: it did not commit, and both names go.
* ``.<id>.db.<nonce>`` alone, or a ``template-*.db.<nonce>`` being built: a create
  that never got that far; removed once no creator is at work (see
  :func:`creators_lock`).
* ``<id>.db.dropping``: restored if the tenant is still registered (the drop did not
  commit), deleted otherwise.
* ``*-mj<hex>``: a super-journal, SQLite's record of a transaction over two files (a
  tenant and the control plane). Its children's hot journals are rolled back first
  (by opening them, as SQLite would), then it is removed.
* ``<id>.db-journal``: rolled back by opening the file if it is hot; a journal left
  after that is stale (no transaction on a tenant file is live under the lock) and
  is removed.
"""

from __future__ import annotations

import os
import re
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

__all__ = [
    "DROPPING",
    "Settled",
    "creators_lock",
    "recover",
    "remove_database",
    "settle",
    "temporary_name",
]

#: Suffix of a tenant file whose drop has not committed yet.
DROPPING = ".dropping"
_TENANT_TEMP = re.compile(r"\.(?P<tenant>[a-z][a-z0-9_]*)\.db\.[0-9a-f]{32}")
_TEMPLATE_TEMP = re.compile(r"template-[0-9a-f]+\.db\.[0-9a-f]{32}|control-copy\.[0-9a-f]{32}")
_SUPER_JOURNAL = re.compile(r".+-mj[0-9A-F]+")
_JOURNAL = "-journal"
_RECOVERY_TIMEOUT_SECONDS = 30.0


def temporary_name(path: Path, nonce: str) -> Path:
    """The hidden name a new tenant file is made under, beside ``path``."""
    return path.with_name(f".{path.name}.{nonce}")


def remove_database(path: Path) -> None:
    """Delete a database file and its rollback journal, if they exist."""
    for leftover in (path, path.with_name(path.name + _JOURNAL)):
        leftover.unlink(missing_ok=True)


def recover(path: Path) -> None:
    """Open ``path`` and read it, so SQLite rolls back a hot journal a crash left."""
    uri = f"file:{quote(str(path))}?mode=rw"
    connection = sqlite3.connect(uri, uri=True, timeout=_RECOVERY_TIMEOUT_SECONDS)
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    finally:
        connection.close()


if sys.platform == "win32":  # pragma: no cover - no flock; unlinked copies wait for a restart

    @contextmanager
    def creators_lock(path: Path, *, exclusive: bool) -> Iterator[bool]:
        """Windows has no ``flock``: creators are not tracked, settling never sees none."""
        del path
        yield not exclusive

else:
    import fcntl

    @contextmanager
    def creators_lock(path: Path, *, exclusive: bool) -> Iterator[bool]:
        """Creators hold ``path`` shared while they have temporary files; settling asks
        for it exclusively without waiting. Yields whether the lock was taken.

        ``flock`` locks go with the process, so a killed creator holds nothing; they are
        taken on a file of their own because closing any descriptor of a database file
        would drop the POSIX locks SQLite holds on it.
        """
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                mode = fcntl.LOCK_EX | fcntl.LOCK_NB if exclusive else fcntl.LOCK_SH
                fcntl.flock(descriptor, mode)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(descriptor)


@dataclass
class Settled:
    """What one settling pass did: tenant ids, and the names of the files removed."""

    creates_finished: list[str] = field(default_factory=list)
    creates_rolled_back: list[str] = field(default_factory=list)
    drops_finished: list[str] = field(default_factory=list)
    drops_rolled_back: list[str] = field(default_factory=list)
    temporary_files_removed: list[str] = field(default_factory=list)
    super_journals_removed: list[str] = field(default_factory=list)
    journals_removed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any(vars(self).values())


def settle(
    data_dir: Path,
    tenants_dir: Path,
    registered: set[str],
    *,
    control_path: Path,
    no_creators: bool,
) -> Settled:
    """Finish or roll back what crashed creates and drops left (see the module docstring).

    The caller holds the control plane's write lock and read ``registered`` under it;
    ``no_creators``: no process is creating a tenant (the :func:`creators_lock` was
    taken exclusively), so temporary files that are not linked yet are abandoned.
    """
    settled = Settled()
    _settle_drops(tenants_dir, registered, settled)
    _settle_creates(tenants_dir, registered, settled, no_creators=no_creators)
    if no_creators:
        for entry in data_dir.iterdir():
            if _TEMPLATE_TEMP.fullmatch(entry.name.removesuffix(_JOURNAL)):
                entry.unlink(missing_ok=True)
                settled.temporary_files_removed.append(entry.name)
    # Hot journals are rolled back while their super-journal still exists: without it
    # SQLite would take them for stale and keep a half-committed transaction.
    _settle_super_journals(tenants_dir, control_path, settled)
    _settle_journals(tenants_dir, settled)
    return settled


def _settle_drops(tenants_dir: Path, registered: set[str], settled: Settled) -> None:
    for tomb in tenants_dir.glob(f"*.db{DROPPING}"):
        tenant_id = tomb.name.removesuffix(f".db{DROPPING}")
        live = tenants_dir / f"{tenant_id}.db"
        if tenant_id in registered and not live.exists():
            tomb.replace(live)
            settled.drops_rolled_back.append(tenant_id)
        else:
            remove_database(tomb)
            settled.drops_finished.append(tenant_id)


def _settle_creates(
    tenants_dir: Path, registered: set[str], settled: Settled, *, no_creators: bool
) -> None:
    for entry in sorted(tenants_dir.iterdir()):
        is_journal = entry.name.endswith(_JOURNAL)
        match = _TENANT_TEMP.fullmatch(entry.name.removesuffix(_JOURNAL))
        if match is None or (is_journal and entry.with_name(match.group(0)).exists()):
            continue  # not a temporary file, or a journal settled with its database
        tenant_id = match["tenant"]
        live = tenants_dir / f"{tenant_id}.db"
        if not is_journal and _same_file(entry, live):
            if tenant_id in registered:
                settled.creates_finished.append(tenant_id)
            else:
                remove_database(live)
                settled.creates_rolled_back.append(tenant_id)
        elif not no_creators:
            continue  # perhaps a creator's copy that is not linked yet
        remove_database(entry)
        settled.temporary_files_removed.append(entry.name)


def _same_file(one: Path, other: Path) -> bool:
    try:
        return os.path.samefile(one, other)
    except FileNotFoundError:
        return False


def _settle_journals(tenants_dir: Path, settled: Settled) -> None:
    """Roll back each tenant file's hot journal, then remove whatever journal is left.

    With the write lock held no transaction on a tenant file is live, so a journal
    SQLite did not roll back on opening its file is stale (not hot), and the journal of
    a file that is gone belongs to nothing.
    """
    for journal in sorted(tenants_dir.glob(f"*{_JOURNAL}")):
        database = journal.with_name(journal.name.removesuffix(_JOURNAL))
        if database.exists():
            recover(database)
        if journal.exists():
            journal.unlink(missing_ok=True)
            settled.journals_removed.append(journal.name)


def _settle_super_journals(tenants_dir: Path, control_path: Path, settled: Settled) -> None:
    """Roll back each super-journal's children, then remove it.

    The control plane is already rolled back (the write lock was taken through it) and
    its journal, if any, is the caller's own or not hot.
    """
    for super_journal in sorted(tenants_dir.iterdir()):
        if not _SUPER_JOURNAL.fullmatch(super_journal.name):
            continue
        try:
            names = super_journal.read_bytes().split(b"\0")
        except FileNotFoundError:
            continue  # removed by SQLite while an earlier one was rolled back
        for name in names:
            journal = Path(os.fsdecode(name))
            if not name.endswith(_JOURNAL.encode()) or not journal.exists():
                continue
            database = journal.with_name(journal.name.removesuffix(_JOURNAL))
            if _same_file(database, control_path):
                continue
            if database.exists():
                recover(database)
            journal.unlink(missing_ok=True)  # not hot, or its database is gone
        super_journal.unlink(missing_ok=True)
        settled.super_journals_removed.append(super_journal.name)
