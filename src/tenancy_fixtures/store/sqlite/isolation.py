"""SQLite isolation checks: a tenant's connection reads its own file and no other.

The connection's main database must be the tenant's own file and no other tenant's
(a symlink or hard link would make two tenants one), and nothing may be attached but
the control plane. Files are compared by device and inode, not by path. Every check
only reads.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tenancy_fixtures.store.base import IsolationFindings
from tenancy_fixtures.store.control_plane import CONTROL_SCHEMA

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["check_isolation"]


async def check_isolation(
    connection: AsyncConnection,
    *,
    own_path: str,
    others: Sequence[str],
    path_of: Callable[[str], str],
) -> IsolationFindings:
    """Check the tenant whose file is ``own_path`` on its own session's ``connection``;
    ``others`` are the other tenants' ids and ``path_of`` gives a tenant's file."""
    findings = IsolationFindings()
    attached: list[Any] = list((await connection.exec_driver_sql("PRAGMA database_list")).all())
    others_by_file = await asyncio.to_thread(_files_of, others, path_of)
    own = await asyncio.to_thread(_file_id, own_path)
    shared = others_by_file.get(own) if own is not None else None
    if shared is not None:
        findings.problems.append(
            f"the tenant's file {own_path} is tenant '{shared}''s file: its rows are read here"
        )
    for row in attached:
        name, path = str(row[1]), str(row[2] or "")
        identity = await asyncio.to_thread(_file_id, path) if path else None
        owner = others_by_file.get(identity) if identity is not None else None
        if name == "main":
            if identity != own:
                findings.problems.append(
                    f"the connection's main database is {path}, not the tenant's file {own_path}"
                )
        elif owner is not None:
            findings.problems.append(
                f"tenant '{owner}''s file {path} is attached as {name!r}: its rows are reachable"
            )
        elif name not in (CONTROL_SCHEMA, "temp"):
            findings.problems.append(f"database {path or '(memory)'} is attached as {name!r}")
    if not findings.problems:
        findings.verified.append("the connection reads the tenant's own file and no other")
    return findings


def _file_id(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_dev, status.st_ino)


def _files_of(tenants: Sequence[str], path_of: Callable[[str], str]) -> dict[tuple[int, int], str]:
    files: dict[tuple[int, int], str] = {}
    for tenant in tenants:
        identity = _file_id(path_of(tenant))
        if identity is not None:
            files.setdefault(identity, tenant)
    return files
