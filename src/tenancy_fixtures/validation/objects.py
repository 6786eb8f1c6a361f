"""The ``objects`` and ``privileges`` checks: drift of what can run or grant access.

``objects``
    the tenant's storage holds nothing the schema definition does not declare: no extra
    table, view, materialized view, sequence, function, procedure, trigger, rule,
    policy, type or operator, and no table calling a function the schema does not
    provide. Each is a failure: code planted there runs with whatever rights the
    next writer has, and an extra table is somewhere rows go unseen.
``privileges``
    (PostgreSQL) every relation is owned by the schema's owner, the tenant role holds
    exactly what an application needs (``USAGE``; ``SELECT, INSERT, UPDATE, DELETE``;
    ``USAGE, SELECT`` on sequences), the owner role reaches no other schema, and
    ``PUBLIC`` holds nothing. Anything more is a failure, and so is anything less.

The store reads the catalogues (:meth:`TenantSession.undeclared_objects`,
:meth:`TenantStore.review_access`); this module only words the findings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tenancy_fixtures.store.base import AccessFinding, AccessReview, SchemaObject

__all__ = ["report_objects", "report_privileges"]

Fail = Callable[[str], None]


def report_objects(found: Sequence[SchemaObject], fail: Fail) -> str:
    """Fail each undeclared object; returns the summary of a clean check."""
    for item in found:
        fail(f"{item.describe()} is not declared by the tenant schema")
    return "nothing but the declared tables, keys and indexes"


def report_privileges(review: AccessReview | None, fail: Fail) -> str:
    """Fail each ownership or privilege that differs from the model; returns the summary
    of a clean check."""
    if review is None:
        return "no database roles on this backend"
    for item in review.misowned:
        fail(
            f"{item.kind} {item.name} is owned by {item.detail}, "
            f"not by the schema's owner {review.schema_owner}"
            if item.kind != "schema"
            else f"schema {item.name} is owned by {item.detail}, not by its owner role"
        )
    for line in _grouped(review.findings):
        fail(line)
    return (
        f"schema and tables owned by {review.schema_owner}; "
        f"{', '.join(review.reviewed)} hold only what the least-privilege model grants"
    )


_PLURAL = {"schema": "schemas", "table": "tables", "sequence": "sequences"}


def _grouped(findings: Sequence[AccessFinding]) -> list[str]:
    """One line per holder and set of privileges, naming the objects they are on:
    ``tenant role r holds TRUNCATE, REFERENCES, TRIGGER on tables a, b, ...``."""
    per_object: dict[tuple[str, str, bool, str, str], list[str]] = {}
    for f in findings:
        key = (f.holder_kind, f.holder, f.held, f.kind, f.name)
        per_object.setdefault(key, []).append(f.privilege)
    groups: dict[tuple[str, str, bool, str, tuple[str, ...]], list[str]] = {}
    for (holder_kind, holder, held, kind, name), privileges in per_object.items():
        groups.setdefault((holder_kind, holder, held, kind, tuple(privileges)), []).append(name)
    lines = []
    for (holder_kind, holder, held, kind, granted), names in groups.items():
        who = "PUBLIC" if holder_kind == "PUBLIC" else f"{holder_kind} {holder}"
        what = ", ".join(granted)
        if kind == "role":
            lines.append(f"{who} has {what}, which it must not")
            continue
        on = f"{kind} {names[0]}" if len(names) == 1 else f"{_PLURAL[kind]} {', '.join(names)}"
        if held:
            lines.append(f"{who} holds {what} on {on}, which it must not")
        else:
            lines.append(f"{who} lacks {what} on {on}, which an application needs")
    return lines
