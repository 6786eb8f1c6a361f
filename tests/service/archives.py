"""Building fixture-set archives (good and hostile) for upload tests."""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zipfile
from pathlib import Path

__all__ = [
    "corrupt_tar_bz2",
    "corrupt_tar_xz",
    "tar_gz",
    "tar_gz_failing_its_crc",
    "tar_gz_of",
    "unreadable_zip",
    "zip_of",
    "zip_of_headers_only",
]


def tar_gz(folder: Path, *, arcname: str = "set") -> bytes:
    """A .tar.gz of ``folder`` under one top-level folder ``arcname``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=arcname)
    return buffer.getvalue()


def tar_gz_of(members: list[tuple[tarfile.TarInfo, bytes | None]], *, trailing: int = 0) -> bytes:
    """A .tar.gz of hand-made members (names, types and links as given), its gzip stream
    holding ``trailing`` zero bytes more after the tar's end."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return gzip.compress(buffer.getvalue() + bytes(trailing))


def zip_of(files: dict[str, bytes], *, symlinks: dict[str, str] | None = None) -> bytes:
    """A .zip of ``files`` (name -> content) and ``symlinks`` (name -> target)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        for name, data in files.items():
            zipped.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16
            zipped.writestr(info, target)
    return buffer.getvalue()


def unreadable_zip(*, flags: int = 0, method: int | None = None, garbled: bool = False) -> bytes:
    """A zip of one ``users.csv`` whose entry has the general-purpose ``flags`` set
    (1: encrypted), compression ``method`` (99: AES), or deflate data that is garbage."""
    data = bytearray(zip_of({"users.csv": b"user_id,display_name\n" * 200}))
    central = data.find(b"PK\x01\x02")
    for header, offset in ((0, 6), (central, 8)):  # local header, central directory
        data[header + offset] |= flags
        if method is not None:
            struct.pack_into("<H", data, header + offset + 2, method)
    if garbled:  # after the local header (30 bytes) and the name: BTYPE 11, invalid
        start = 30 + len("users.csv")
        data[start : start + 16] = b"\xff" * 16
    return bytes(data)


def _users_tar(mode: str) -> bytes:
    """A tar of one ``users.csv`` of 20,000 rows, compressed as ``mode`` says (``w:xz``...)."""
    buffer = io.BytesIO()
    rows = "".join(f"{i},name{i * 7919 % 1000}\n" for i in range(20000)).encode()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:  # type: ignore[call-overload]
        info = tarfile.TarInfo("users.csv")
        info.size = len(rows)
        tar.addfile(info, io.BytesIO(rows))
    return buffer.getvalue()


def _damaged_in_the_middle(data: bytes) -> bytes:
    damaged = bytearray(data)
    middle = len(damaged) // 2
    damaged[middle : middle + 20] = bytes(b ^ 0x55 for b in damaged[middle : middle + 20])
    return bytes(damaged)


def corrupt_tar_xz() -> bytes:
    """A .tar.xz whose compressed stream is damaged in its middle."""
    return _damaged_in_the_middle(_users_tar("w:xz"))


def corrupt_tar_bz2() -> bytes:
    """A .tar.bz2 whose compressed stream is damaged in its middle."""
    return _damaged_in_the_middle(_users_tar("w:bz2"))


def tar_gz_failing_its_crc(folder: Path, *, old: bytes, new: bytes) -> bytes:
    """A .tar.gz of ``folder`` (as :func:`tar_gz`) whose deflate data stays well-formed
    but no longer matches the CRC in its trailer: stored (uncompressed) deflate blocks
    in which ``old``, somewhere in a file's content, is overwritten by ``new`` (as
    long), so only the trailer check can tell."""
    assert len(old) == len(new)
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w") as tar:
        tar.add(folder, arcname="set")
    data = bytearray(gzip.compress(plain.getvalue(), compresslevel=0, mtime=0))
    at = data.index(old)
    data[at : at + len(old)] = new
    return bytes(data)


def zip_of_headers_only(entries: int, *, garbled_from: int) -> bytes:
    """A zip holding only a central directory of ``entries`` one-byte names (no file
    data), its headers from index ``garbled_from`` on damaged: the zip of a client
    making the service list entries, as many as its upload limit allows."""
    header = struct.pack(
        "<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0
    )
    garbled = b"XX" + header[2:]
    directory = b"".join(
        (header if index < garbled_from else garbled) + b"a" for index in range(entries)
    )
    count = min(entries, 0xFFFF)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(directory), 0, 0)
    first = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, 1, 0) + b"a"
    return first + directory + end
