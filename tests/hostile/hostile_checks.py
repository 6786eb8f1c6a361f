"""What the hostile-input test modules share: per-backend managers and the checks.

A plain module beside the tests (as ``tests/cli/cli_runner.py``), imported by them.
The corpus runs hundreds of loads, so the manager lives for a module (per backend)
and refusals share one tenant: a refused load must leave it empty, which each test
checks; a test that could not check makes the fixture drop it, to be created again.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from hostile_corpus import ANY_LINE, Case, Loads, Refused
from sqlalchemy import select

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.errors import (
    FixtureError,
    TenancyFixturesError,
    TenantNotFoundError,
    ValidationFailedError,
)
from tenancy_fixtures.store.base import TENANT_SCHEMA

__all__ = [
    "SharedTenant",
    "assert_loaded",
    "assert_names",
    "assert_untouched",
    "case_params",
    "corpus_database_url_fixture",
    "corpus_manager_fixture",
    "fresh_tenant_fixture",
    "located",
    "names",
    "read_rows",
    "refusing_tenant_fixture",
    "shared_tenant_fixture",
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


@pytest.fixture(
    name="corpus_database_url",
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ],
)
def corpus_database_url_fixture(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A database for a module's tenants, per backend."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path_factory.mktemp('corpus') / 'data'}"


@pytest_asyncio.fixture(name="corpus_manager", scope="module", loop_scope="module")
async def corpus_manager_fixture(corpus_database_url: str) -> AsyncIterator[FixtureManager]:
    """One manager for a module (per backend)."""
    settings = Settings(database_url=corpus_database_url, actor="pytest")
    async with FixtureManager(settings) as manager:
        yield manager


@dataclass
class SharedTenant:
    """The tenant a module's refusals share. A test that saw it empty at its end sets
    ``seen_empty``; otherwise (a failure, an expected failure) it is made again."""

    tenant_id: str
    seen_empty: bool = False


@pytest_asyncio.fixture(name="shared_tenant", scope="module", loop_scope="module")
async def shared_tenant_fixture(corpus_manager: FixtureManager) -> AsyncIterator[SharedTenant]:
    """The module's shared tenant; dropped after the module."""
    shared = SharedTenant(f"hostile_{uuid.uuid4().hex[:12]}")
    yield shared
    with contextlib.suppress(TenantNotFoundError):
        await corpus_manager.drop_tenant(shared.tenant_id)


@pytest_asyncio.fixture(name="refusing_tenant", loop_scope="module")
async def refusing_tenant_fixture(
    corpus_manager: FixtureManager, shared_tenant: SharedTenant
) -> AsyncIterator[SharedTenant]:
    """The shared tenant for one refusal: created if missing (tests of other modules drop
    every tenant of the PostgreSQL test database), made again after a test that did not
    see it empty."""
    try:
        await corpus_manager.get_tenant(shared_tenant.tenant_id)
    except TenantNotFoundError:
        await corpus_manager.create_tenant(shared_tenant.tenant_id)
    shared_tenant.seen_empty = False
    yield shared_tenant
    if not shared_tenant.seen_empty:
        await corpus_manager.drop_tenant(shared_tenant.tenant_id)


@pytest_asyncio.fixture(name="fresh_tenant", loop_scope="module")
async def fresh_tenant_fixture(corpus_manager: FixtureManager) -> AsyncIterator[str]:
    """A new, empty tenant for one test; dropped afterwards."""
    tenant_id = f"hostile_{uuid.uuid4().hex[:12]}"
    await corpus_manager.create_tenant(tenant_id)
    yield tenant_id
    await corpus_manager.drop_tenant(tenant_id)
