"""The hostile corpus through ``tenancy-fixtures load-fixtures TENANT PATH`` (SQLite).

A refused set exits with fixture data's code (5) and one ``error:`` line naming the
tenant, the file and its line or record, never a traceback; ``show`` then counts no
row. A set that loads exits 0 and reports its rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import Result

from tenancy_fixtures.errors import FixtureError, FixtureSetError
from tests.cli.cli_runner import Cli, assert_one_line_error, structlog_as_it_was
from tests.hostile.hostile_checks import SharedTenant, case_params
from tests.hostile.hostile_corpus import ANY_LINE, CASES, YAML_RAN, Case, Loads, Refused, build_case

REFUSED = [case for case in CASES if isinstance(case.outcome, Refused)]
LOADING = [case for case in CASES if isinstance(case.outcome, Loads)]


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    """The CLI on one SQLite data directory for the module (its first tenant is slow).

    The module's shared tenant is made before any test's ``restore_structlog`` runs, so
    the structlog configuration the CLI leaves then is undone here, at module end.
    """
    with structlog_as_it_was():
        yield Cli(f"sqlite:///{tmp_path_factory.mktemp('cli_corpus') / 'data'}")


@pytest.fixture(scope="module")
def shared_cli_tenant(cli: Cli) -> SharedTenant:
    """The module's shared tenant, created once."""
    shared = SharedTenant(f"hostile_{uuid.uuid4().hex[:12]}")
    cli.ok("init-tenant", shared.tenant_id)
    return shared


@pytest.fixture
def cli_tenant(cli: Cli, shared_cli_tenant: SharedTenant) -> Iterator[SharedTenant]:
    """The shared tenant for one refusal; made again afterwards unless the test saw it
    empty (a failed or xfailed case may have loaded rows into it)."""
    shared_cli_tenant.seen_empty = False
    yield shared_cli_tenant
    if not shared_cli_tenant.seen_empty:
        cli.ok("cleanup", shared_cli_tenant.tenant_id, "--yes")
        cli.ok("init-tenant", shared_cli_tenant.tenant_id)


def assert_refused_in_one_line(result: Result) -> str:
    """Exit 5, no traceback and one ``error:`` line on stderr (returned), nothing else:
    no progress bars for rows rolled back, no "unexpected error"."""
    line = assert_one_line_error(result, FixtureError.exit_code, "error:")
    assert "unexpected error" not in result.output
    return line


def where(expected: Refused) -> str:
    """How the one error line names the place: ``path:line``, ``path, record N``."""
    if expected.error is FixtureSetError or expected.path is None:
        return expected.names
    if expected.line not in (None, ANY_LINE):
        return f"{expected.path}:{expected.line}"
    if expected.record not in (None, ANY_LINE):
        return f"{expected.path}, record {expected.record}"
    return expected.path


@pytest.mark.parametrize("case", case_params(REFUSED))
def test_the_cli_refuses_a_hostile_set_in_one_line_and_loads_nothing(
    cli: Cli, cli_tenant: SharedTenant, tmp_path: Path, case: Case
) -> None:
    """One ``error:`` line naming the place and the documented exit code; no row stays."""
    assert isinstance(case.outcome, Refused)
    source = build_case(case, tmp_path)
    tenant = cli_tenant.tenant_id

    result = cli("load-fixtures", tenant, str(source))

    line = assert_refused_in_one_line(result)
    assert where(case.outcome) in line
    assert case.outcome.says in line
    if case.outcome.column is not None:
        assert f"column {case.outcome.column}" in line
    assert f"tenant '{tenant}'" in line
    assert 0 == cli.json("show", tenant)["total_rows"]
    cli_tenant.seen_empty = True
    assert not (source / YAML_RAN).exists()


@pytest.mark.parametrize("case", case_params(LOADING))
def test_the_cli_loads_a_hostile_but_valid_set(cli: Cli, tmp_path: Path, case: Case) -> None:
    """``load-fixtures --json`` exits 0 and reports the rows the case expects."""
    assert isinstance(case.outcome, Loads)
    tenant = f"hostile_{uuid.uuid4().hex[:12]}"
    cli.ok("init-tenant", tenant)

    loaded = cli.json("load-fixtures", tenant, str(build_case(case, tmp_path)))

    assert {t: n for t, n in case.outcome.rows.items() if n} == {
        t: n for t, n in loaded["rows"].items() if n
    }
