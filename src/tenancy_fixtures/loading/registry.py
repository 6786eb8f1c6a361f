"""Loader classes by the name templates and manifests use for them.

The engine knows only :class:`DataLoader`; a domain (the built-in Spotify one, or a
user's own) adds its loaders with :func:`register_loader`.
"""

from __future__ import annotations

from sqlalchemy import MetaData

from tenancy_fixtures.loading.data_loader import DataLoader
from tenancy_fixtures.loading.fixture_sets import MAX_LOADER_NAME

__all__ = ["LOADERS", "guarding_loader", "register_loader"]

#: Loader classes by the name fixture templates use for them.
LOADERS: dict[str, type[DataLoader]] = {DataLoader.loader_name: DataLoader}


def register_loader(cls: type[DataLoader]) -> type[DataLoader]:
    """Make ``cls`` available to templates and manifests under ``cls.loader_name`` (at
    most ``MAX_LOADER_NAME`` characters: it starts the recorded fixture names)."""
    if not 0 < len(cls.loader_name) <= MAX_LOADER_NAME:
        raise ValueError(f"a loader name is 1 to {MAX_LOADER_NAME} characters: {cls.loader_name!r}")
    LOADERS[cls.loader_name] = cls
    return cls


def guarding_loader(table: str, metadata: MetaData) -> str | None:
    """The name of the loader whose checks every file of ``table`` (of ``metadata``)
    goes through (see :meth:`DataLoader.guards_table`), if one does."""
    found = next((t for t in metadata.sorted_tables if t.name == table), None)
    if found is None:
        return None
    return next((name for name, cls in LOADERS.items() if cls.guards_table(found)), None)
