"""What the hostile-input test modules import: the checks on a load's outcome, and the
tenant a module's refusals share (the fixtures are in ``conftest.py`` beside it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from tenancy_fixtures import FixtureManager
from tenancy_fixtures.errors import (
    FixtureError,
    TenancyFixturesError,
    ValidationFailedError,
)
from tenancy_fixtures.store.base import TENANT_SCHEMA
from tests.hostile.hostile_corpus import ANY_LINE, Case, Loads, Refused

__all__ = [
    "SharedTenant",
    "assert_loaded",
    "assert_names",
    "assert_untouched",
    "case_params",
    "located",
    "names",
    "read_rows",
]

STRUCTURAL_FIXTURES = {"schema", "config"}


def case_params(cases: Sequence[Case]) -> list[Any]:
    """One pytest param per case, a known bug marked as a strict xfail."""
    return [
        pytest.param(
            case,
            id=case.name,
            marks=[pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug else [],
        )
        for case in cases
    ]


def located(error: TenancyFixturesError) -> FixtureError:
    """The typed error that says where the problem is.

    Strict loading reports a refused record as a ValidationFailedError listing every
    problem of the set; its first problem is the record's own error.
    """
    if isinstance(error, ValidationFailedError):
        assert error.errors, error
        return error.errors[0]
    assert isinstance(error, FixtureError), repr(error)
    return error


def assert_names(expected: Refused, error: FixtureError) -> None:
    """``error`` is of the expected class and names the expected place."""
    assert expected.error is type(error), repr(error)
    if expected.path is not None:
        assert expected.path == error.path
    for wanted, actual in ((expected.line, error.line), (expected.record, error.record)):
        if wanted == ANY_LINE:
            assert actual is not None
            assert actual >= 1
        else:
            assert wanted == actual
    assert expected.column == error.column
    assert expected.says in error.message
    assert expected.names in str(error)


def names(expected: Refused, error: FixtureError) -> bool:
    """Whether ``error`` passes :func:`assert_names`."""
    try:
        assert_names(expected, error)
    except AssertionError:
        return False
    return True


async def read_rows(manager: FixtureManager, tenant: str, table: str) -> list[dict[str, Any]]:
    """Every row of one tenant table, as column -> value."""
    async with manager.store.session(tenant, readonly=True) as session:
        result = await session.connection.execute(
            select(session.metadata.tables[f"{TENANT_SCHEMA}.{table}"])
        )
        return [dict(row) for row in result.mappings()]


async def assert_untouched(manager: FixtureManager, tenant: str) -> None:
    """No row in any table and no data fixture recorded."""
    status = await manager.tenant_status(tenant)
    assert {} == {table: rows for table, rows in status.row_counts.items() if rows}
    assert STRUCTURAL_FIXTURES == set(status.fixtures)


async def assert_loaded(manager: FixtureManager, tenant: str, expected: Loads) -> None:
    """The rows per table are as expected and the listed values read back unchanged."""
    status = await manager.tenant_status(tenant)
    assert {t: n for t, n in expected.rows.items() if n} == {
        table: rows for table, rows in status.row_counts.items() if rows
    }
    for table, wanted in expected.values.items():
        rows = await read_rows(manager, tenant, table)
        for partial in wanted:
            matches = [r for r in rows if all(r[k] == v for k, v in partial.items())]
            assert 1 == len(matches), (table, {k: str(v)[:80] for k, v in partial.items()})


@dataclass
class SharedTenant:
    """The tenant a module's refusals share. A test that saw it empty at its end sets
    ``seen_empty``; otherwise (a failure, an expected failure) it is made again."""

    tenant_id: str
    seen_empty: bool = False
