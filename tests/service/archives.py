"""Building fixture-set archives (good and hostile) for upload tests."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

__all__ = ["tar_gz", "tar_gz_of", "zip_of"]


def tar_gz(folder: Path, *, arcname: str = "set") -> bytes:
    """A .tar.gz of ``folder`` under one top-level folder ``arcname``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=arcname)
    return buffer.getvalue()


def tar_gz_of(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    """A .tar.gz of hand-made members (names, types and links as given)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buffer.getvalue()


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
