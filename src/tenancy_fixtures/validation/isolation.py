"""Isolation checks: no row of another tenant is reachable from a tenant's session.

What "reachable" means here, concretely:

* **Every backend.** Every table of the tenant schema, as the session's connection
  translates it, resolves to the tenant's own schema (PostgreSQL) or to its own file
  (SQLite), so every statement the library runs reads this tenant only. Relations in
  the tenant's storage that the schema does not declare are noted.
* **What the backend's catalogues show**, checked by the store itself
  (:meth:`TenantStore.check_isolation`): on PostgreSQL the ``search_path``, views and
  keys reaching other schemas and the tenant role's rights; on SQLite which files the
  connection has open.

Every check only reads.
"""

from __future__ import annotations

from collections.abc import Sequence

from tenancy_fixtures.store.base import (
    IsolationFindings,
    TenantSession,
    TenantStore,
)

__all__ = ["IsolationFindings", "check_isolation"]


async def check_isolation(
    store: TenantStore, session: TenantSession, *, other_tenants: Sequence[str]
) -> IsolationFindings:
    """Check that nothing of ``other_tenants`` (or anyone) is reachable from ``session``."""
    findings = IsolationFindings()
    _check_targets(session, findings)
    backend = await store.check_isolation(session, other_tenants=other_tenants)
    findings.problems += backend.problems
    findings.verified += backend.verified
    findings.notes += backend.notes
    return findings


def _check_targets(session: TenantSession, findings: IsolationFindings) -> None:
    """Every tenant table, as this connection's statements name it, is the tenant's."""
    expected = session.schema_name
    connection = session.connection.sync_connection
    assert connection is not None, "the session's connection is open"
    translate = connection.get_execution_options().get("schema_translate_map") or {}
    wrong = sorted(
        f"{table.name} -> {translate.get(table.schema, table.schema)}"
        for table in session.metadata.sorted_tables
        if translate.get(table.schema, table.schema) != expected
    )
    if wrong:
        findings.problems.append(
            f"statements of this session resolve tables outside {expected!r}: " + ", ".join(wrong)
        )
    else:
        findings.verified.append(f"every table resolves to {expected!r}")
