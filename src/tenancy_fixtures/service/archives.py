"""Uploaded fixture-set archives: received to disk within a size limit, then unpacked
safely (:mod:`tenancy_fixtures.loading.archives`: one fixture set at the top level or
inside one folder, within the entries and bytes limits).

Each upload has a folder of its own, ``upload-<tenant>-<random>`` in the work folder,
locked (``flock`` on its lock file) by its process until it is removed. A process
killed mid-upload leaves its folder but holds no lock: :func:`sweep`, run when the
service starts, removes exactly those, never one a live process of any service sharing
the work folder is using, however long its load runs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from tenancy_fixtures.loading import archives
from tenancy_fixtures.loading.archives import ArchiveLimits, archive_kind
from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.service.problems import ServiceProblem

__all__ = [
    "ArchiveLimits",
    "UploadFolder",
    "prepare",
    "receive",
    "sweep",
    "too_large",
    "unpack",
    "work_folder_failed",
]

log = get_logger("tenancy_fixtures.service.archives")


def too_large(limit: int) -> ServiceProblem:
    """The 413 of an upload past ``limit`` bytes."""
    return ServiceProblem(
        413,
        "Upload too large",
        f"the archive is larger than TENANCY_SERVICE_UPLOAD_MAX_BYTES ({limit} bytes)",
        kind="UploadTooLarge",
    )


def work_folder_failed(exc: OSError) -> ServiceProblem:
    """The 503 of an upload the work folder cannot take (made, written: no permission,
    no space left...); the server's path goes to the log only."""
    log.warning("upload_work_folder_failed", error=f"{type(exc).__name__}: {exc}")
    return ServiceProblem(
        503,
        "Upload storage unavailable",
        "the service cannot write uploads to its work folder (TENANCY_SERVICE_WORK_DIR): "
        f"{exc.strerror or type(exc).__name__}",
        kind="WorkFolderUnavailable",
    )


async def receive(chunks: AsyncIterator[bytes], into: Path, *, limit: int) -> int:
    """Write ``chunks`` to the file ``into``; 413 as soon as they pass ``limit`` bytes
    (the partial file is removed), 503 if the work folder cannot take them. Returns the
    bytes written."""
    written = 0
    try:
        out = await asyncio.to_thread(into.open, "wb")
    except OSError as exc:
        raise work_folder_failed(exc) from exc
    try:
        async for chunk in chunks:
            written += len(chunk)
            if written > limit:
                raise too_large(limit)
            try:
                await asyncio.to_thread(out.write, chunk)
            except OSError as exc:
                raise work_folder_failed(exc) from exc
    except BaseException:
        out.close()
        await asyncio.to_thread(into.unlink, True)
        raise
    out.close()
    return written


def unpack(archive: Path, into: Path, limits: ArchiveLimits) -> Path:
    """Unpack the uploaded ``archive`` under the empty folder ``into`` (see
    :func:`tenancy_fixtures.loading.archives.unpack`), then remove it; returns the
    fixture set's folder. Not an archive: 415; the work folder failing: 503. Blocking."""
    if archive_kind(archive) is None:
        raise ServiceProblem(
            415,
            "Unsupported archive",
            "the upload is not a zip or tar archive (plain, gzip, bzip2 or xz)",
            kind="UnsupportedArchive",
        )
    try:
        found = archives.unpack(archive, into, limits)
    except OSError as exc:
        raise work_folder_failed(exc) from None
    archive.unlink()
    return found


#: Upload folders are named ``upload-...``; each holds this file, locked while in use.
_PREFIX = "upload-"
_LOCK = ".tenancy-upload.lock"


class UploadFolder:
    """One upload's private folder (``path``), locked by this process until
    :meth:`remove`."""

    def __init__(self, path: Path, lock: int | None) -> None:
        self.path = path
        self._lock = lock

    def remove(self) -> None:
        """Remove the folder, whatever it holds, then drop its lock (blocking)."""
        shutil.rmtree(self.path, ignore_errors=True)
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    async def unpack(self, archive: Path, limits: ArchiveLimits) -> Path:
        """:func:`unpack` ``archive`` into the folder's ``set`` in a thread; the folder
        is removed if that fails, or if the request is cancelled meanwhile (a client
        gone): then once the thread has stopped writing to it, not under its feet (a
        thread cannot be stopped, and what it wrote after a removal stayed until the
        next start's sweep)."""
        unpacking = asyncio.ensure_future(
            asyncio.to_thread(unpack, archive, self.path / "set", limits)
        )
        try:
            return await asyncio.shield(unpacking)
        except asyncio.CancelledError:
            unpacking.add_done_callback(self._remove_after)
            raise
        except BaseException:
            await asyncio.to_thread(self.remove)
            raise

    def _remove_after(self, unpacking: asyncio.Future[Path]) -> None:
        """Remove the folder (in a thread) once ``unpacking`` ended, however it did."""
        if not unpacking.cancelled():
            unpacking.exception()  # retrieved: nobody is waiting for it any more
        asyncio.get_running_loop().run_in_executor(None, self.remove)


if sys.platform == "win32":  # pragma: no cover - no flock: nothing is swept

    def _hold(folder: Path) -> int | None:
        del folder
        return None

    def _remove_if_abandoned(folder: Path) -> bool:
        del folder
        return False

else:
    import fcntl

    from tenancy_fixtures.file_locks import held_if_free

    def _hold(folder: Path) -> int | None:
        """Lock ``folder`` for this process: its lock file appears already locked (made
        under another name, locked, then renamed), so no sweep can take it first."""
        staged = folder / f"{_LOCK}.new"
        descriptor = os.open(staged, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            staged.rename(folder / _LOCK)
        except BaseException:
            os.close(descriptor)
            raise
        return descriptor

    def _remove_if_abandoned(folder: Path) -> bool:
        """Remove ``folder`` if its lock file's lock is free: its process is gone (the
        system drops a dead process's locks). A folder without the file is left: not an
        upload's, or one being made this instant."""
        with held_if_free(folder / _LOCK, follow_links=False) as free:
            if free:
                shutil.rmtree(folder, ignore_errors=True)
            return free


def prepare(work_dir: Path | None, tenant_id: str) -> UploadFolder:
    """A new private folder for one upload, under ``work_dir`` (default: the system's
    temporary directory), locked until it is removed."""
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{tenant_id}-", dir=work_dir))
    try:
        (folder / "set").mkdir()
        return UploadFolder(folder, _hold(folder))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def sweep(work_dir: Path | None) -> list[Path]:
    """Remove the upload folders under ``work_dir`` (default: the system's temporary
    directory) that processes killed mid-upload left; returns them. Blocking."""
    base = Path(tempfile.gettempdir()) if work_dir is None else work_dir
    try:
        entries = list(os.scandir(base))
    except OSError:  # no work folder yet: nothing left in it
        return []
    return [
        Path(entry.path)
        for entry in entries
        if entry.name.startswith(_PREFIX)
        and entry.is_dir(follow_symlinks=False)
        and _remove_if_abandoned(Path(entry.path))
    ]
