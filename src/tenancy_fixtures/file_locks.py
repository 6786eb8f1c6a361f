"""Locks that say a path is in use by a live process: ``flock``, which the system drops
when its process dies, so what a killed process left (an export's staging, a service
upload) is told apart from what a running one is still writing."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["held", "held_if_free", "is_free"]


@contextmanager
def held(path: Path) -> Iterator[None]:
    """Hold the lock of ``path`` while the block runs (waiting for it if need be)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


@contextmanager
def held_if_free(path: Path, *, follow_links: bool = True) -> Iterator[bool]:
    """Take the lock of ``path`` without waiting, held while the block runs; yields
    whether it was free (no live process holds it). A path that cannot be opened counts
    as held: nothing to judge it by."""
    flags = os.O_RDONLY if follow_links else os.O_RDONLY | os.O_NOFOLLOW
    try:
        descriptor = os.open(path, flags)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            free = False
        else:
            free = True
        yield free
    finally:
        os.close(descriptor)


def is_free(path: Path) -> bool:
    """Whether no live process holds the lock of ``path``."""
    with held_if_free(path) as free:
        return free
