"""Fixture-set archives unpacked safely: a ``.tar`` (plain, gzip, bzip2, xz) or a ``.zip``.

Used for the service's uploads and for a PATH that names an archive (``load-fixtures
acme ./export.tar.gz``, ``load_fixtures("acme", "export.zip")``). The kind is told by
the first bytes. Unpacking writes regular files and folders only: an entry whose name
is absolute or climbs out (``..``), a link of either kind, a device or a FIFO refuses
the whole archive, as do more than ``entries`` entries or more than ``unpacked_bytes``
unpacked (counted as written, never trusting the sizes an archive declares, so a
compression bomb stops at the limit). A compressed tar is read to the end of its
stream, so a damaged one fails its checksum (gzip's CRC trailer) before anything is
loaded. Nothing is extracted by the archive libraries themselves: each file is copied
out by this module. An error of the file system unpacked into (no room, no
permission) is raised as the ``OSError`` it is, for the caller to report as its own.
"""

from __future__ import annotations

import asyncio
import errno
import lzma
import os
import shutil
import stat
import struct
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Literal, Protocol

from tenancy_fixtures.errors import FixtureSetError, StorageError
from tenancy_fixtures.loading.fixture_sets import is_archive_name
from tenancy_fixtures.settings import Settings

__all__ = [
    "SERVER_SIDE_ERRNOS",
    "ArchiveLimits",
    "archive_kind",
    "unpack",
    "unpacked",
    "unpacked_set",
]


_CHUNK = 1 << 16
#: Errors of the file system unpacked into, not of the archive: no room (a full disk, a
#: quota, a file size limit), no permission, a read-only or failing disk, no descriptors.
SERVER_SIDE_ERRNOS = frozenset(
    (
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EFBIG,
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.EIO,
        errno.EMFILE,
        errno.ENFILE,
    )
)
#: The zip compression methods Python reads (AES-encrypted entries are method 99).
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
_TarMode = Literal["r:*", "r:gz", "r:bz2", "r:xz"]
#: The first bytes of each compressed stream tarfile reads, and its mode to read it in:
#: told by magic, a stream too damaged to open is a corrupt archive (422), not an
#: unsupported one (415) as tarfile's own sniffing, which gives up, would make it.
_TAR_MAGIC: tuple[tuple[bytes, _TarMode], ...] = (
    (b"\x1f\x8b", "r:gz"),
    (b"BZh", "r:bz2"),
    (b"\xfd7zXZ\x00", "r:xz"),
)


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


class ArchiveLimits:
    """How big an archive may be (``upload_bytes``: the service's uploads), and what it
    may unpack to."""

    def __init__(self, *, upload_bytes: int, unpacked_bytes: int, entries: int) -> None:
        self.upload_bytes = upload_bytes
        self.unpacked_bytes = unpacked_bytes
        self.entries = entries

    @classmethod
    def of(cls, settings: Settings) -> ArchiveLimits:
        """The limits ``settings`` set (``TENANCY_SERVICE_UPLOAD_MAX_BYTES``,
        ``..._ARCHIVE_MAX_BYTES``, ``..._ARCHIVE_MAX_ENTRIES``)."""
        return cls(
            upload_bytes=settings.service_upload_max_bytes,
            unpacked_bytes=settings.service_archive_max_bytes,
            entries=settings.service_archive_max_entries,
        )


def _refuse(reason: str) -> FixtureSetError:
    return FixtureSetError(f"the archive is refused: {reason}")


def _safe_name(name: str) -> PurePosixPath | None:
    """The entry's relative path, ``None`` for the archive's root; refuses escapes."""
    if "\\" in name or "\x00" in name:
        raise _refuse(f"entry {name!r} has a backslash or NUL in its name")
    path = PurePosixPath(name)
    if path.is_absolute() or any(part == ".." for part in path.parts):
        raise _refuse(f"entry {name!r} points outside the archive")
    parts = [part for part in path.parts if part not in ("", ".")]
    return PurePosixPath(*parts) if parts else None


class _Budget:
    """Entries and bytes left while unpacking."""

    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.entries = 0
        self.bytes = 0

    def entry(self) -> None:
        self.entries += 1
        if self.entries > self.limits.entries:
            raise _refuse(
                f"more than {self.limits.entries} entries (TENANCY_SERVICE_ARCHIVE_MAX_ENTRIES)",
            )

    def spend(self, size: int) -> None:
        """Count ``size`` more bytes unpacked; refuse past the limit."""
        self.bytes += size
        if self.bytes > self.limits.unpacked_bytes:
            raise _refuse(
                f"it unpacks to more than {self.limits.unpacked_bytes} bytes "
                "(TENANCY_SERVICE_ARCHIVE_MAX_BYTES)",
            )

    def copy(self, source: IO[bytes], target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: a second entry of the same name never overwrites the first.
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(_CHUNK):
                self.spend(len(chunk))
                out.write(chunk)


#: The most a tar's own headers (pax records, GNU long names) may hold: a name and a
#: few attributes, never megabytes (tarfile reads one whole, then scans it, slowly).
MAX_TAR_HEADER_BYTES = 64 << 10
_HEADER_TYPES = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)


class _CheckedTarInfo(tarfile.TarInfo):
    """A tar member whose pax or long-name header is refused past
    :data:`MAX_TAR_HEADER_BYTES` before tarfile reads it."""

    def _proc_member(self, tar: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _HEADER_TYPES and self.size > MAX_TAR_HEADER_BYTES:
            raise _refuse(
                f"a header of {self.size} bytes (names and attributes: at most "
                f"{MAX_TAR_HEADER_BYTES})"
            )
        member: tarfile.TarInfo = super()._proc_member(tar)  # type: ignore[misc]  # not in typeshed
        return member


def _unpack_tar(archive: Path, into: Path, budget: _Budget, mode: _TarMode) -> None:
    with tarfile.open(archive, mode=mode, tarinfo=_CheckedTarInfo) as tar:
        for member in tar:
            budget.entry()
            relative = _safe_name(member.name)
            if not (member.isfile() or member.isdir()):
                raise _refuse(f"entry {member.name!r} is not a regular file or folder")
            if relative is None:
                continue
            target = into.joinpath(*relative.parts)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            source = tar.extractfile(member)
            if source is None:
                raise _refuse(f"entry {member.name!r} cannot be read")
            with source:
                budget.copy(source, target)
        _drain(tar.fileobj, budget)


def _drain(stream: _Readable, budget: _Budget) -> None:
    """Read what follows the tar's end marker to the end of the stream, counted as
    unpacked bytes (no bomb hides there): tarfile stops at the marker, and gzip checks
    its CRC and length trailer (xz and bzip2 their checks) only when it is reached."""
    while chunk := stream.read(_CHUNK):
        budget.spend(len(chunk))


#: A zip's end of central directory record, its zip64 one, and a central directory
#: header (46 bytes; the lengths of the name, extra field and comment that follow it
#: are its fields 12, 13 and 14).
_ZIP_END = struct.Struct("<4s4H2LH")
_ZIP64_END = struct.Struct("<4sQ2H2L4Q")
_ZIP_HEADER = struct.Struct("<4s4B4HL2L5H2L")
_ZIP64_LOCATOR_SIZE = 20


def _central_directory(head: IO[bytes]) -> tuple[int, int] | None:
    """Where a zip's central directory starts and how long it is, found from its end
    record as zipfile finds it; ``None`` if there is none (zipfile then refuses it)."""
    size = head.seek(0, os.SEEK_END)
    tail_at = max(0, size - (_ZIP_END.size + 0xFFFF))
    head.seek(tail_at)
    tail = head.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _ZIP_END.size:
        return None
    end = tail_at + at
    length = _ZIP_END.unpack_from(tail, at)[5]
    head.seek(max(end - _ZIP64_LOCATOR_SIZE, 0))
    if head.read(4) == b"PK\x06\x07":  # zip64: its own end record, before the locator
        end -= _ZIP64_LOCATOR_SIZE + _ZIP64_END.size
        head.seek(max(end, 0))
        record = head.read(_ZIP64_END.size)
        if end < 0 or len(record) < _ZIP64_END.size or record[:4] != b"PK\x06\x06":
            return None
        length = _ZIP64_END.unpack(record)[8]
    return (end - length, length) if end >= length else None


def _count_zip_entries(archive: Path, limits: ArchiveLimits) -> None:
    """Count the central directory's headers against the entries limit before zipfile
    lists them: it makes an object of each, however many a client sent (two million in
    a 94 MB upload held the service 36 s and 630 MB)."""
    counted = _Budget(limits)
    with archive.open("rb") as head:
        found = _central_directory(head)
        if found is None:
            return
        start, remaining = found
        head.seek(start)
        while remaining >= _ZIP_HEADER.size:
            header = head.read(_ZIP_HEADER.size)
            if len(header) < _ZIP_HEADER.size or header[:4] != b"PK\x01\x02":
                return  # zipfile refuses it
            counted.entry()
            fields = _ZIP_HEADER.unpack(header)
            skip = fields[12] + fields[13] + fields[14]
            head.seek(skip, os.SEEK_CUR)
            remaining -= _ZIP_HEADER.size + skip


def _unpack_zip(archive: Path, into: Path, budget: _Budget) -> None:
    _count_zip_entries(archive, budget.limits)
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            budget.entry()
            relative = _safe_name(info.filename)
            # Unix type bits, when the maker set them (Python's writestr does not).
            kind = stat.S_IFMT(info.external_attr >> 16)
            if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
                raise _refuse(f"entry {info.filename!r} is not a regular file or folder")
            if relative is None:
                continue
            target = into.joinpath(*relative.parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            _readable(info)
            with zipped.open(info) as source:
                budget.copy(source, target)


def _readable(info: zipfile.ZipInfo) -> None:
    """Refuse a zip entry that is encrypted or compressed in a way Python cannot read."""
    if info.flag_bits & 0x1:
        raise _refuse(f"entry {info.filename!r} is encrypted")
    if info.compress_type not in _ZIP_METHODS:
        raise _refuse(f"entry {info.filename!r} uses compression method {info.compress_type}")


@contextmanager
def _reading(archive: Path, into: Path) -> Iterator[None]:
    """Library errors of a corrupt archive as a FixtureSetError: corrupt compressed data
    (zlib, lzma; bz2's is an OSError) and what zipfile cannot read (RuntimeError,
    NotImplementedError: encryption, patched data) included. A file system error names
    the entry's path inside the archive, not the server's folder it was unpacked to; one
    of the folder's own (no room, no permission) is raised as it is."""
    try:
        yield
    except (
        tarfile.TarError,
        zipfile.BadZipFile,
        EOFError,
        OSError,
        ValueError,
        zlib.error,
        lzma.LZMAError,
        RuntimeError,
    ) as exc:
        if isinstance(exc, FileExistsError):
            raise _refuse("it holds the same name twice") from None
        if isinstance(exc, OSError) and exc.errno in SERVER_SIDE_ERRNOS:
            raise
        said = str(exc).replace(f"{into}{os.sep}", "").replace(str(archive), "the archive")
        raise _refuse(f"it cannot be read ({type(exc).__name__}: {said})") from None


def _tar_mode(archive: Path, magic: bytes) -> _TarMode | None:
    """tarfile's mode for ``archive`` (its first bytes are ``magic``), ``None`` if it is
    no tar: a compressed stream by its magic, a plain tar by tarfile's check."""
    for start, mode in _TAR_MAGIC:
        if magic.startswith(start):
            return mode
    return "r:*" if tarfile.is_tarfile(archive) else None


def _is_zip(magic: bytes) -> bool:
    return magic.startswith((b"PK\x03\x04", b"PK\x05\x06"))


def archive_kind(archive: Path) -> Literal["zip", "tar"] | None:
    """Whether ``archive`` is a zip or a tar (plain or compressed), by its first bytes."""
    with archive.open("rb") as head:
        magic = head.read(6)
    if _is_zip(magic):
        return "zip"
    return "tar" if _tar_mode(archive, magic) else None


def unpack(archive: Path, into: Path, limits: ArchiveLimits) -> Path:
    """Unpack ``archive`` under the empty folder ``into``; returns the fixture set's
    folder (``into``, or the archive's one top-level folder). Blocking: run it in a
    thread. A refused archive leaves ``into`` to its caller to remove."""
    with archive.open("rb") as head:
        magic = head.read(6)
    budget = _Budget(limits)
    with _reading(archive, into):
        if _is_zip(magic):
            _unpack_zip(archive, into, budget)
        elif mode := _tar_mode(archive, magic):
            _unpack_tar(archive, into, budget, mode)
        else:
            raise _refuse("it is not a zip or tar archive (plain, gzip, bzip2 or xz)")
    children = list(into.iterdir())
    if len(children) == 1 and children[0].is_dir():
        return children[0]
    if not children:
        raise _refuse("it holds no files")
    return into


def _named_archive(source: Path) -> bool:
    return is_archive_name(source) and source.is_file()


def _unpack_privately(
    source: Path, limits: ArchiveLimits, work_dir: Path | None
) -> tuple[Path, Path]:
    """A new private folder under ``work_dir`` and the set ``source`` unpacked in it; a
    refused archive leaves no folder behind."""
    folder = Path(tempfile.mkdtemp(prefix="tenancy-archive-", dir=work_dir))
    try:
        return folder, _unpack_named(source, folder, limits)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _unpack_named(source: Path, folder: Path, limits: ArchiveLimits) -> Path:
    """:func:`unpack` of the user's own ``source``: refusals name it; the folder's file
    system failing is a :class:`StorageError`."""
    try:
        return unpack(source, folder, limits)
    except FixtureSetError as exc:
        raise FixtureSetError(exc.message, path=source) from None
    except OSError as exc:
        if exc.errno not in SERVER_SIDE_ERRNOS:
            raise
        raise StorageError(
            f"cannot unpack {source} into {folder}: {exc.strerror} (set "
            "TENANCY_SERVICE_WORK_DIR to a folder with room)"
        ) from exc


@contextmanager
def unpacked_set(
    source: Path, limits: ArchiveLimits, *, work_dir: Path | None = None
) -> Iterator[Path]:
    """The fixture set ``source`` names: itself, or, for a file named as an archive, the
    set unpacked into a private folder under ``work_dir`` (default: the system's
    temporary directory), removed on the way out."""
    if not _named_archive(source):
        yield source
        return
    folder, found = _unpack_privately(source, limits, work_dir)
    try:
        yield found
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@asynccontextmanager
async def unpacked(
    source: Path, limits: ArchiveLimits, *, work_dir: Path | None = None
) -> AsyncIterator[Path]:
    """:func:`unpacked_set` with the file work done in threads."""
    if not await asyncio.to_thread(_named_archive, source):
        yield source
        return
    folder, found = await asyncio.to_thread(_unpack_privately, source, limits, work_dir)
    try:
        yield found
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)
